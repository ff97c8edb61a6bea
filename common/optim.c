/*
 * optim: SGD with momentum and per-group weight decay. See optim.h.
 */
#include <stddef.h>

#include "common/optim.h"

void
sgd_step(float *params, const float *grads, float *mom,
    const OptimGroup *groups, int ngroups, float lr, float momentum)
{
	for (int k = 0; k < ngroups; k++) {
		float *p = params + groups[k].off, *v = mom + groups[k].off;
		const float *g = grads + groups[k].off;
		float wd = groups[k].wd;
		size_t n = groups[k].n;

#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < n; i++) {
			float d = g[i] + wd * p[i];

			v[i] = momentum * v[i] + d;
			p[i] -= lr * v[i];
		}
	}
}

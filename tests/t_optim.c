/*
 * t_optim: sgd_step against torch.optim.SGD's update written out by hand
 * (two steps, two weight-decay groups, an entry outside every group), and
 * on a block large enough to run on several threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/optim.h"
#include "common/util.h"
#include "tests/check.h"

TEST(two_steps_two_groups)
{
	float p[5] = { 1, 1, 1, 1, 1 }, g[5] = { 0.5f, 0.5f, 0.5f, 0.5f, 0.5f };
	float v[5] = { 0 };
	OptimGroup gr[2] = { { 0, 2, 0.1f }, { 3, 2, 0.0f } };

	sgd_step(p, g, v, gr, 2, 0.1f, 0.9f);
	/* d = 0.5 + 0.1 * 1 = 0.6, v = 0.6, p = 1 - 0.06 */
	CHECK_NEAR(p[0], 0.94, 1e-6, 0);
	CHECK_NEAR(v[1], 0.6, 1e-6, 0);
	CHECK_NEAR(p[2], 1.0, 0, 0);        /* in no group */
	CHECK_NEAR(p[3], 0.95, 1e-6, 0);    /* wd 0: d = 0.5 */
	sgd_step(p, g, v, gr, 2, 0.1f, 0.9f);
	/* d = 0.5 + 0.094 = 0.594, v = 0.54 + 0.594 = 1.134, p = 0.94 - 0.1134 */
	CHECK_NEAR(v[0], 1.134, 1e-6, 0);
	CHECK_NEAR(p[0], 0.8266, 1e-6, 0);
	/* v = 0.45 + 0.5 = 0.95, p = 0.95 - 0.095 */
	CHECK_NEAR(p[4], 0.855, 1e-6, 0);
}

TEST(large_block)
{
	size_t n = 1 << 20;
	float *p = emalloc(n * 4), *g = emalloc(n * 4), *v = ecalloc(n, 4);
	OptimGroup gr = { 0, n, 1e-4f };
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		p[i] = (float)(i % 17), g[i] = (float)(i % 5) - 2;
	sgd_step(p, g, v, &gr, 1, 0.2f, 0.9f);
	for (size_t i = 0; i < n; i++) {
		float d = ((float)(i % 5) - 2) + 1e-4f * (float)(i % 17);

		float want = (float)(i % 17) - 0.2f * d;

		bad += fabsf(p[i] - want) > 1e-6f * (1 + fabsf(want));
	}
	CHECK(bad == 0, "%d entries differ", bad);
	free(p), free(g), free(v);
}

int
main(void)
{
	RUN(two_steps_two_groups);
	RUN(large_block);
	return check_summary();
}

/*
 * optim: SGD with momentum over one contiguous parameter block, as
 * torch.optim.SGD (dampening 0, nesterov off) with weight decay per
 * parameter group, the groups being ranges of the block.
 *
 * For each parameter p with gradient g in a group of weight decay wd:
 *     d = g + wd * p
 *     v = momentum * v + d        (v starts at 0, so the first v is d)
 *     p = p - lr * v
 * (PyTorch's SGD documentation; its first step sets v = d, the same.)
 * The learning rate is given per step, so schedules live with the caller.
 *
 * What it does not do: schedules, Nesterov, dampening, other optimisers,
 * gradient clipping; it never allocates.
 */
#ifndef RL_OPTIM_H
#define RL_OPTIM_H

#include <stddef.h>

/* A range [off, off + n) of the block with its weight decay. */
typedef struct {
	size_t off, n;
	float wd;
} OptimGroup;

/*
 * One SGD step over params, grads and the momentum block mom (each of at
 * least the groups' extent; mom zeroed before the first step), for every
 * group in groups[0..ngroups). Entries outside every group are left alone.
 * Groups must not overlap. Threads: OpenMP over the entries.
 */
void sgd_step(float *params, const float *grads, float *mom,
    const OptimGroup *groups, int ngroups, float lr, float momentum);

#endif

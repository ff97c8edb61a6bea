/*
 * pool: the pooled features the benchmarks read from a ResNet's stages
 * (relloc-protocols(7), FEATURES, KNN, LINEAR): MMSelfSup 0.x's
 * MultiPooling(pool_type='specified') for Feature1-5, and the global
 * average of layer4 for kNN and the AvgPool linear probe.
 *
 *     name   stage                        torch.nn op                 R50 dim
 *     feat1  0 (stem after ReLU, before   AvgPool2d(10, 10, 4)        9216
 *              the max pool)
 *     feat2  1 (layer1)                   AvgPool2d(16, 8, 0)         9216
 *     feat3  2 (layer2)                   AvgPool2d(13, 5, 0)         8192
 *     feat4  3 (layer3)                   AvgPool2d(8, 3, 0)          9216
 *     feat5  4 (layer4)                   AvgPool2d(6, 1, 0)          8192
 *     gap    4 (layer4)                   AdaptiveAvgPool2d(1)        2048
 *
 * AvgPool2d has ceil_mode=False and count_include_pad=True (padded zeros
 * count in the divisor). A feature row is what PyTorch's view(N, -1) of
 * the NCHW pooled tensor gives: channel-major, element c*OH*OW + h*OW + w.
 * The input is the engine's channels-last (B, H, W, C), so the pooled
 * tensor is transposed per image while it is flattened.
 *
 * Not here: running the network (resnet.h), choosing the layers from the
 * command line beyond parsing the list, normalising features (the
 * protocol stores them raw).
 */
#ifndef RL_POOL_H
#define RL_POOL_H

#include <stddef.h>

/* Number of features: feat1..feat5, gap. */
#define POOL_NFEAT 6
/* The index of gap among them. */
#define POOL_GAP 5

typedef struct {
	const char *name;  /* "feat1".."feat5", "gap" */
	int stage;         /* the network stage pooled: 0 stem, 1..4 layer1..4 */
	int k, s, p;       /* AvgPool2d kernel, stride, padding; k 0: global */
} PoolSpec;

/* The spec of feature i, 0 <= i < POOL_NFEAT, in the table's order. */
const PoolSpec *pool_spec(int i);

/* The index of the feature called name, or -1. */
int pool_find(const char *name);

/*
 * Parse a comma-separated list of feature names ("feat1,feat5,gap", or
 * "all" for every one) into *mask, bit i for feature i. Returns 0, or -1
 * with a message in err for an unknown, repeated or empty name.
 */
int pool_parse_list(const char *s, unsigned *mask, char *err,
    size_t errlen);

/*
 * The size of feature ps pooled from a C x H x W stage: *oh, *ow (1 for
 * gap) and *dim = C * oh * ow. Returns 0, or -1 with a message in err when
 * the stage is too small for the kernel (H + 2p < k).
 */
int pool_dims(const PoolSpec *ps, int C, int H, int W, int *oh, int *ow,
    size_t *dim, char *err, size_t errlen);

/* Floats of work pool_forward needs for a batch of B (the pooled
 * channels-last tensor; 0 for gap). */
size_t pool_work_floats(const PoolSpec *ps, int B, int C, int H, int W);

/*
 * out (B, dim) = feature ps of inp (B, H, W, C), each row flattened
 * channel-major as above; work as pool_work_floats says. The stage must
 * pass pool_dims. Threads: OpenMP, as layers.h.
 */
void pool_forward(float *out, const float *inp, int B, int H, int W, int C,
    const PoolSpec *ps, float *work);

/*
 * out (B, C, HW) = the per-image transpose of inp (B, HW, C): the NCHW
 * flattening of a channels-last tensor. out and inp must not overlap.
 */
void pool_flatten_chw(float *out, const float *inp, int B, int HW, int C);

#endif

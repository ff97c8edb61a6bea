/*
 * wino: 3x3 stride-1 convolutions with padding 1 (every 3x3 convolution of
 * a ResNet but the strided ones, on images not too small for it: see
 * wino_applies) by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", CVPR 2016).
 *
 * Each 2x2 block of outputs (a tile) is computed from the 4x4 input cells
 * under it as
 *     Y = A^T [ (G g G^T) . (B^T d B) ] A
 * per channel pair, and the sum over input channels of the 16 element-wise
 * products is 16 matrix products (tiles x C) x (C x OC). That is 16
 * multiplications per 4 outputs where im2col does 36: 2.25 times fewer,
 * less the transforms (additions and halvings on cache-resident blocks).
 * The input gradient is the same computation on the output gradient with
 * the weights rotated and transposed (which in the transformed domain is a
 * transposition and a swap of the first and last rows and columns), and
 * the weight gradient is
 *     dg = G^T [ sum over tiles (B^T d B) . (A dY A^T) ] G.
 *
 * Accuracy: the transforms' coefficients are 0, +-1 and +-1/2, so the
 * results differ from the direct sums only by float rounding (a few units
 * in the last place of the largest term; t_conv checks 1e-5 relative).
 *
 * Threads: tiles are handed out in blocks to the OpenMP threads; each
 * output depends only on its own tile, so the forward and the input
 * gradient do not depend on the thread count. The weight gradient is
 * summed per thread over a fixed split of the tiles, then across threads,
 * as conv_backward's.
 *
 * Layout, gradient conventions and workspace are conv_forward's and
 * conv_backward's (layers.h), which call these when wino_applies.
 */
#ifndef RL_WINO_H
#define RL_WINO_H

#include <stddef.h>

#include "common/layers.h"

/* Whether the shape is one this module computes (K 3, stride 1, pad 1)
 * and gains by it (the image is not too small for 2x2 tiles). */
int wino_applies(const ConvShape *s);

/* Floats of workspace wino_forward and wino_backward need for s. */
size_t wino_work_floats(const ConvShape *s);

/* out (B, H, W, OC) = conv(inp, weight (3, 3, C, OC)), then post (or
 * NULL) added to each tile's outputs as they are written; work as above. */
void wino_forward(float *out, const float *inp, const float *weight,
    const ConvPost *post, const ConvShape *s, float *work, size_t nwork);

/* dweight += gradient; dinp += gradient unless dinp is NULL. */
void wino_backward(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s, float *work,
    size_t nwork);

#endif

/*
 * wino: 3x3 stride-1 convolutions with padding 1 (every 3x3 convolution of
 * a ResNet but the strided ones, on images not too small for it: see
 * wino_tile_side) by Winograd's minimal filtering F(m x m, 3x3), m = 2 or
 * 4 (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
 * CVPR 2016).
 *
 * Each m x m block of outputs (a tile) is computed from the a x a input
 * cells under it (a = m + 2) as
 *     Y = A^T [ (G g G^T) . (B^T d B) ] A
 * per channel pair, and the sum over input channels of the a^2
 * element-wise products is a^2 matrix products (tiles x C) x (C x OC).
 * F(2x2, 3x3) does 16 multiplications per 4 outputs where im2col does 36
 * (2.25 times fewer), F(4x4, 3x3) 36 per 16 (4 times fewer), less the
 * transforms (additions and scalings on cache-resident blocks), which
 * F(4x4) also does per 16 outputs instead of 4. F(4x4) is used where its
 * tiles do not waste much more than F(2x2)'s on the image's edge: from
 * 7x7 up and at 3x3 and 4x4; a ResNet at 224 pixels has it everywhere, at
 * 64 pixels on all but its 2x2 layer4. A 2x2 image is one tile whose
 * border is all padding; it reads only its own 4 cells, by F(2, 2) (the
 * 2x2 Toeplitz product in 3 multiplications), 9 multiplications per
 * channel pair where F(2x2, 3x3) does 16 and the direct sum 36.
 * The input gradient is the same computation on the output gradient with
 * the weights rotated by 180 degrees and transposed (the rotated
 * weights' transform, used transposed in the products), and the weight
 * gradient is
 *     dg = G^T [ sum over tiles (B^T d B) . (A dY A^T) ] G.
 *
 * Accuracy: results differ from the direct sums only by float rounding.
 * F(2x2)'s coefficients are 0, +-1 and +-1/2: a few units in the last
 * place of the largest term (t_conv checks 1e-5 relative). F(4x4)'s
 * reach 8, 5 and 1/24, and its rounding is about ten times larger
 * (t_conv: 5e-5); through a whole ResNet-50 at 224 the features still
 * equal PyTorch's float64 ones to 6.2e-7 of their largest (bench/
 * extract_parity.py; 5.3e-7 with F(2x2) everywhere), and t_ref's 1e-4.
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

/* The side of the tiles of output wino computes s in: 4 (F(4x4, 3x3)), 2
 * (F(2x2, 3x3)), or 0 where wino does not apply. */
int wino_tile_side(const ConvShape *s);

/* Floats of workspace wino_forward and wino_backward need for s. */
size_t wino_work_floats(const ConvShape *s);

/* Floats of s's weights transformed by wino_weights. */
size_t wino_weight_floats(const ConvShape *s);

/* U = weight (3, 3, C, OC) transformed for s (its tile side, which
 * depends on H and W only), for wino_forward: weights that do not change
 * (an evaluation's) are transformed once. */
void wino_weights(float *U, const float *weight, const ConvShape *s);

/* out (B, H, W, OC) = conv(inp, weight (3, 3, C, OC)), then post (or
 * NULL) added to each tile's outputs as they are written; U: the weights
 * as wino_weights transformed them for a shape of the same H and W, or
 * NULL (weight is then transformed into work); work as above. */
void wino_forward(float *out, const float *inp, const float *weight,
    const float *U, const ConvPost *post, const ConvShape *s, float *work,
    size_t nwork);

/* dweight += gradient; dinp += gradient unless dinp is NULL. */
void wino_backward(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s, float *work,
    size_t nwork);

#endif

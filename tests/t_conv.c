/*
 * t_conv: the im2col + blas_gemm convolution against the direct loops of
 * conv_forward_naive/conv_backward_naive, forward and backward, on many
 * shapes (kernel, stride, padding, odd and non-square sides, one channel,
 * 1x1 with and without stride, weights small enough for the tiled path and
 * too large for it), with workspaces small enough to force the
 * batch into chunks and large enough for one chunk; and the 3x3 stride-1
 * pad-1 shapes wino.c computes by Winograd's transforms.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/layers.h"
#include "common/rng.h"
#include "common/util.h"
#include "common/wino.h"
#include "tests/check.h"
#include "tests/helpers.h"

/*
 * The tolerance of F(4x4, 3x3)'s results: its transforms multiply terms by
 * up to 8 (output) and 5 (input) per side and divide by up to 24, so its
 * rounding is about ten times F(2x2, 3x3)'s (1e-5 here); 1.1e-5 seen at
 * 128 channels of normal data.
 */
#define TOL_F4 5e-5

/* max |a - b| / (1 + max |b|) */
static double
reldiff(const float *a, const float *b, size_t n)
{
	return th_reldiff(a, b, n, 1);
}

/*
 * conv_forward_post against the naive forward y0 plus a bias, a residual
 * and a ReLU added by hand, with every part of the post alone and
 * together; y: scratch for the output. Returns the worst diff.
 */
static double
check_post(float *y, const float *y0, const float *x, const float *w,
    const ConvShape *s, float *work, size_t nwork, Rng *g, double tol)
{
	int OC = s->OC;
	size_t ny = (size_t)s->B * s->OH * s->OW * OC;
	float *want = emalloc(ny * 4), *res = emalloc(ny * 4);
	float *bias = emalloc(OC * 4);
	double worst = 0;

	th_fill_normal(res, ny, g, 1);
	th_fill_normal(bias, OC, g, 1);
	for (int v = 1; v < 8; v++) {
		ConvPost post = { v & 1 ? bias : NULL, v & 2 ? res : NULL,
		    (v & 4) != 0 };
		double d;

		for (size_t i = 0; i < ny; i++) {
			float t = y0[i];

			if (post.bias != NULL)
				t += bias[i % OC];
			if (post.res != NULL)
				t += res[i];
			want[i] = post.relu && t < 0 ? 0 : t;
		}
		conv_forward_post(y, x, w, NULL, &post, s, work, nwork);
		d = reldiff(y, want, ny);
		worst = fmax(worst, d);
		CHECK(d < tol, "post %d B%d %dx%dx%d->%d k%d s%d p%d: %g", v,
		    s->B, s->H, s->W, s->C, OC, s->K, s->S, s->P, d);
	}
	free(want), free(res), free(bias);
	return worst;
}

/* One shape with workspace for `chunk` images; returns the worst diff. */
static double
check_shape(int B, int H, int W, int C, int OC, int K, int S, int P,
    int chunk, uint64_t seed)
{
	ConvShape s = conv_shape(B, H, W, C, OC, K, S, P);
	size_t nx = (size_t)B * H * W * C, nw = (size_t)K * K * C * OC;
	size_t ny = (size_t)B * s.OH * s.OW * OC;
	size_t nwork = conv_work_floats(&s, chunk);
	float *x = emalloc(nx * 4), *w = emalloc(nw * 4), *y = emalloc(ny * 4);
	float *y0 = emalloc(ny * 4), *dy = emalloc(ny * 4);
	float *dx = emalloc(nx * 4), *dx0 = emalloc(nx * 4);
	float *dw = emalloc(nw * 4), *dw0 = emalloc(nw * 4);
	float *work = emalloc((nwork + 1) * 4);
	double d, worst = 0, tol = wino_tile_side(&s) == 4 ? TOL_F4 : 1e-5;
	Rng g;

	rng_init(&g, seed, RNG_STREAM_USER, 0);
	th_fill_normal(x, nx, &g, 1);
	th_fill_normal(w, nw, &g, 1);
	th_fill_normal(dy, ny, &g, 1);
	/* accumulation: start the gradients from the same non-zero values */
	th_fill_normal(dx, nx, &g, 1);
	th_fill_normal(dw, nw, &g, 1);
	memcpy(dx0, dx, nx * 4);
	memcpy(dw0, dw, nw * 4);

	conv_forward(y, x, w, &s, work, nwork);
	conv_forward_naive(y0, x, w, &s);
	d = reldiff(y, y0, ny);
	worst = fmax(worst, d);
	CHECK(d < tol, "forward B%d %dx%dx%d->%d k%d s%d p%d: %g", B, H, W,
	    C, OC, K, S, P, d);
	if (wino_applies(&s) && nwork >= wino_work_floats(&s)) {
		/* weights transformed beforehand: the same sums, bit for bit */
		float *U = emalloc(wino_weight_floats(&s) * 4);

		wino_weights(U, w, &s);
		wino_forward(y0, x, NULL, U, NULL, &s, work, nwork);
		CHECK(memcmp(y, y0, ny * 4) == 0, "wino_weights B%d %dx%d",
		    B, H, W);
		conv_forward_naive(y0, x, w, &s);
		free(U);
	}
	worst = fmax(worst, check_post(y, y0, x, w, &s, work, nwork, &g,
	    tol));

	conv_backward(dx, dw, dy, x, w, &s, work, nwork);
	conv_backward_naive(dx0, dw0, dy, x, w, &s);
	d = reldiff(dx, dx0, nx);
	worst = fmax(worst, d);
	CHECK(d < tol, "dinp B%d %dx%dx%d->%d k%d s%d p%d: %g", B, H, W, C,
	    OC, K, S, P, d);
	d = reldiff(dw, dw0, nw);
	worst = fmax(worst, d);
	CHECK(d < tol, "dweight B%d %dx%dx%d->%d k%d s%d p%d: %g", B, H, W,
	    C, OC, K, S, P, d);

	/* dinp NULL (a first layer) still gives the weight gradient */
	memcpy(dw, dw0, nw * 4);
	conv_backward(NULL, dw, dy, x, w, &s, work, nwork);
	conv_backward_naive(NULL, dw0, dy, x, w, &s);
	d = reldiff(dw, dw0, nw);
	CHECK(d < tol, "dweight without dinp: %g", d);

	free(x), free(w), free(y), free(y0), free(dy), free(dx), free(dx0);
	free(dw), free(dw0), free(work);
	return worst;
}

TEST(resnet_shapes)
{
	static const int sh[][8] = {
		/* B, H, W, C, OC, K, S, P */
		{ 2, 16, 16, 3, 8, 7, 2, 3 },    /* stem */
		{ 3, 8, 8, 8, 8, 3, 1, 1 },      /* basic block */
		{ 3, 8, 8, 8, 16, 3, 2, 1 },     /* strided 3x3 */
		{ 2, 8, 8, 16, 32, 1, 1, 0 },    /* pointwise */
		{ 2, 8, 8, 16, 32, 1, 2, 0 },    /* downsample */
		{ 4, 2, 2, 32, 16, 3, 1, 1 },    /* layer4 at 64x64 */
		{ 2, 3, 3, 128, 256, 3, 1, 1 },  /* weights too big to tile */
		{ 2, 4, 4, 128, 256, 3, 2, 1 },  /* the same, strided */
	};
	double worst = 0;

	for (size_t i = 0; i < RL_NELEM(sh); i++)
		for (int chunk = 1; chunk <= sh[i][0]; chunk += sh[i][0] - 1) {
			worst = fmax(worst, check_shape(sh[i][0], sh[i][1],
			    sh[i][2], sh[i][3], sh[i][4], sh[i][5], sh[i][6],
			    sh[i][7], chunk, i));
			if (sh[i][0] == 1)
				break;
		}
	printf("resnet shapes: maxdiff %.3g\n", worst);
}

TEST(random_shapes)
{
	Rng g;
	double worst = 0;

	rng_init(&g, 7, RNG_STREAM_USER, 1);
	for (int i = 0; i < 60; i++) {
		int K = 1 + (int)rng_below(&g, 5), S = 1 + (int)rng_below(&g, 3);
		int P = (int)rng_below(&g, K / 2 + 2);
		int H = 1 + (int)rng_below(&g, 11), W = 1 + (int)rng_below(&g, 11);
		int B = 1 + (int)rng_below(&g, 4), C = 1 + (int)rng_below(&g, 9);
		int OC = 1 + (int)rng_below(&g, 9);
		int chunk = 1 + (int)rng_below(&g, B);

		if (H + 2 * P < K || W + 2 * P < K)
			continue;
		worst = fmax(worst, check_shape(B, H, W, C, OC, K, S, P, chunk,
		    100 + i));
	}
	printf("random shapes: maxdiff %.3g\n", worst);
}

/* Large enough that blas_gemm splits across threads: by rows, and by K
 * for the weight gradient, with its parts transposed (K*K*C > OC) and not.
 * The 3x3 one is unpadded: with padding 1 it would go to wino.c. */
TEST(threaded_split)
{
	double d = check_shape(8, 16, 16, 32, 64, 3, 1, 0, 8, 9);

	d = fmax(d, check_shape(8, 16, 16, 64, 32, 1, 1, 0, 8, 10));
	d = fmax(d, check_shape(8, 16, 16, 16, 64, 1, 1, 0, 8, 11));
	printf("threaded: maxdiff %.3g (%d threads)\n", d, blas_threads());
}

/* Winograd (wino.c), each shape with the tile side it gets: odd sides
 * (tiles hanging over the edge), a 2x2 image (one tile, all padding:
 * F(2, 2) on its 4 cells) at 16 and 512 channels, a 3x3 one (one F(4x4) tile), a 1x1 (left to im2col: too
 * small to gain), 5x5 and 6x6 (as many products either way: F(2x2)), one
 * channel, more tiles than a block (forward), and more than a
 * weight-gradient block per thread, its last one partial, with each side
 * (128 channels: blocks of 2 x 128 = 256 tiles; F(4x4) on 66 x 61 and
 * F(2x2) on 62 images of 6 x 6: 544 and 558 tiles, 272 and 279 a thread
 * with 2 threads), and the ResNet sides 4, 7, 8, 14 and 16. */
TEST(winograd)
{
	static const int sh[][6] = {
		/* B, H, W, C, OC, tile side */
		{ 2, 7, 5, 8, 12, 4 },
		{ 3, 1, 1, 4, 6, 0 },
		{ 2, 3, 3, 4, 6, 4 },
		{ 2, 2, 2, 16, 8, 2 },
		{ 3, 2, 2, 512, 256, 2 },
		{ 2, 6, 6, 8, 8, 2 },
		{ 1, 9, 6, 1, 1, 2 },
		{ 2, 32, 32, 64, 64, 4 },
		{ 2, 33, 31, 128, 128, 4 },
		{ 2, 5, 5, 16, 24, 2 },
		{ 62, 6, 6, 128, 128, 2 },
		{ 2, 66, 61, 128, 128, 4 },
		{ 3, 4, 4, 32, 64, 4 },
		{ 2, 7, 7, 48, 32, 4 },
		{ 2, 8, 8, 32, 16, 4 },
		{ 1, 14, 14, 16, 16, 4 },
		{ 2, 16, 16, 64, 32, 4 },
	};
	double worst = 0;
	int sides[5] = { 0 };

	for (size_t i = 0; i < RL_NELEM(sh); i++) {
		ConvShape s = conv_shape(sh[i][0], sh[i][1], sh[i][2],
		    sh[i][3], sh[i][4], 3, 1, 1);

		CHECK(wino_tile_side(&s) == sh[i][5], "tile side %dx%d: %d",
		    sh[i][1], sh[i][2], wino_tile_side(&s));
		CHECK(wino_applies(&s) == (sh[i][5] != 0), "wino_applies %dx%d",
		    sh[i][1], sh[i][2]);
		sides[sh[i][5]]++;
		worst = fmax(worst, check_shape(sh[i][0], sh[i][1], sh[i][2],
		    sh[i][3], sh[i][4], 3, 1, 1, sh[i][0], 200 + i));
	}
	CHECK(sides[0] > 0 && sides[2] > 0 && sides[4] > 0, "tile sides");
	printf("winograd: maxdiff %.3g\n", worst);
}

/*
 * The post on each of conv_forward's paths: 1x1 in row blocks (64 + 64
 * channels, 2048 rows) and whole, Winograd, tiled im2col (stem, strided
 * 3x3), chunks (weights too big to tile), a strided 1x1. check_shape
 * runs check_post on every shape of this file; these name the paths.
 */
TEST(post)
{
	static const int sh[][9] = {
		/* B, H, W, C, OC, K, S, P, chunk */
		{ 8, 16, 16, 64, 64, 1, 1, 0, 8 },   /* 1x1, row blocks */
		{ 2, 5, 3, 16, 32, 1, 1, 0, 2 },     /* 1x1, whole */
		{ 2, 1, 1, 8, 8, 1, 1, 0, 2 },     /* 1x1, whole */
		{ 3, 7, 5, 8, 12, 3, 1, 1, 3 },      /* Winograd */
		{ 2, 16, 16, 3, 8, 7, 2, 3, 2 },     /* stem, tiled */
		{ 3, 8, 8, 8, 16, 3, 2, 1, 3 },      /* strided 3x3, tiled */
		{ 2, 4, 4, 128, 256, 3, 2, 1, 1 },   /* chunks */
		{ 2, 8, 8, 16, 32, 1, 2, 0, 2 },     /* downsample */
	};
	double worst = 0;

	for (size_t i = 0; i < RL_NELEM(sh); i++)
		worst = fmax(worst, check_shape(sh[i][0], sh[i][1], sh[i][2],
		    sh[i][3], sh[i][4], sh[i][5], sh[i][6], sh[i][7],
		    sh[i][8], 300 + i));
	printf("post: maxdiff %.3g\n", worst);
}

int
main(int argc, char **argv)
{
	(void)argc;
	blas_init(argv);
	RUN(resnet_shapes);
	RUN(random_shapes);
	RUN(threaded_split);
	RUN(winograd);
	RUN(post);
	return check_summary();
}

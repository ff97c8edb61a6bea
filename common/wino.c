/*
 * wino: F(2x2, 3x3) Winograd convolutions. See wino.h for the method.
 *
 * Transforms (Lavin and Gray's matrices):
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]     (input, 4x4)
 *     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]   (weights, 4x3)
 *     A^T = [1 1 1 0; 0 1 -1 -1]                        (output, 2x4)
 * A transformed tile is 16 numbers per channel, stored as 16 matrices
 * (one per transform position p = 4i + j) of tiles x channels, so each
 * position is one product with the (C x OC) matrix of transformed weights
 * U[p]. Every transform loops over channels innermost, the contiguous
 * dimension of the channels-last layout, and vectorises.
 */
#include <assert.h>
#include <omp.h>
#include <string.h>

#include "common/blas.h"
#include "common/util.h"
#include "common/wino.h"

/* Floats of transformed input and products per block of tiles a thread
 * works on (cache-sized), and the bounds of a block's tile count (see
 * block_tiles for WINO_WEIGHT_ROWS). The
 * weight gradient sums its products over blocks WINO_DW_SCALE times
 * larger: the longer sums make better products there. */
#define WINO_BLOCK_FLOATS ((size_t)256 * 1024)
#define WINO_DW_SCALE 4
#define WINO_MINTILES 32
#define WINO_MAXTILES 2048
#define WINO_WEIGHT_ROWS 2

/* The convolution a pass computes: inp (B, H, W, C) -> out (B, H, W, OC),
 * in T tiles of 2x2 outputs, TH x TW per image. */
typedef struct {
	int B, H, W, C, OC;
	int TH, TW;
	long T;
} Tiling;

static Tiling
tiling(int B, int H, int W, int C, int OC)
{
	Tiling t;

	t.B = B, t.H = H, t.W = W, t.C = C, t.OC = OC;
	t.TH = (H + 1) / 2, t.TW = (W + 1) / 2;
	t.T = (long)B * t.TH * t.TW;
	return t;
}

/*
 * Tiles per block with `scale` times the block floats, for a pass over T
 * tiles. OpenBLAS packs the (C x OC) weights again for every block's
 * product, so a block has at least WINO_WEIGHT_ROWS x max(C, OC) tiles:
 * the weights' packing then costs at most a fraction of the tiles'. No
 * more than a thread's share of the T tiles, though (small maps, where
 * the blocks would otherwise exceed the work).
 */
static long
block_tiles(int C, int OC, size_t scale, long T)
{
	size_t r = scale * WINO_BLOCK_FLOATS / (16 * (size_t)(C + OC));
	long share = (T + omp_get_max_threads() - 1) / omp_get_max_threads();

	r = RL_MAX(r, (size_t)WINO_WEIGHT_ROWS * RL_MAX(C, OC));
	r = RL_MIN(r, (size_t)RL_MAX(share, WINO_MINTILES));
	return RL_MAX(WINO_MINTILES, RL_MIN(WINO_MAXTILES, (long)r));
}

/*
 * Tiles hanging over the edge compute outputs that are thrown away: a 1x1
 * image costs 16 multiplications per channel pair where the direct sum
 * costs 9, a 3x3 one 64 against 81. Below a saving of a quarter
 * (16 TH TW <= 3/4 of 9 H W) the transforms are not worth it and the
 * convolution stays with im2col: a ResNet's layer4 on patches of 24 to 40
 * pixels, for one.
 */
int
wino_applies(const ConvShape *s)
{
	long wino = 16L * ((s->H + 1) / 2) * ((s->W + 1) / 2);

	return s->K == 3 && s->S == 1 && s->P == 1 &&
	    4 * wino <= 3 * 9L * s->H * s->W;
}

/* Per-thread floats: a forward block (input, products, output sink), and
 * a weight-gradient block (input, output gradient, partial sums). */
static size_t
fwd_thread_floats(int C, int OC, long T)
{
	return 16 * block_tiles(C, OC, 1, T) * (size_t)(C + OC) +
	    4 * (size_t)RL_MAX(C, OC);
}

static size_t
dw_thread_floats(int C, int OC, long T)
{
	return 16 * block_tiles(C, OC, WINO_DW_SCALE, T) * (size_t)(C + OC) +
	    16 * (size_t)C * OC;
}

/* Leading floats of work: U (16 C OC) and a zero row of max(C, OC). */
static size_t
head_floats(const ConvShape *s)
{
	return 16 * (size_t)s->C * s->OC + (size_t)RL_MAX(s->C, s->OC);
}

size_t
wino_work_floats(const ConvShape *s)
{
	long T = tiling(s->B, s->H, s->W, s->C, s->OC).T;
	size_t per = RL_MAX(fwd_thread_floats(s->C, s->OC, T),
	    dw_thread_floats(s->C, s->OC, T));

	return head_floats(s) + (size_t)omp_get_max_threads() * per;
}

/* U[p] (C x OC) = G g G^T for every channel pair; weight (3, 3, C, OC). */
static void
weight_transform(float *U, const float *weight, int C, int OC)
{
	size_t CO = (size_t)C * OC;

#pragma omp parallel for schedule(static)
	for (int c = 0; c < C; c++) {
		const float *g = weight + (size_t)c * OC;
		float *u = U + (size_t)c * OC;

#pragma omp simd
		for (int o = 0; o < OC; o++) {
			float t[4][3], x[3][3];

			for (int k = 0; k < 9; k++)
				x[k / 3][k % 3] = g[k * CO + o];
			for (int j = 0; j < 3; j++) {
				t[0][j] = x[0][j];
				t[1][j] = 0.5f * (x[0][j] + x[1][j] + x[2][j]);
				t[2][j] = 0.5f * (x[0][j] - x[1][j] + x[2][j]);
				t[3][j] = x[2][j];
			}
			for (int i = 0; i < 4; i++) {
				u[(4 * i + 0) * CO + o] = t[i][0];
				u[(4 * i + 1) * CO + o] = 0.5f * (t[i][0] +
				    t[i][1] + t[i][2]);
				u[(4 * i + 2) * CO + o] = 0.5f * (t[i][0] -
				    t[i][1] + t[i][2]);
				u[(4 * i + 3) * CO + o] = t[i][2];
			}
		}
	}
}

/*
 * at[n i + j] = the cell (b, h, w) of the batch, as (b H + h) W + w, at
 * row 2 ty + off + i and column 2 tx + off + j of tile r's n x n window
 * (tile (ty, tx) of image b), or -1 outside the image.
 */
static void
tile_cells(long *at, int n, int off, const Tiling *tl, long r)
{
	long per = (long)tl->TH * tl->TW, q = r % per, b = r / per;
	int h0 = (int)(q / tl->TW) * 2 + off, w0 = (int)(q % tl->TW) * 2 + off;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			int h = h0 + i, w = w0 + j;

			at[n * i + j] = h < 0 || h >= tl->H || w < 0 ||
			    w >= tl->W ? -1 : (b * tl->H + h) * tl->W + w;
		}
}

/* d[k] = the ch channels of tile_cells' cell k in base, or zero outside
 * the image. */
static void
tile_reads(const float **d, int n, int off, const float *base, int ch,
    const float *zero, const Tiling *tl, long r)
{
	long at[16];

	tile_cells(at, n, off, tl, r);
	for (int k = 0; k < n * n; k++)
		d[k] = at[k] < 0 ? zero : base + (size_t)at[k] * ch;
}

/* v[p * ps + c] = (B^T d B)[p] for the 4x4 input cells d of tile r
 * (zeros outside the image, which is the padding). */
static void
tile_input(float *restrict v, size_t ps, const float *inp,
    const float *zero, const Tiling *tl, long r)
{
	const float *d[16];
	int C = tl->C;

	tile_reads(d, 4, -1, inp, C, zero, tl, r);
	{
		const float *restrict d0 = d[0], *restrict d1 = d[1];
		const float *restrict d2 = d[2], *restrict d3 = d[3];
		const float *restrict d4 = d[4], *restrict d5 = d[5];
		const float *restrict d6 = d[6], *restrict d7 = d[7];
		const float *restrict d8 = d[8], *restrict d9 = d[9];
		const float *restrict d10 = d[10], *restrict d11 = d[11];
		const float *restrict d12 = d[12], *restrict d13 = d[13];
		const float *restrict d14 = d[14], *restrict d15 = d[15];

#pragma omp simd
		for (int c = 0; c < C; c++) {
			/* rows of B^T d, then each row times B */
			float t[4][4] = {
				{ d0[c] - d8[c], d1[c] - d9[c],
				  d2[c] - d10[c], d3[c] - d11[c] },
				{ d4[c] + d8[c], d5[c] + d9[c],
				  d6[c] + d10[c], d7[c] + d11[c] },
				{ d8[c] - d4[c], d9[c] - d5[c],
				  d10[c] - d6[c], d11[c] - d7[c] },
				{ d4[c] - d12[c], d5[c] - d13[c],
				  d6[c] - d14[c], d7[c] - d15[c] },
			};

			for (int i = 0; i < 4; i++) {
				v[(4 * i + 0) * ps + c] = t[i][0] - t[i][2];
				v[(4 * i + 1) * ps + c] = t[i][1] + t[i][2];
				v[(4 * i + 2) * ps + c] = t[i][2] - t[i][1];
				v[(4 * i + 3) * ps + c] = t[i][1] - t[i][3];
			}
		}
	}
}

/* v[p * ps + o] = (A dY A^T)[p] for the 2x2 output gradient dY of tile r
 * (zeros past the image's edge: outputs that do not exist). */
static void
tile_dout(float *restrict v, size_t ps, const float *dout,
    const float *zero, const Tiling *tl, long r)
{
	const float *y[4];
	int OC = tl->OC;

	tile_reads(y, 2, 0, dout, OC, zero, tl, r);
#pragma omp simd
	for (int o = 0; o < OC; o++) {
		float t[4][2];

		for (int j = 0; j < 2; j++) {
			float a = y[j][o], c = y[2 + j][o];

			t[0][j] = a;
			t[1][j] = a + c;
			t[2][j] = a - c;
			t[3][j] = -c;
		}
		for (int i = 0; i < 4; i++) {
			v[(4 * i + 0) * ps + o] = t[i][0];
			v[(4 * i + 1) * ps + o] = t[i][0] + t[i][1];
			v[(4 * i + 2) * ps + o] = t[i][0] - t[i][1];
			v[(4 * i + 3) * ps + o] = -t[i][1];
		}
	}
}

/* The outputs of tile r: A^T m A, m[p * ps + o], written (beta 0) or
 * added (beta 1), then post added (post NULL, or beta 0) while the cells
 * are in cache; outputs past the image's edge go to sink (4 OC). */
static void
tile_output(float *out, const float *restrict m, size_t ps, float beta,
    const ConvPost *post, float *sink, const Tiling *tl, long r)
{
	float *y[4];
	long at[4];
	int OC = tl->OC;

	tile_cells(at, 2, 0, tl, r);
	for (int k = 0; k < 4; k++)
		y[k] = at[k] < 0 ? sink + (size_t)k * OC :
		    out + (size_t)at[k] * OC;
	{
		float *restrict y0 = y[0], *restrict y1 = y[1];
		float *restrict y2 = y[2], *restrict y3 = y[3];

		for (int o = 0; o < OC; o++) {
			float t[2][4], r0, r1, r2, r3;

			for (int j = 0; j < 4; j++) {
				float m0 = m[j * ps + o], m1 = m[(4 + j) * ps + o];
				float m2 = m[(8 + j) * ps + o];
				float m3 = m[(12 + j) * ps + o];

				t[0][j] = m0 + m1 + m2;
				t[1][j] = m1 - m2 - m3;
			}
			r0 = t[0][0] + t[0][1] + t[0][2];
			r1 = t[0][1] - t[0][2] - t[0][3];
			r2 = t[1][0] + t[1][1] + t[1][2];
			r3 = t[1][1] - t[1][2] - t[1][3];
			if (beta != 0.0f) {
				r0 += y0[o], r1 += y1[o];
				r2 += y2[o], r3 += y3[o];
			}
			y0[o] = r0, y1[o] = r1, y2[o] = r2, y3[o] = r3;
		}
	}
	for (int k = 0; post != NULL && k < 4; k++)
		if (at[k] >= 0)
			conv_post_vec(y[k], post, post->res != NULL ?
			    post->res + (size_t)at[k] * OC : NULL, OC);
}

/* The transposition of a flipped (180-degree rotated) kernel's transform:
 * positions i and 3 - i of the row and the column swap for i = 0, 3. */
static int
flip_pos(int p)
{
	static const int sw[4] = { 3, 1, 2, 0 };

	return 4 * sw[p / 4] + sw[p % 4];
}

/*
 * out = conv(inp) (beta 0) or out += conv(inp) (beta 1) for the tiling tl,
 * with the transformed weights U: U[p] (C x OC) or, when flip, the input
 * gradient's U[flip_pos(p)]^T (U then holds the forward's (OC x C)
 * matrices). blocks: the threads' fwd_thread_floats.
 */
static void
wino_pass(float *out, const float *inp, const float *U, int flip,
    const Tiling *tl, float beta, const ConvPost *post, float *blocks,
    const float *zero)
{
	int C = tl->C, OC = tl->OC;
	long R = block_tiles(C, OC, 1, tl->T), nb = (tl->T + R - 1) / R;
	size_t per = fwd_thread_floats(C, OC, tl->T), CO = (size_t)C * OC;

	/* dynamic: a thread that loses its core leaves its blocks to the
	 * other; each output's sums are the same either way */
#pragma omp parallel for schedule(dynamic, 1)
	for (long k = 0; k < nb; k++) {
		float *v = blocks + (size_t)omp_get_thread_num() * per;
		float *m = v + 16 * R * C, *sink = m + 16 * R * OC;
		long r0 = k * R, r1 = RL_MIN(r0 + R, tl->T);
		int n = (int)(r1 - r0);

		for (long r = r0; r < r1; r++)
			tile_input(v + (r - r0) * C, R * C, inp, zero, tl, r);
		for (int p = 0; p < 16; p++)
			blas_gemm_serial(0, flip, n, OC, C, v + p * R * C, C,
			    U + (flip ? flip_pos(p) : p) * CO, flip ? C : OC,
			    0.0f, m + p * R * OC, OC);
		for (long r = r0; r < r1; r++)
			tile_output(out, m + (r - r0) * OC, R * OC, beta, post,
			    sink, tl, r);
	}
}

void
wino_forward(float *out, const float *inp, const float *weight,
    const ConvPost *post, const ConvShape *s, float *work, size_t nwork)
{
	Tiling tl = tiling(s->B, s->H, s->W, s->C, s->OC);
	float *U = work, *zero = U + 16 * (size_t)s->C * s->OC;

	assert(wino_applies(s) && nwork >= wino_work_floats(s));
	weight_transform(U, weight, s->C, s->OC);
	memset(zero, 0, RL_MAX(s->C, s->OC) * sizeof *zero);
	wino_pass(out, inp, U, 0, &tl, 0.0f, post, work + head_floats(s),
	    zero);
}

/*
 * dweight += G^T [sum over tiles V . DY] G: each thread sums the products
 * of a fixed run of tiles into its part, block by block, then the parts
 * are added and transformed back, channel by channel.
 */
static void
wino_dweight(float *dweight, const float *dout, const float *inp,
    const Tiling *tl, float *blocks, const float *zero)
{
	int C = tl->C, OC = tl->OC;
	long R = block_tiles(C, OC, WINO_DW_SCALE, tl->T);
	size_t per = dw_thread_floats(C, OC, tl->T), CO = (size_t)C * OC;
	size_t partoff = 16 * R * (size_t)(C + OC);

#pragma omp parallel
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		long r0 = tl->T * t / n, r1 = tl->T * (t + 1) / n;
		float *v = blocks + (size_t)t * per, *dy = v + 16 * R * C;
		float *part = blocks + (size_t)t * per + partoff;

		if (r1 <= r0)
			memset(part, 0, 16 * CO * sizeof *part);
		for (long r = r0; r < r1; r += R) {
			int nr = (int)RL_MIN(R, r1 - r);

			for (int i = 0; i < nr; i++) {
				tile_input(v + (size_t)i * C, R * C, inp, zero,
				    tl, r + i);
				tile_dout(dy + (size_t)i * OC, R * OC, dout,
				    zero, tl, r + i);
			}
			for (int p = 0; p < 16; p++)
				blas_gemm_serial(1, 0, C, OC, nr,
				    v + p * R * C, C, dy + p * R * OC, OC,
				    r == r0 ? 0.0f : 1.0f, part + p * CO, OC);
		}
#pragma omp barrier
		/* the parts' sum into thread 0's part */
#pragma omp for schedule(static)
		for (size_t i = 0; i < 16 * CO; i++)
			for (int q = 1; q < n; q++)
				blocks[partoff + i] += blocks[(size_t)q * per +
				    partoff + i];
#pragma omp for schedule(static)
		for (int c = 0; c < C; c++) {
			const float *restrict u = blocks + partoff +
			    (size_t)c * OC;
			float *restrict g = dweight + (size_t)c * OC;

#pragma omp simd
			for (int o = 0; o < OC; o++) {
				float x[3][4];

				/* x = G^T u, then x G */
				for (int j = 0; j < 4; j++) {
					float u0 = u[j * CO + o];
					float u1 = u[(4 + j) * CO + o];
					float u2 = u[(8 + j) * CO + o];
					float u3 = u[(12 + j) * CO + o];
					float h = 0.5f * (u1 + u2);

					x[0][j] = u0 + h;
					x[1][j] = 0.5f * (u1 - u2);
					x[2][j] = h + u3;
				}
				for (int i = 0; i < 3; i++) {
					float h = 0.5f * (x[i][1] + x[i][2]);

					g[(3 * i) * CO + o] += x[i][0] + h;
					g[(3 * i + 1) * CO + o] += 0.5f *
					    (x[i][1] - x[i][2]);
					g[(3 * i + 2) * CO + o] += h + x[i][3];
				}
			}
		}
	}
}

void
wino_backward(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s, float *work,
    size_t nwork)
{
	Tiling tl = tiling(s->B, s->H, s->W, s->C, s->OC);
	Tiling tf = tiling(s->B, s->H, s->W, s->OC, s->C);
	float *U = work, *zero = U + 16 * (size_t)s->C * s->OC;
	float *blocks = work + head_floats(s);

	assert(wino_applies(s) && nwork >= wino_work_floats(s));
	memset(zero, 0, RL_MAX(s->C, s->OC) * sizeof *zero);
	wino_dweight(dweight, dout, inp, &tl, blocks, zero);
	if (dinp == NULL)
		return;
	weight_transform(U, weight, s->C, s->OC);
	wino_pass(dinp, dout, U, 1, &tf, 1.0f, NULL, blocks, zero);
}

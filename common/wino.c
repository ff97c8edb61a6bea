/*
 * wino: Winograd convolutions, F(2x2, 3x3) and F(4x4, 3x3). See wino.h
 * for the method.
 *
 * Transforms (Lavin and Gray's matrices), F(2x2, 3x3):
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]     (input, 4x4)
 *     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]   (weights, 4x3)
 *     A^T = [1 1 1 0; 0 1 -1 -1]                        (output, 2x4)
 * and F(4x4, 3x3), interpolation points 0, 1, -1, 2, -2 and infinity:
 *     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 *            0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]  (input, 6x6)
 *     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 *            1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]       (weights, 6x3)
 *     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
 *            0 1 -1 8 -8 1]                              (output, 4x6)
 * A tile of m x m outputs reads a = m + 2 input cells a side. A 2x2
 * image is one F(2x2) tile whose border cells are all padding: only its
 * own 2 x 2 cells are read, and each output row is a 2x2 Toeplitz
 * product [w1 w2; w0 w1] x, done in 3 multiplications instead of 4
 * (F(2, 2) on the image alone, a = 3):
 *     B^T = [1 1; 1 0; 0 1]                             (input, 3x2)
 *     G   = [0 1 0; 1 -1 0; 0 -1 1]                     (weights, 3x3)
 *     A^T = [1 0 1; 1 1 0]                              (output, 2x3)
 * 9 multiplications per 4 outputs where F(2x2, 3x3) does 16. A tile's
 * transform is P = a x a numbers per channel, stored as P matrices (one
 * per transform position p = a i + j) of tiles x channels, so each
 * position is one product with the (C x OC) matrix of transformed weights
 * U[p]. Every transform is the one-dimensional one (the *_1d functions)
 * down the columns, then along the rows, and loops over channels
 * innermost, the contiguous dimension of the channels-last layout, so it
 * vectorises; the functions taking a (the transform's side: 3, 4 or 6,
 * which names the kind of tile) are inlined with a constant.
 */
#include <assert.h>
#include <omp.h>
#include <string.h>

#include "common/blas.h"
#include "common/util.h"
#include "common/wino.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The loop's iterations do not depend on each other, so GCC vectorises
 * the transforms' loops over channels (omp simd made per-lane arrays of
 * their small matrices, and scalar code). Clang's counterpart warns where
 * it cannot (the fuzzers' -O1), so clang builds go without. */
#ifdef __clang__
#define IVDEP
#else
#define IVDEP _Pragma("GCC ivdep")
#endif

/* f(A, ...) with A the constant for the transform side a (3, 4 or 6). */
#define BY_SIDE(a, f, ...) ((a) == 3 ? f(3, __VA_ARGS__) : \
    (a) == 4 ? f(4, __VA_ARGS__) : f(6, __VA_ARGS__))

/* A tile kind's output side, and the side and offset of the input cells
 * it reads (all of its window but on a 2x2 image: see the top). */
#define OUT_SIDE(a) ((a) == 6 ? 4 : 2)
#define IN_SIDE(a) ((a) == 3 ? 2 : (a))
#define IN_OFF(a) ((a) == 3 ? 0 : -1)

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

/* The largest tile's input side and positions (F(4x4, 3x3)). */
#define AMAX 6
#define PMAX (AMAX * AMAX)

/* The convolution a pass computes: inp (B, H, W, C) -> out (B, H, W, OC),
 * in T tiles of m x m outputs, TH x TW per image, each transformed to
 * a x a, P = a a transform positions. */
typedef struct {
	int B, H, W, C, OC;
	int m, a, P;
	int TH, TW;
	long T;
} Tiling;

static Tiling
tiling(int B, int H, int W, int C, int OC, int a)
{
	Tiling t;
	int m = OUT_SIDE(a);

	t.B = B, t.H = H, t.W = W, t.C = C, t.OC = OC;
	t.m = m, t.a = a, t.P = a * a;
	t.TH = (H + m - 1) / m, t.TW = (W + m - 1) / m;
	t.T = (long)B * t.TH * t.TW;
	return t;
}

/* Multiplications per channel pair of an H x W image in m x m tiles. */
static long
products(int m, int H, int W)
{
	return (long)(m + 2) * (m + 2) * ((H + m - 1) / m) * ((W + m - 1) / m);
}

/*
 * The tile kind, as its transform's side a: 3 on a 2x2 image (F(2, 2)
 * on the image alone), 6 (F(4x4, 3x3)) where it saves a fifth of F(2x2,
 * 3x3)'s multiplications (maps of 3 or 4 pixels, 7 and more), else 4
 * (F(2x2, 3x3)), and 0 (none) for other convolutions or below a saving
 * of a quarter against the direct sum's 9 H W: tiles hanging over the
 * edge compute outputs that are thrown away, a 1x1 image costs 16
 * multiplications where the direct sum costs 9.
 */
static int
tile_kind(const ConvShape *s)
{
	long p2 = products(2, s->H, s->W), p4 = products(4, s->H, s->W);

	if (s->K != 3 || s->S != 1 || s->P != 1)
		return 0;
	if (s->H == 2 && s->W == 2)
		return 3;
	if (4 * RL_MIN(p2, p4) > 3 * 9L * s->H * s->W)
		return 0;
	return 5 * p4 <= 4 * p2 ? 6 : 4;
}

int
wino_tile_side(const ConvShape *s)
{
	int a = tile_kind(s);

	return a == 0 ? 0 : OUT_SIDE(a);
}

int
wino_applies(const ConvShape *s)
{
	return tile_kind(s) != 0;
}

static Tiling
shape_tiling(const ConvShape *s)
{
	return tiling(s->B, s->H, s->W, s->C, s->OC, tile_kind(s));
}

/*
 * Tiles per block with `scale` times the block floats, for a pass over
 * tl's tiles. OpenBLAS packs the (C x OC) weights again for every block's
 * product, so a block has at least WINO_WEIGHT_ROWS x max(C, OC) tiles:
 * the weights' packing then costs at most a fraction of the tiles'. No
 * more than a thread's share of the tiles, though (small maps, where
 * the blocks would otherwise exceed the work).
 */
static long
block_tiles(const Tiling *tl, size_t scale)
{
	int C = tl->C, OC = tl->OC, nt = omp_get_max_threads();
	size_t r = scale * WINO_BLOCK_FLOATS / (tl->P * (size_t)(C + OC));
	long share = (tl->T + nt - 1) / nt;

	r = RL_MAX(r, (size_t)WINO_WEIGHT_ROWS * RL_MAX(C, OC));
	r = RL_MIN(r, (size_t)RL_MAX(share, WINO_MINTILES));
	return RL_MAX(WINO_MINTILES, RL_MIN(WINO_MAXTILES, (long)r));
}

/* Per-thread floats: a forward block (input, products, output sink), and
 * a weight-gradient block (input, output gradient, partial sums). */
static size_t
fwd_thread_floats(const Tiling *tl)
{
	return tl->P * block_tiles(tl, 1) * (size_t)(tl->C + tl->OC) +
	    (size_t)tl->m * tl->m * RL_MAX(tl->C, tl->OC);
}

static size_t
dw_thread_floats(const Tiling *tl)
{
	return tl->P * block_tiles(tl, WINO_DW_SCALE) *
	    (size_t)(tl->C + tl->OC) + tl->P * (size_t)tl->C * tl->OC;
}

/* The work's parts: U (P C OC), a zero row of max(C, OC), then the
 * threads' blocks. */
typedef struct {
	float *U, *zero, *blocks;
} Work;

static size_t
head_floats(const ConvShape *s, const Tiling *tl)
{
	return tl->P * (size_t)s->C * s->OC +
	    (size_t)RL_MAX(s->C, s->OC);
}

static Work
work_parts(float *work, const ConvShape *s, const Tiling *tl)
{
	Work w;

	w.U = work;
	w.zero = w.U + tl->P * (size_t)s->C * s->OC;
	w.blocks = work + head_floats(s, tl);
	memset(w.zero, 0, RL_MAX(s->C, s->OC) * sizeof *w.zero);
	return w;
}

size_t
wino_work_floats(const ConvShape *s)
{
	Tiling tl = shape_tiling(s);
	Tiling tf = tiling(s->B, s->H, s->W, s->OC, s->C, tl.a);
	size_t per = RL_MAX(fwd_thread_floats(&tl), dw_thread_floats(&tl));

	per = RL_MAX(per, fwd_thread_floats(&tf));
	return head_floats(s, &tl) + (size_t)omp_get_max_threads() * per;
}

/* ------------------------------------------------------------------------ */
/* the one-dimensional transforms */

/* u (a) = G g */
ALWAYS_INLINE void
weight_1d(int a, float *u, float g0, float g1, float g2)
{
	if (a == 3) {
		u[0] = g1;
		u[1] = g0 - g1;
		u[2] = g2 - g1;
	} else if (a == 4) {
		u[0] = g0;
		u[1] = 0.5f * (g0 + g1 + g2);
		u[2] = 0.5f * (g0 - g1 + g2);
		u[3] = g2;
	} else {
		u[0] = 0.25f * g0;
		u[1] = (g0 + g1 + g2) / -6.0f;
		u[2] = (g0 - g1 + g2) / -6.0f;
		u[3] = (g0 + 2.0f * g1 + 4.0f * g2) / 24.0f;
		u[4] = (g0 - 2.0f * g1 + 4.0f * g2) / 24.0f;
		u[5] = g2;
	}
}

/* g (3) = G^T u, u (a) */
ALWAYS_INLINE void
weight_grad_1d(int a, float *g, const float *u)
{
	if (a == 3) {
		g[0] = u[1];
		g[1] = u[0] - u[1] - u[2];
		g[2] = u[2];
	} else if (a == 4) {
		float h = 0.5f * (u[1] + u[2]);

		g[0] = u[0] + h;
		g[1] = 0.5f * (u[1] - u[2]);
		g[2] = h + u[3];
	} else {
		float s = u[1] + u[2], d = u[2] - u[1];
		float p = u[3] + u[4], q = u[3] - u[4];

		g[0] = (6.0f * u[0] - 4.0f * s + p) / 24.0f;
		g[1] = (2.0f * d + q) / 12.0f;
		g[2] = (p - s) / 6.0f + u[5];
	}
}

/* v (a) = B^T d, d (IN_SIDE(a)) */
ALWAYS_INLINE void
input_1d(int a, float *v, const float *d)
{
	if (a == 3) {
		v[0] = d[0] + d[1];
		v[1] = d[0];
		v[2] = d[1];
	} else if (a == 4) {
		v[0] = d[0] - d[2];
		v[1] = d[1] + d[2];
		v[2] = d[2] - d[1];
		v[3] = d[1] - d[3];
	} else {
		v[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
		v[1] = (d[3] + d[4]) - 4.0f * (d[1] + d[2]);
		v[2] = (d[4] - d[3]) + 4.0f * (d[1] - d[2]);
		v[3] = (d[4] - d[2]) + 2.0f * (d[3] - d[1]);
		v[4] = (d[4] - d[2]) - 2.0f * (d[3] - d[1]);
		v[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
	}
}

/* v (a) = A y, y (m): an output gradient's transform */
ALWAYS_INLINE void
dout_1d(int a, float *v, const float *y)
{
	if (a == 3) {
		v[0] = y[0] + y[1];
		v[1] = y[1];
		v[2] = y[0];
	} else if (a == 4) {
		v[0] = y[0];
		v[1] = y[0] + y[1];
		v[2] = y[0] - y[1];
		v[3] = -y[1];
	} else {
		float e = y[0] + y[2], o = y[1] + y[3];
		float e4 = y[0] + 4.0f * y[2], o4 = 2.0f * y[1] + 8.0f * y[3];

		v[0] = y[0];
		v[1] = e + o;
		v[2] = e - o;
		v[3] = e4 + o4;
		v[4] = e4 - o4;
		v[5] = y[3];
	}
}

/* y (m) = A^T x, x (a): products back to outputs */
ALWAYS_INLINE void
output_1d(int a, float *y, const float *x)
{
	if (a == 3) {
		y[0] = x[0] + x[2];
		y[1] = x[0] + x[1];
	} else if (a == 4) {
		y[0] = x[0] + x[1] + x[2];
		y[1] = x[1] - x[2] - x[3];
	} else {
		float s = x[1] + x[2], d = x[1] - x[2];
		float p = x[3] + x[4], q = x[3] - x[4];

		y[0] = x[0] + s + p;
		y[1] = d + 2.0f * q;
		y[2] = s + 4.0f * p;
		y[3] = d + 8.0f * q + x[5];
	}
}

/* ------------------------------------------------------------------------ */
/* the two-dimensional ones, per channel */

/* The kinds of transform, and the sides of their one-dimensional ones:
 * the weights' G (3 -> a), an input's B^T and an output gradient's A
 * (-> a), the outputs' A^T (a -> m) and the weight gradient's G^T
 * (a -> 3). */
enum { TX_WEIGHT, TX_INPUT, TX_DOUT, TX_OUTPUT, TX_WGRAD };

ALWAYS_INLINE int
tx_in(int a, int k)
{
	return k == TX_WEIGHT ? 3 : k == TX_INPUT ? IN_SIDE(a) :
	    k == TX_DOUT ? OUT_SIDE(a) : a;
}

ALWAYS_INLINE int
tx_out(int a, int k)
{
	return k == TX_OUTPUT ? OUT_SIDE(a) : k == TX_WGRAD ? 3 : a;
}

ALWAYS_INLINE void
tx_1d(int a, int k, float *y, const float *x)
{
	if (k == TX_WEIGHT)
		weight_1d(a, y, x[0], x[1], x[2]);
	else if (k == TX_INPUT)
		input_1d(a, y, x);
	else if (k == TX_DOUT)
		dout_1d(a, y, x);
	else if (k == TX_OUTPUT)
		output_1d(a, y, x);
	else
		weight_grad_1d(a, y, x);
}

/*
 * The two-dimensional transform of kind k for tile kind a, of n channels
 * (or output channels) c: the 1-D one down the columns of the ni x ni
 * cells, then along the rows of the result, into no x no cells. Cell
 * q = ni i + j of channel c is src[q][c], or, when src is NULL,
 * srcs[q ss + c]; output cell q is dst[q][c] or dsts[q ds + c], written,
 * or added to when add. Inlined with constant a, k and NULLs, each use
 * compiles to its own loop nest, vectorised over c.
 */
ALWAYS_INLINE void
tx_2d(int a, int k, int n, const float *const *src,
    const float *restrict srcs, size_t ss, float *const *dst,
    float *restrict dsts, size_t ds, int add)
{
	int ni = tx_in(a, k), no = tx_out(a, k);

IVDEP
	for (int c = 0; c < n; c++) {
		float t[AMAX][AMAX], x[AMAX], y[AMAX];

#pragma GCC unroll 6
		for (int j = 0; j < ni; j++) {
#pragma GCC unroll 6
			for (int i = 0; i < ni; i++)
				x[i] = src != NULL ? src[ni * i + j][c] :
				    srcs[(ni * i + j) * ss + c];
			tx_1d(a, k, y, x);
#pragma GCC unroll 6
			for (int i = 0; i < no; i++)
				t[i][j] = y[i];
		}
#pragma GCC unroll 6
		for (int i = 0; i < no; i++) {
			tx_1d(a, k, y, t[i]);
#pragma GCC unroll 6
			for (int j = 0; j < no; j++) {
				float *z = dst != NULL ? &dst[no * i + j][c] :
				    &dsts[(no * i + j) * ds + c];

				*z = add ? *z + y[j] : y[j];
			}
		}
	}
}

/* U[p][c] (OC) = G g G^T for the channel c and every output channel;
 * weight (3, 3, C, OC), read at the kernel positions at[0..8], U[p]
 * (C x OC). */
ALWAYS_INLINE void
weight_channel_a(int a, float *U, const float *weight, int C, int OC, int c,
    const size_t *at)
{
	const float *g[9];

	for (int k = 0; k < 9; k++)
		g[k] = weight + at[k] + (size_t)c * OC;
	tx_2d(a, TX_WEIGHT, OC, g, NULL, 0, NULL, U + (size_t)c * OC,
	    (size_t)C * OC, 0);
}

/* U[p] (C x OC) = G g G^T for every channel pair, of the kernel rotated
 * by 180 degrees when rot (the input gradient's). */
static void
weight_transform(float *U, const float *weight, int C, int OC, int a,
    int rot)
{
	size_t at[9];

	for (int k = 0; k < 9; k++)
		at[k] = (size_t)(rot ? 8 - k : k) * C * OC;
#pragma omp parallel for schedule(static)
	for (int c = 0; c < C; c++)
		BY_SIDE(a, weight_channel_a, U, weight, C, OC, c, at);
}

/*
 * at[n i + j] = the cell (b, h, w) of the batch, as (b H + h) W + w, at
 * row m ty + off + i and column m tx + off + j of tile r's n x n window
 * (tile (ty, tx) of image b), or -1 outside the image.
 */
static void
tile_cells(long *at, int n, int off, const Tiling *tl, long r)
{
	long per = (long)tl->TH * tl->TW, q = r % per, b = r / per;
	int h0 = (int)(q / tl->TW) * tl->m + off;
	int w0 = (int)(q % tl->TW) * tl->m + off;

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
	long at[PMAX];

	tile_cells(at, n, off, tl, r);
	for (int k = 0; k < n * n; k++)
		d[k] = at[k] < 0 ? zero : base + (size_t)at[k] * ch;
}

/*
 * v[p * ps + c] = (B^T d B)[p] for the input cells d of tile r (zeros
 * outside the image, which is the padding), or, when dy, (A d A^T)[p]
 * for the m x m output gradient d of tile r (zeros past the image's edge:
 * outputs that do not exist); base has ch channels a cell.
 */
ALWAYS_INLINE void
tile_forward_a(int a, int dy, float *v, size_t ps, const float *base,
    int ch, const float *zero, const Tiling *tl, long r)
{
	const float *d[PMAX];
	int n = dy ? OUT_SIDE(a) : IN_SIDE(a);

	tile_reads(d, n, dy ? 0 : IN_OFF(a), base, ch, zero, tl, r);
	tx_2d(a, dy ? TX_DOUT : TX_INPUT, ch, d, NULL, 0, NULL, v, ps, 0);
}

static void
tile_input(float *v, size_t ps, const float *inp, const float *zero,
    const Tiling *tl, long r)
{
	BY_SIDE(tl->a, tile_forward_a, 0, v, ps, inp, tl->C, zero, tl, r);
}

static void
tile_dout(float *v, size_t ps, const float *dout, const float *zero,
    const Tiling *tl, long r)
{
	BY_SIDE(tl->a, tile_forward_a, 1, v, ps, dout, tl->OC, zero, tl, r);
}

/* The outputs of tile r: A^T x A, x[p * ps + o], written (beta 0) or
 * added (beta 1), then post added (post NULL, or beta 0) while the cells
 * are in cache; outputs past the image's edge go to sink (m m OC). */
ALWAYS_INLINE void
tile_output_a(int a, float *out, const float *restrict x, size_t ps,
    float beta, const ConvPost *post, float *sink, const Tiling *tl, long r)
{
	float *y[PMAX];
	long at[PMAX];
	int m = OUT_SIDE(a), OC = tl->OC;

	tile_cells(at, m, 0, tl, r);
	for (int k = 0; k < m * m; k++)
		y[k] = at[k] < 0 ? sink + (size_t)k * OC :
		    out + (size_t)at[k] * OC;
	tx_2d(a, TX_OUTPUT, OC, NULL, x, ps, y, NULL, 0, beta != 0.0f);
	for (int k = 0; post != NULL && k < m * m; k++)
		if (at[k] >= 0)
			conv_post_vec(y[k], post, post->res != NULL ?
			    post->res + (size_t)at[k] * OC : NULL, OC);
}

static void
tile_output(float *out, const float *x, size_t ps, float beta,
    const ConvPost *post, float *sink, const Tiling *tl, long r)
{
	BY_SIDE(tl->a, tile_output_a, out, x, ps, beta, post, sink, tl, r);
}

/* g (3, 3, C, OC) += G^T u G, u: the P summed products (C x OC each) of
 * the channels [c0, c1). */
ALWAYS_INLINE void
weight_grad_a(int a, float *dweight, const float *U, int C, int OC,
    int c0, int c1)
{
	size_t CO = (size_t)C * OC;

	for (int c = c0; c < c1; c++)
		tx_2d(a, TX_WGRAD, OC, NULL, U + (size_t)c * OC, CO, NULL,
		    dweight + (size_t)c * OC, CO, 1);
}

static void
weight_grad(float *dweight, const float *U, const Tiling *tl, int c0,
    int c1)
{
	BY_SIDE(tl->a, weight_grad_a, dweight, U, tl->C, tl->OC, c0, c1);
}

/* ------------------------------------------------------------------------ */
/* the passes */

/*
 * out = conv(inp) (beta 0) or out += conv(inp) (beta 1) for the tiling tl,
 * with the transformed weights U[p] (C x OC), or, when trans, U[p]^T (U
 * then holds (OC x C) matrices: the input gradient's, with tl's C the
 * forward's OC). blocks: the threads' fwd_thread_floats.
 */
static void
wino_pass(float *out, const float *inp, const float *U, int trans,
    const Tiling *tl, float beta, const ConvPost *post, float *blocks,
    const float *zero)
{
	int C = tl->C, OC = tl->OC, P = tl->P;
	long R = block_tiles(tl, 1), nb = (tl->T + R - 1) / R;
	size_t per = fwd_thread_floats(tl), CO = (size_t)C * OC;

	/* dynamic: a thread that loses its core leaves its blocks to the
	 * other; each output's sums are the same either way */
#pragma omp parallel for schedule(dynamic, 1)
	for (long k = 0; k < nb; k++) {
		float *v = blocks + (size_t)omp_get_thread_num() * per;
		float *x = v + P * R * C, *sink = x + P * R * OC;
		long r0 = k * R, r1 = RL_MIN(r0 + R, tl->T);
		int n = (int)(r1 - r0);

		for (long r = r0; r < r1; r++)
			tile_input(v + (r - r0) * C, R * C, inp, zero, tl, r);
		for (int p = 0; p < P; p++)
			blas_gemm_serial(0, trans, n, OC, C, v + p * R * C, C,
			    U + p * CO, trans ? C : OC, 0.0f, x + p * R * OC,
			    OC);
		for (long r = r0; r < r1; r++)
			tile_output(out, x + (r - r0) * OC, R * OC, beta, post,
			    sink, tl, r);
	}
}

size_t
wino_weight_floats(const ConvShape *s)
{
	int a = tile_kind(s);

	return (size_t)a * a * s->C * s->OC;
}

void
wino_weights(float *U, const float *weight, const ConvShape *s)
{
	assert(wino_applies(s));
	weight_transform(U, weight, s->C, s->OC, tile_kind(s), 0);
}

void
wino_forward(float *out, const float *inp, const float *weight,
    const float *U, const ConvPost *post, const ConvShape *s, float *work,
    size_t nwork)
{
	Tiling tl = shape_tiling(s);
	Work w;

	assert(wino_applies(s) && nwork >= wino_work_floats(s));
	w = work_parts(work, s, &tl);
	if (U == NULL)
		weight_transform(w.U, weight, s->C, s->OC, tl.a, 0);
	wino_pass(out, inp, U != NULL ? U : w.U, 0, &tl, 0.0f, post,
	    w.blocks, w.zero);
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
	int C = tl->C, OC = tl->OC, P = tl->P;
	long R = block_tiles(tl, WINO_DW_SCALE);
	size_t per = dw_thread_floats(tl), CO = (size_t)C * OC;
	size_t partoff = P * R * (size_t)(C + OC);

#pragma omp parallel
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		long r0 = tl->T * t / n, r1 = tl->T * (t + 1) / n;
		float *v = blocks + (size_t)t * per, *dy = v + P * R * C;
		float *part = blocks + (size_t)t * per + partoff;

		if (r1 <= r0)
			memset(part, 0, P * CO * sizeof *part);
		for (long r = r0; r < r1; r += R) {
			int nr = (int)RL_MIN(R, r1 - r);

			for (int i = 0; i < nr; i++) {
				tile_input(v + (size_t)i * C, R * C, inp, zero,
				    tl, r + i);
				tile_dout(dy + (size_t)i * OC, R * OC, dout,
				    zero, tl, r + i);
			}
			for (int p = 0; p < P; p++)
				blas_gemm_serial(1, 0, C, OC, nr,
				    v + p * R * C, C, dy + p * R * OC, OC,
				    r == r0 ? 0.0f : 1.0f, part + p * CO, OC);
		}
#pragma omp barrier
		/* the parts' sum into thread 0's part */
#pragma omp for schedule(static)
		for (size_t i = 0; i < P * CO; i++)
			for (int q = 1; q < n; q++)
				blocks[partoff + i] += blocks[(size_t)q * per +
				    partoff + i];
		weight_grad(dweight, blocks + partoff, tl, C * t / n,
		    C * (t + 1) / n);
	}
}

void
wino_backward(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s, float *work,
    size_t nwork)
{
	Tiling tl = shape_tiling(s);
	Tiling tf = tiling(s->B, s->H, s->W, s->OC, s->C, tl.a);
	Work w;

	assert(wino_applies(s) && nwork >= wino_work_floats(s));
	w = work_parts(work, s, &tl);
	wino_dweight(dweight, dout, inp, &tl, w.blocks, w.zero);
	if (dinp == NULL)
		return;
	/* the input gradient: dout convolved with the rotated, transposed
	 * weights */
	weight_transform(w.U, weight, s->C, s->OC, tl.a, 1);
	wino_pass(dinp, dout, w.U, 1, &tf, 1.0f, NULL, w.blocks, w.zero);
}

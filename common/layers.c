/*
 * layers: forward/backward kernels over channels-last float arrays.
 * See layers.h for the layout and the gradient conventions.
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "common/blas.h"
#include "common/layers.h"
#include "common/rng.h"
#include "common/util.h"
#include "common/wino.h"

/* Largest channel count of a batch norm (per-channel tables on the stack). */
#define BN_MAXC 8192

// ----------------------------------------------------------------------------
// convolution

ConvShape
conv_shape(int B, int H, int W, int C, int OC, int K, int S, int P)
{
	ConvShape s;

	assert(B > 0 && H > 0 && W > 0 && C > 0 && OC > 0 && K > 0 && S > 0 &&
	    P >= 0);
	s.B = B, s.H = H, s.W = W, s.C = C;
	s.OC = OC, s.K = K, s.S = S, s.P = P;
	assert(H + 2 * P >= K && W + 2 * P >= K);
	s.OH = (H + 2 * P - K) / S + 1;
	s.OW = (W + 2 * P - K) / S + 1;
	return s;
}

/* A 1x1 stride-1 unpadded convolution is a product on the input itself. */
static int
conv_is_pointwise(const ConvShape *s)
{
	return s->K == 1 && s->S == 1 && s->P == 0;
}

/* The tiled path (see conv_tile_rows): weights up to CONV_TILE_WEIGHTS
 * floats, tiles of about CONV_TILE_FLOATS column floats per thread. */
#define CONV_TILE_WEIGHTS ((size_t)256 * 1024)
#define CONV_TILE_FLOATS ((size_t)256 * 1024)
#define CONV_TILE_MINROWS 32

/*
 * A stride-1 convolution (any padding up to K-1) with small weights (see
 * CONV_TILE_WEIGHTS; rotating large ones costs more than it saves) has its
 * input gradient computed as a forward convolution of the output gradient
 * with the flipped, transposed weights (padding K-1-P): one product with
 * K*K*OC terms per sum instead of a product with OC terms into K*K-fold
 * columns and a scatter (col2im) of those back onto the input.
 */
static int
conv_is_flippable(const ConvShape *s)
{
	return s->S == 1 && s->K > 1 && s->P <= s->K - 1 &&
	    (size_t)s->K * s->K * s->C * s->OC <= CONV_TILE_WEIGHTS;
}

/* Column floats per image: of the input, and (flippable) of dout. */
static size_t
conv_col_per_image(const ConvShape *s)
{
	size_t per = (size_t)s->OH * s->OW * s->K * s->K * s->C;

	if (conv_is_flippable(s))
		per = RL_MAX(per, (size_t)s->H * s->W * s->K * s->K * s->OC);
	return per;
}

/* Floats of the flipped weights at the start of the backward's work. */
static size_t
conv_flip_floats(const ConvShape *s)
{
	return conv_is_flippable(s) ? (size_t)s->K * s->K * s->C * s->OC : 0;
}

size_t
conv_work_floats(const ConvShape *s, int chunk)
{
	size_t col = (size_t)chunk * conv_col_per_image(s);

	if (conv_is_pointwise(s))
		col = 0;
	col += RL_MAX(blas_gemm_scratch(s->K * s->K * s->C, s->OC),
	    conv_flip_floats(s));
	return wino_applies(s) ? RL_MAX(col, wino_work_floats(s)) : col;
}

/* Images per chunk so that a chunk's columns fit in nwork floats, with the
 * chunks of the batch as even as possible. */
static int
conv_chunk(const ConvShape *s, size_t nwork)
{
	size_t per = conv_col_per_image(s);
	size_t fit = nwork / per;
	int nchunk, chunk;

	assert(fit >= 1);
	if (fit > (size_t)s->B)
		fit = s->B;
	nchunk = (s->B + (int)fit - 1) / (int)fit;
	chunk = (s->B + nchunk - 1) / nchunk;
	return chunk;
}

/*
 * col (m1-m0, K*K*C): row m - m0 holds the input cells under the kernel at
 * output position m = (b, oh, ow) of the whole batch, in (kh, kw, c)
 * order, zeros where the kernel hangs over the padding. Serial.
 */
static void
im2col_rows(float *col, const float *inp, const ConvShape *s, long m0,
    long m1)
{
	int H = s->H, W = s->W, C = s->C, K = s->K, S = s->S, P = s->P;
	int OH = s->OH, OW = s->OW;
	size_t KC = (size_t)K * C, rowlen = KC * K;

	for (long m = m0; m < m1; m++) {
		int ow = (int)(m % OW), oh = (int)(m / OW % OH);
		int b = (int)(m / ((long)OW * OH));
		int ih0 = oh * S - P, iw0 = ow * S - P;
		float *dst = col + (m - m0) * rowlen;

		for (int kh = 0; kh < K; kh++, dst += KC) {
			int ih = ih0 + kh;
			const float *src;

			if (ih < 0 || ih >= H) {
				memset(dst, 0, KC * sizeof *dst);
				continue;
			}
			src = inp + ((size_t)b * H + ih) * W * C;
			if (iw0 >= 0 && iw0 + K <= W) {
				memcpy(dst, src + (size_t)iw0 * C,
				    KC * sizeof *dst);
				continue;
			}
			for (int kw = 0; kw < K; kw++) {
				int iw = iw0 + kw;

				if (iw < 0 || iw >= W)
					memset(dst + (size_t)kw * C, 0,
					    C * sizeof *dst);
				else
					memcpy(dst + (size_t)kw * C,
					    src + (size_t)iw * C,
					    C * sizeof *dst);
			}
		}
	}
}

/* col (nb*OH*OW, K*K*C): the columns of images b0 .. b0+nb-1, on the
 * threads. */
static void
im2col(float *col, const float *inp, const ConvShape *s, int b0, int nb)
{
	long per = (long)s->OH * s->OW, m0 = b0 * per;
	size_t rowlen = (size_t)s->K * s->K * s->C;

#pragma omp parallel
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		long r0 = nb * per * t / n, r1 = nb * per * (t + 1) / n;

		im2col_rows(col + r0 * rowlen, inp, s, m0 + r0, m0 + r1);
	}
}

/* y[n] (one output row or cell) += bias, += e, then max(0, .), as post
 * says (e: the residual's row, or NULL). The common forms are single
 * loops, so each vectorises. */
void
conv_post_vec(float *restrict y, const ConvPost *post,
    const float *restrict e, int n)
{
	const float *restrict b = post->bias;

	if (b != NULL && e != NULL && post->relu)
		for (int o = 0; o < n; o++) {
			float v = y[o] + b[o] + e[o];

			y[o] = v > 0 ? v : 0;
		}
	else if (b != NULL && e == NULL && post->relu)
		for (int o = 0; o < n; o++) {
			float v = y[o] + b[o];

			y[o] = v > 0 ? v : 0;
		}
	else if (b != NULL && e == NULL && !post->relu)
		for (int o = 0; o < n; o++)
			y[o] += b[o];
	else
		for (int o = 0; o < n; o++) {
			float v = y[o] + (b != NULL ? b[o] : 0) +
			    (e != NULL ? e[o] : 0);

			y[o] = post->relu && v < 0 ? 0 : v;
		}
}

/* Rows r0..r1-1 of out (N channels) get post (see ConvPost); serial. */
static void
post_rows(float *out, const ConvPost *post, long r0, long r1, int N)
{
	for (long r = r0; r < r1; r++)
		conv_post_vec(out + (size_t)r * N, post, post->res != NULL ?
		    post->res + (size_t)r * N : NULL, N);
}

void
conv_post_rows(float *out, const ConvPost *post, long rows, int OC)
{
#pragma omp parallel for schedule(static)
	for (long r = 0; r < rows; r += 64)
		post_rows(out, post, r, RL_MIN(r + 64, rows), OC);
}

/*
 * Convolutions with small weights (at most CONV_TILE_WEIGHTS floats: the
 * stem, layer1 and layer2 of a ResNet-50) run tiled: each thread takes a
 * contiguous run of output rows and, block by block of about
 * CONV_TILE_FLOATS column floats (cache-sized), builds the block's columns
 * and multiplies them at once, so the columns never go through memory.
 * The weights are packed again for every block, which is cheap only
 * while they are small.
 */

/* Rows per tile for column rows of rowlen floats, given ncol floats of
 * column space for all threads; 0 if the tiled path does not apply. */
static long
conv_tile_rows(const ConvShape *s, size_t rowlen, size_t ncol)
{
	size_t rows = CONV_TILE_FLOATS / rowlen;
	size_t fit = ncol / omp_get_max_threads() / rowlen;

	if ((size_t)s->K * s->K * s->C * s->OC > CONV_TILE_WEIGHTS ||
	    conv_is_pointwise(s))
		return 0;
	rows = RL_MAX(rows, CONV_TILE_MINROWS);
	rows = RL_MIN(rows, fit);
	return rows >= CONV_TILE_MINROWS ? (long)rows : 0;
}

/*
 * out (B*OH*OW, N) = im2col(inp) x wt (K*K*C, N) + beta out, tiled (rows
 * per tile, see conv_tile_rows); col: the threads' column space.
 */
static void
conv_tiled(float *out, const float *inp, const float *wt, int N,
    const ConvShape *s, float beta, float *col, long rows,
    const ConvPost *post)
{
	long M = (long)s->B * s->OH * s->OW;
	int KKC = s->K * s->K * s->C;

	long nb = (M + rows - 1) / rows;

	rows = (M + nb - 1) / nb;
	/* dynamic: a thread that loses its core to another process leaves
	 * its tiles to the other; each row's sums are the same either way */
#pragma omp parallel for schedule(dynamic, 1)
	for (long k = 0; k < nb; k++) {
		float *c = col + (size_t)omp_get_thread_num() * rows * KKC;
		long r = k * rows, r1 = RL_MIN(r + rows, M);

		im2col_rows(c, inp, s, r, r1);
		blas_gemm_serial(0, 0, (int)(r1 - r), N, KKC, c, KKC, wt, N,
		    beta, out + (size_t)r * N, N);
		if (post != NULL)
			post_rows(out, post, r, r1, N);
	}
}

/*
 * dweight (K*K*C, OC) += im2col(inp)^T x dout, tiled: each thread sums its
 * rows into its part of scratch (transposed when K*K*C > OC, as
 * blas_gemm's K split), then the parts are added.
 */
static void
conv_tiled_dweight(float *dweight, const float *dout, const float *inp,
    const ConvShape *s, float *scratch, float *col, long rows)
{
	long M = (long)s->B * s->OH * s->OW;
	int KKC = s->K * s->K * s->C, OC = s->OC, tr = KKC > OC;

#pragma omp parallel
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		long m0 = M * t / n, m1 = M * (t + 1) / n;
		long nb = (m1 - m0 + rows - 1) / rows;
		long step = nb > 0 ? (m1 - m0 + nb - 1) / nb : 1;
		float *c = col + (size_t)t * rows * KKC;
		float *part = scratch + (size_t)t * KKC * OC;

		if (m1 <= m0)
			memset(part, 0, (size_t)KKC * OC * sizeof *part);
		for (long r = m0; r < m1; r += step) {
			long r1 = RL_MIN(r + step, m1);
			const float *d = dout + (size_t)r * OC;
			float beta = r == m0 ? 0.0f : 1.0f;

			im2col_rows(c, inp, s, r, r1);
			if (tr)
				blas_gemm_serial(1, 0, OC, KKC, (int)(r1 - r),
				    d, OC, c, KKC, beta, part, KKC);
			else
				blas_gemm_serial(1, 0, KKC, OC, (int)(r1 - r),
				    c, KKC, d, OC, beta, part, OC);
		}
#pragma omp barrier
#pragma omp for schedule(static)
		for (int i = 0; i < KKC; i++)
			for (int j = 0; j < OC; j++) {
				float sum = dweight[(size_t)i * OC + j];

				for (int u = 0; u < n; u++)
					sum += tr ? scratch[((size_t)u * OC +
					    j) * KKC + i] : scratch[((size_t)u *
					    KKC + i) * OC + j];
				dweight[(size_t)i * OC + j] = sum;
			}
	}
}

/* dinp += the columns dcol scattered back to their input cells (the
 * adjoint of im2col). Parallel over images, which never share cells. */
static void
col2im_add(float *dinp, const float *dcol, const ConvShape *s, int b0,
    int nb)
{
	int H = s->H, W = s->W, C = s->C, K = s->K, S = s->S, P = s->P;
	int OH = s->OH, OW = s->OW;
	size_t KC = (size_t)K * C, rowlen = KC * K;

#pragma omp parallel for schedule(static)
	for (int bi = 0; bi < nb; bi++) {
		float *img = dinp + (size_t)(b0 + bi) * H * W * C;

		for (int oh = 0; oh < OH; oh++)
			for (int ow = 0; ow < OW; ow++) {
				const float *src = dcol + (((size_t)bi * OH +
				    oh) * OW + ow) * rowlen;
				int ih0 = oh * S - P, iw0 = ow * S - P;

				for (int kh = 0; kh < K; kh++, src += KC) {
					int ih = ih0 + kh, kw0, kw1;
					float *dst;

					if (ih < 0 || ih >= H)
						continue;
					kw0 = iw0 < 0 ? -iw0 : 0;
					kw1 = iw0 + K > W ? W - iw0 : K;
					dst = img + ((size_t)ih * W + iw0) * C;
					for (size_t j = (size_t)kw0 * C;
					    j < (size_t)kw1 * C; j++)
						dst[j] += src[j];
				}
			}
	}
}

/*
 * out (M, N) = inp (M, K) x op(w) + beta out, op(w) = w (K, N) or, when
 * tw, the transpose of w (N, K): a 1x1 convolution or its input gradient.
 * With small weights each thread takes blocks of about PW_TILE_FLOATS
 * floats of input and output rows, so the output block stays in cache
 * through OpenBLAS's passes over it (its clearing, its K blocks); large
 * weights, which every block would pack again, go to blas_gemm whole.
 */
#define PW_TILE_FLOATS ((size_t)128 * 1024)

/*
 * From this many rows on, a 1x1 convolution's input gradient transposes
 * the weights first (conv_backward): the faster product repays the copy.
 */
#define PW_TRANSPOSE_ROWS 512

static void
pointwise(float *out, const float *inp, const float *w, int tw, long M,
    int K, int N, float beta, const ConvPost *post)
{
	long rows = (long)(PW_TILE_FLOATS / (size_t)(K + N)), nb;

	if ((size_t)K * N > CONV_TILE_WEIGHTS || rows < CONV_TILE_MINROWS ||
	    M < 2 * rows) {
		blas_gemm(0, tw, (int)M, N, K, inp, K, w, tw ? K : N, beta,
		    out, N, NULL);
		if (post != NULL)
			conv_post_rows(out, post, M, N);
		return;
	}
	nb = (M + rows - 1) / rows;
	rows = (M + nb - 1) / nb;
#pragma omp parallel for schedule(dynamic, 1)
	for (long k = 0; k < nb; k++) {
		long r = k * rows, r1 = RL_MIN(r + rows, M);

		blas_gemm_serial(0, tw, (int)(r1 - r), N, K,
		    inp + (size_t)r * K, K, w, tw ? K : N, beta,
		    out + (size_t)r * N, N);
		if (post != NULL)
			post_rows(out, post, r, r1, N);
	}
}

void
conv_forward(float *out, const float *inp, const float *weight,
    const ConvShape *s, float *work, size_t nwork)
{
	conv_forward_post(out, inp, weight, NULL, NULL, s, work, nwork);
}

void
conv_forward_post(float *out, const float *inp, const float *weight,
    const float *U, const ConvPost *post, const ConvShape *s, float *work,
    size_t nwork)
{
	int KKC = s->K * s->K * s->C;
	long per = (long)s->OH * s->OW, rows;
	int chunk;

	if (post != NULL && post->bias == NULL && post->res == NULL &&
	    !post->relu)
		post = NULL;
	if (conv_is_pointwise(s)) {
		pointwise(out, inp, weight, 0, (long)s->B * per, s->C, s->OC,
		    0.0f, post);
		return;
	}
	if (wino_applies(s) && nwork >= wino_work_floats(s)) {
		wino_forward(out, inp, weight, U, post, s, work, nwork);
		return;
	}
	if ((rows = conv_tile_rows(s, KKC, nwork)) > 0) {
		conv_tiled(out, inp, weight, s->OC, s, 0.0f, work, rows, post);
		return;
	}
	chunk = conv_chunk(s, nwork);
	for (int b0 = 0; b0 < s->B; b0 += chunk) {
		int nb = RL_MIN(chunk, s->B - b0);
		float *o = out + (size_t)b0 * per * s->OC;

		im2col(work, inp, s, b0, nb);
		blas_gemm(0, 0, (int)(nb * per), s->OC, KKC, work, KKC,
		    weight, s->OC, 0.0f, o, s->OC, NULL);
		if (post != NULL) {
			ConvPost p = *post;

			if (p.res != NULL)
				p.res += (size_t)b0 * per * s->OC;
			conv_post_rows(o, &p, nb * per, s->OC);
		}
	}
}

/* f (OC, C) = w (C, OC) transposed, in blocks that stay in cache. */
static void
transpose(float *restrict f, const float *restrict w, int C, int OC)
{
	enum { T = 16 };

	for (int c0 = 0; c0 < C; c0 += T)
		for (int o0 = 0; o0 < OC; o0 += T)
			for (int c = c0; c < RL_MIN(c0 + T, C); c++)
				for (int o = o0; o < RL_MIN(o0 + T, OC); o++)
					f[(size_t)o * C + c] =
					    w[(size_t)c * OC + o];
}

/*
 * dinp += the input gradient of a flippable convolution (see
 * conv_is_flippable): wf (K, K, OC, C) = weight (K, K, C, OC) rotated by
 * 180 degrees and transposed, then per chunk of images
 *     dinp (nb*H*W, C) += im2col'(dout) (nb*H*W, K*K*OC) x wf
 * with im2col' the columns of dout at padding K-1-P. wf goes to the start
 * of work, the columns to col.
 */
static void
conv_backward_flipped(float *dinp, const float *dout, const float *weight,
    const ConvShape *s, float *work, float *col, size_t ncol, int chunk)
{
	int K = s->K, C = s->C, OC = s->OC, KKO = K * K * OC;
	size_t HWC = (size_t)s->H * s->W * C;
	float *wf = work;
	ConvShape t = conv_shape(s->B, s->OH, s->OW, OC, C, K, 1,
	    K - 1 - s->P);
	long rows;

#pragma omp parallel for schedule(static)
	for (int k = 0; k < K * K; k++)
		transpose(wf + (size_t)k * OC * C, weight + (size_t)(K * K -
		    1 - k) * C * OC, C, OC);
	assert(t.OH == s->H && t.OW == s->W);
	if ((rows = conv_tile_rows(&t, KKO, ncol)) > 0) {
		conv_tiled(dinp, dout, wf, C, &t, 1.0f, col, rows, NULL);
		return;
	}
	for (int b0 = 0; b0 < s->B; b0 += chunk) {
		int nb = RL_MIN(chunk, s->B - b0);

		im2col(col, dout, &t, b0, nb);
		blas_gemm(0, 0, nb * s->H * s->W, C, KKO, col, KKO, wf, C,
		    1.0f, dinp + (size_t)b0 * HWC, C, NULL);
	}
}

void
conv_backward(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s, float *work,
    size_t nwork)
{
	int KKC = s->K * s->K * s->C, OC = s->OC;
	long per = (long)s->OH * s->OW;
	size_t nscr = blas_gemm_scratch(KKC, OC);
	float *scratch = nscr ? work : NULL, *col;
	int chunk, flip;
	long rows;

	if (wino_applies(s) && nwork >= wino_work_floats(s)) {
		wino_backward(dinp, dweight, dout, inp, weight, s, work, nwork);
		return;
	}
	nscr = RL_MAX(nscr, conv_flip_floats(s));
	col = work + nscr;
	assert(nwork >= nscr);
	if (conv_is_pointwise(s)) {
		int M = (int)(s->B * per);

		blas_gemm(1, 0, KKC, OC, M, inp, KKC, dout, OC, 1.0f,
		    dweight, OC, scratch);
		if (dinp == NULL)
			return;
		if (M < PW_TRANSPOSE_ROWS) {
			pointwise(dinp, dout, weight, 1, M, OC, KKC, 1.0f,
			    NULL);
			return;
		}
		/* scratch is free again; a product with neither operand
		 * transposed runs on libxsmm (blas.h) */
		transpose(work, weight, KKC, OC);
		pointwise(dinp, dout, work, 0, M, OC, KKC, 1.0f, NULL);
		return;
	}
	chunk = conv_chunk(s, nwork - nscr);
	flip = dinp != NULL && conv_is_flippable(s);
	if (scratch != NULL &&
	    (rows = conv_tile_rows(s, KKC, nwork - nscr)) > 0 &&
	    (dinp == NULL || flip)) {
		conv_tiled_dweight(dweight, dout, inp, s, scratch, col, rows);
		if (flip)
			conv_backward_flipped(dinp, dout, weight, s, work, col,
			    nwork - nscr, chunk);
		return;
	}
	for (int b0 = 0; b0 < s->B; b0 += chunk) {
		int nb = RL_MIN(chunk, s->B - b0);
		const float *dchunk = dout + (size_t)b0 * per * OC;

		im2col(col, inp, s, b0, nb);
		blas_gemm(1, 0, KKC, OC, (int)(nb * per), col, KKC, dchunk, OC,
		    1.0f, dweight, OC, scratch);
		if (dinp == NULL || flip)
			continue;
		blas_gemm(0, 1, (int)(nb * per), KKC, OC, dchunk, OC, weight,
		    OC, 0.0f, col, KKC, NULL);
		col2im_add(dinp, col, s, b0, nb);
	}
	if (flip)
		conv_backward_flipped(dinp, dout, weight, s, work, col,
		    nwork - nscr, chunk);
}

void
conv_forward_naive(float *out, const float *inp, const float *weight,
    const ConvShape *s)
{
	int H = s->H, W = s->W, C = s->C, K = s->K, OC = s->OC;

	for (int b = 0; b < s->B; b++)
	for (int oh = 0; oh < s->OH; oh++)
	for (int ow = 0; ow < s->OW; ow++)
	for (int o = 0; o < OC; o++) {
		double sum = 0;

		for (int kh = 0; kh < K; kh++)
		for (int kw = 0; kw < K; kw++) {
			int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;

			if (ih < 0 || ih >= H || iw < 0 || iw >= W)
				continue;
			for (int c = 0; c < C; c++)
				sum += (double)inp[(((size_t)b * H + ih) * W + iw) *
				    C + c] * weight[(((size_t)kh * K + kw) * C +
				    c) * OC + o];
		}
		out[(((size_t)b * s->OH + oh) * s->OW + ow) * OC + o] =
		    (float)sum;
	}
}

void
conv_backward_naive(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s)
{
	int H = s->H, W = s->W, C = s->C, K = s->K, OC = s->OC;

	for (int b = 0; b < s->B; b++)
	for (int oh = 0; oh < s->OH; oh++)
	for (int ow = 0; ow < s->OW; ow++)
	for (int o = 0; o < OC; o++) {
		float d = dout[(((size_t)b * s->OH + oh) * s->OW + ow) * OC + o];

		for (int kh = 0; kh < K; kh++)
		for (int kw = 0; kw < K; kw++) {
			int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;

			if (ih < 0 || ih >= H || iw < 0 || iw >= W)
				continue;
			for (int c = 0; c < C; c++) {
				size_t xi = (((size_t)b * H + ih) * W + iw) * C + c;
				size_t wi = (((size_t)kh * K + kw) * C + c) * OC + o;

				dweight[wi] += d * inp[xi];
				if (dinp != NULL)
					dinp[xi] += d * weight[wi];
			}
		}
	}
}

// ----------------------------------------------------------------------------
// batch norm

/*
 * The per-channel sums run over channel blocks: each thread takes a
 * contiguous run of blocks (static schedule), so no partial sums cross
 * threads and the result does not depend on the thread count. Within a
 * block, BN_ROWS rows are summed in float in registers and L1 (the inner
 * loop is a plain vector add over the block's channels), then added to
 * double accumulators; the squares are taken about a per-channel shift (the
 * first row), which keeps E[x^2] - mean^2 from cancelling when the mean is
 * large against the spread.
 */
#define BN_BLOCK 256
#define BN_ROWS 64

static int
bn_block(int C)
{
	int nt = omp_get_max_threads();
	int cb = (C + nt - 1) / nt;

	cb = (cb + 15) / 16 * 16;
	if (cb > BN_BLOCK)
		cb = BN_BLOCK;
	return cb;
}

/*
 * Over rows 0..M-1 of channels c0..c0+n-1 (n <= BN_BLOCK) of (M, C) arrays:
 *     su[j] = sum u,  suv[j] = sum u * (b - kb[j]),  u = a - ka[j]
 * with u zeroed where b * sc[j] + sh[j] <= 0 when sc is not NULL (a ReLU
 * after the batch norm, its mask recomputed from the input b exactly as
 * bn_apply computed the output).
 */
static void
bn_sums(double *su, double *suv, const float *a, const float *ka,
    const float *b, const float *kb, const float *sc, const float *sh,
    long M, int C, int c0, int n)
{
	float f1[BN_BLOCK], f2[BN_BLOCK];

	for (int j = 0; j < n; j++)
		su[j] = suv[j] = 0;
	for (long r0 = 0; r0 < M; r0 += BN_ROWS) {
		long r1 = RL_MIN(r0 + BN_ROWS, M);

		for (int j = 0; j < n; j++)
			f1[j] = f2[j] = 0;
		for (long r = r0; r < r1; r++) {
			const float *ar = a + (size_t)r * C + c0;
			const float *br = b + (size_t)r * C + c0;

			if (sc != NULL)
				for (int j = 0; j < n; j++) {
					float v = br[j] * sc[j] + sh[j];
					float u = v > 0 ? ar[j] - ka[j] : 0;

					f1[j] += u;
					f2[j] += u * (br[j] - kb[j]);
				}
			else
				for (int j = 0; j < n; j++) {
					float u = ar[j] - ka[j];

					f1[j] += u;
					f2[j] += u * (br[j] - kb[j]);
				}
		}
		for (int j = 0; j < n; j++) {
			su[j] += f1[j];
			suv[j] += f2[j];
		}
	}
}

/* Rows per chunk of the element-wise batch-norm passes, handed out
 * dynamically (about 64 KB of each tensor): a thread that loses its core to
 * another process leaves its chunks to the other. */
static long
bn_rows_per_chunk(int C)
{
	return RL_MAX(1, 16384 / C);
}

/* The affine form of a training-mode batch norm: scale = gamma invstd,
 * shift = beta - mean scale (forward and the backward's ReLU mask). */
static void
bn_affine(float *scale, float *shift, const float *gamma, const float *beta,
    const float *mean, const float *invstd, int c0, int n)
{
	for (int c = c0; c < c0 + n; c++) {
		scale[c] = gamma[c] * invstd[c];
		shift[c] = beta[c] - mean[c] * scale[c];
	}
}

/* out = inp * scale + shift [+ res] [then max(0, .)], per channel, for
 * rows r0..r1-1. The four variants are separate loops so each vectorises
 * without a test per element. */
static void
bn_apply_rows(float *out, const float *inp, const float *res,
    const float *scale, const float *shift, long r0, long r1, int C, int relu)
{
	for (long r = r0; r < r1; r++) {
		const float *x = inp + (size_t)r * C;
		const float *e = res != NULL ? res + (size_t)r * C : NULL;
		float *y = out + (size_t)r * C;

		if (res != NULL && relu)
			for (int c = 0; c < C; c++) {
				float v = x[c] * scale[c] + shift[c] + e[c];

				y[c] = v > 0 ? v : 0;
			}
		else if (res != NULL)
			for (int c = 0; c < C; c++)
				y[c] = x[c] * scale[c] + shift[c] + e[c];
		else if (relu)
			for (int c = 0; c < C; c++) {
				float v = x[c] * scale[c] + shift[c];

				y[c] = v > 0 ? v : 0;
			}
		else
			for (int c = 0; c < C; c++)
				y[c] = x[c] * scale[c] + shift[c];
	}
}

/* bn_apply_rows over all M rows, in chunks on the threads. */
static void
bn_apply(float *out, const float *inp, const float *res, const float *scale,
    const float *shift, long M, int C, int relu)
{
	long rows = bn_rows_per_chunk(C);

#pragma omp parallel for schedule(dynamic, 1)
	for (long r = 0; r < M; r += rows)
		bn_apply_rows(out, inp, res, scale, shift, r, RL_MIN(r + rows,
		    M), C, relu);
}

/*
 * A channel's batch statistics from its sums about a shift k over M rows
 * (su = sum (x - k), suv = sum (x - k)^2): mean and invstd =
 * 1/sqrt(var + eps), the biased variance; the running statistics updated
 * when not NULL (the unbiased variance, as PyTorch).
 */
static void
bn_stats(float *mean, float *invstd, float *running_mean, float *running_var,
    double su, double suv, float k, long M, float momentum, float eps)
{
	double d = su / M, mu = k + d, var = suv / M - d * d;

	if (var < 0)
		var = 0;
	*mean = (float)mu;
	*invstd = (float)(1.0 / sqrt(var + eps));
	if (running_mean != NULL)
		*running_mean = (float)((1.0 - momentum) * *running_mean +
		    momentum * mu);
	if (running_var != NULL)
		*running_var = (float)((1.0 - momentum) * *running_var +
		    momentum * var * M / (M - 1));
}

void
batchnorm_forward(float *out, float *mean, float *invstd,
    float *running_mean, float *running_var, const float *inp,
    const float *res, const float *gamma, const float *beta, int M, int C,
    float momentum, float eps, int relu)
{
	int cb = bn_block(C);
	float scale[BN_MAXC], shift[BN_MAXC];

	assert(M >= 2 && C <= BN_MAXC);
#pragma omp parallel for schedule(static)
	for (int c0 = 0; c0 < C; c0 += cb) {
		int n = RL_MIN(cb, C - c0);
		double s1[BN_BLOCK], s2[BN_BLOCK];
		float k[BN_BLOCK];

		for (int j = 0; j < n; j++)
			k[j] = inp[c0 + j];
		bn_sums(s1, s2, inp, k, inp, k, NULL, NULL, M, C, c0, n);
		for (int j = 0; j < n; j++) {
			int c = c0 + j;

			bn_stats(mean + c, invstd + c, running_mean ?
			    running_mean + c : NULL, running_var ? running_var +
			    c : NULL, s1[j], s2[j], k[j], M, momentum, eps);
			bn_affine(scale, shift, gamma, beta, mean, invstd, c, 1);
		}
	}
	bn_apply(out, inp, res, scale, shift, M, C, relu);
}

void
batchnorm_forward_eval(float *out, const float *inp, const float *res,
    const float *gamma, const float *beta, const float *running_mean,
    const float *running_var, int M, int C, float eps, int relu)
{
	float scale[BN_MAXC], shift[BN_MAXC];

	assert(C <= BN_MAXC);
	for (int c = 0; c < C; c++) {
		float is = (float)(1.0 / sqrt((double)running_var[c] + eps));

		scale[c] = gamma[c] * is;
		shift[c] = beta[c] - running_mean[c] * scale[c];
	}
	bn_apply(out, inp, res, scale, shift, M, C, relu);
}

/*
 * The backward of channel c from its sums over M rows (sg = sum g, sgx =
 * sum g (x - mean)): dbeta, dgamma accumulated, and the coefficients of
 * dx = k0 g + k1 (x - mean) + k2.
 */
static void
bn_grad(float *k0, float *k1, float *k2, float *dgamma, float *dbeta,
    double sg, double sgx, const float *gamma, const float *invstd, int c,
    long M)
{
	double is = invstd[c];

	dbeta[c] += (float)sg;
	dgamma[c] += (float)(sgx * is);
	k0[c] = (float)(gamma[c] * is);
	k1[c] = (float)(-gamma[c] * is * is * is * sgx / M);
	k2[c] = (float)(-gamma[c] * is * sg / M);
}

/*
 * dx = k0 g + k1 (x - mean) + k2 per channel for rows r0..r1-1, g masked
 * by the fused ReLU when relu (recomputed from x: x scale + shift > 0).
 */
static void
bn_backward_rows(float *dinp, const float *dout, const float *inp,
    const float *mean, const float *scale, const float *shift,
    const float *k0, const float *k1, const float *k2, long r0, long r1,
    int C, int relu)
{
	for (long r = r0; r < r1; r++) {
		const float *x = inp + (size_t)r * C;
		const float *g = dout + (size_t)r * C;
		float *dx = dinp + (size_t)r * C;

		if (relu)
			for (int c = 0; c < C; c++) {
				float v = x[c] * scale[c] + shift[c];
				float gc = v > 0 ? g[c] : 0;

				dx[c] = k0[c] * gc + k1[c] * (x[c] - mean[c]) +
				    k2[c];
			}
		else
			for (int c = 0; c < C; c++)
				dx[c] = k0[c] * g[c] + k1[c] * (x[c] - mean[c]) +
				    k2[c];
	}
}

/*
 * With g the incoming gradient (masked by the ReLU if fused), x^ = (x -
 * mean) invstd and sums over the M rows:
 *     dbeta = sum g,  dgamma = sum g x^,
 *     dx = gamma invstd (g - dbeta/M - x^ dgamma/M).
 * The ReLU's mask is recomputed from x rather than read from the output:
 * one tensor less through memory in both passes.
 */
void
batchnorm_backward(float *dinp, float *dgamma, float *dbeta,
    const float *dout, const float *inp, const float *mean,
    const float *invstd, const float *gamma, const float *beta, int M,
    int C, int relu)
{
	int cb = bn_block(C);
	long rows = bn_rows_per_chunk(C);
	float k0[BN_MAXC], k1[BN_MAXC], k2[BN_MAXC];
	float scale[BN_MAXC], shift[BN_MAXC];

	assert(C <= BN_MAXC);
#pragma omp parallel for schedule(static)
	for (int c0 = 0; c0 < C; c0 += cb) {
		int n = RL_MIN(cb, C - c0);
		double sg[BN_BLOCK], sgx[BN_BLOCK];
		float zero[BN_BLOCK];

		for (int j = 0; j < n; j++)
			zero[j] = 0;
		bn_affine(scale, shift, gamma, beta, mean, invstd, c0, n);
		bn_sums(sg, sgx, dout, zero, inp, mean + c0, relu ? scale + c0 :
		    NULL, shift + c0, M, C, c0, n);
		for (int j = 0; j < n; j++)
			bn_grad(k0, k1, k2, dgamma, dbeta, sg[j], sgx[j], gamma,
			    invstd, c0 + j, M);
	}
#pragma omp parallel for schedule(dynamic, 1)
	for (long r = 0; r < M; r += rows)
		bn_backward_rows(dinp, dout, inp, mean, scale, shift, k0, k1,
		    k2, r, RL_MIN(r + rows, M), C, relu);
}

/*
 * The team's sums (layers.h). Thread t's part over its rows r0..r1-1 of
 * all C channels (bn_sums' su and suv, block by block of channels) goes
 * to its slot of the round's buffer, with the shifts ka its sums of a are
 * about and its row count; after the barrier every thread reads all the
 * parts (team_total). Returns the round's buffer.
 */
#define TEAM_STRIDE(cmax) ((size_t)3 * (cmax) + 8)

static const double *
team_sums(Team *tm, const float *a, const float *ka, const float *b,
    const float *kb, const float *sc, const float *sh, long r0, long r1,
    int C)
{
	size_t stride = TEAM_STRIDE(tm->cmax);
	double *buf = tm->sums + (size_t)(tm->round & 1) * tm->n * stride;
	double *mine = buf + (size_t)tm->t * stride;

	assert(C <= tm->cmax);
	for (int c0 = 0; c0 < C; c0 += BN_BLOCK)
		bn_sums(mine + c0, mine + tm->cmax + c0, a + (size_t)r0 * C,
		    ka + c0, b + (size_t)r0 * C, kb + c0, sc != NULL ? sc + c0 :
		    NULL, sh != NULL ? sh + c0 : NULL, r1 - r0, C, c0,
		    RL_MIN(BN_BLOCK, C - c0));
	for (int c = 0; c < C; c++)
		mine[2 * tm->cmax + c] = ka[c];
	mine[3 * tm->cmax] = (double)(r1 - r0);
	tm->round++;
#pragma omp barrier
	return buf;
}

/*
 * Channel c's totals over the team's parts, added in thread order. With
 * shifted, each part's sums of a were taken about its own shift (its
 * first row: another thread's rows may not be written yet when a thread
 * starts) and are moved to thread 0's, k0[c]:
 *     sum (x - k0)   = su + n d,  sum (x - k0)^2 = suv + 2 d su + n d^2
 * with d = k - k0 (the forward, where b is a and kb is ka). Without, all
 * parts share their shifts (the backward's zero and mean).
 */
static void
team_total(const Team *tm, const double *buf, int c, int shifted,
    double *su, double *suv)
{
	size_t stride = TEAM_STRIDE(tm->cmax);
	double k0 = buf[2 * tm->cmax + c];

	*su = *suv = 0;
	for (int u = 0; u < tm->n; u++) {
		const double *p = buf + u * stride;
		double d = shifted ? p[2 * tm->cmax + c] - k0 : 0;
		double n = p[3 * tm->cmax];

		*su += p[c] + n * d;
		*suv += p[tm->cmax + c] + 2 * d * p[c] + n * d * d;
	}
}

void
batchnorm_forward_team(Team *tm, float *out, float *mean, float *invstd,
    float *running_mean, float *running_var, const float *inp,
    const float *res, const float *gamma, const float *beta, long r0,
    long r1, long M, int C, float momentum, float eps, int relu)
{
	float scale[BN_MAXC], shift[BN_MAXC];
	float mu[BN_MAXC], is[BN_MAXC];
	const float *k = inp + (size_t)r0 * C;  /* this thread's shift */
	const double *buf;
	int lead = tm->t == 0;

	assert(M >= 2 && C >= 1 && C <= BN_MAXC && r1 > r0);
	buf = team_sums(tm, inp, k, inp, k, NULL, NULL, r0, r1, C);
	for (int c = 0; c < C; c++) {
		double su, suv;

		team_total(tm, buf, c, 1, &su, &suv);
		bn_stats(mu + c, is + c, lead && running_mean ?
		    running_mean + c : NULL, lead && running_var ?
		    running_var + c : NULL, su, suv,
		    (float)buf[2 * tm->cmax + c], M, momentum, eps);
	}
	bn_affine(scale, shift, gamma, beta, mu, is, 0, C);
	if (lead) {
		memcpy(mean, mu, C * sizeof *mean);
		memcpy(invstd, is, C * sizeof *invstd);
	}
	bn_apply_rows(out, inp, res, scale, shift, r0, r1, C, relu);
}

void
batchnorm_backward_team(Team *tm, float *dinp, float *dgamma, float *dbeta,
    const float *dout, const float *inp, const float *mean,
    const float *invstd, const float *gamma, const float *beta, long r0,
    long r1, long M, int C, int relu)
{
	float k0[BN_MAXC], k1[BN_MAXC], k2[BN_MAXC];
	float scale[BN_MAXC], shift[BN_MAXC], zero[BN_MAXC];
	float dg[BN_MAXC], db[BN_MAXC];
	const double *buf;

	assert(C >= 1 && C <= BN_MAXC);
	memset(zero, 0, C * sizeof *zero);
	bn_affine(scale, shift, gamma, beta, mean, invstd, 0, C);
	buf = team_sums(tm, dout, zero, inp, mean, relu ? scale : NULL, shift,
	    r0, r1, C);
	/* every thread computes the coefficients; thread 0 keeps dgamma and
	 * dbeta */
	for (int c = 0; c < C; c++) {
		double sg, sgx;

		team_total(tm, buf, c, 0, &sg, &sgx);
		dg[c] = tm->t == 0 ? dgamma[c] : 0;
		db[c] = tm->t == 0 ? dbeta[c] : 0;
		bn_grad(k0, k1, k2, dg, db, sg, sgx, gamma, invstd, c, M);
	}
	if (tm->t == 0) {
		memcpy(dgamma, dg, C * sizeof *dgamma);
		memcpy(dbeta, db, C * sizeof *dbeta);
	}
	bn_backward_rows(dinp, dout, inp, mean, scale, shift, k0, k1, k2, r0,
	    r1, C, relu);
}

// ----------------------------------------------------------------------------
// element-wise and pooling

void
relu_forward(float *out, const float *inp, size_t N)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < N; i++)
		out[i] = inp[i] > 0 ? inp[i] : 0;
}

void
relu_backward(float *dinp, const float *dout, const float *out, size_t N)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < N; i++)
		dinp[i] = out[i] > 0 ? dout[i] : 0;
}

void
maxpool_forward(float *out, uint8_t *arg, const float *inp, int B, int H,
    int W, int C)
{
	int OH = (H - 1) / 2 + 1, OW = (W - 1) / 2 + 1;

#pragma omp parallel for schedule(static)
	for (long m = 0; m < (long)B * OH * OW; m++) {
		int ow = (int)(m % OW), oh = (int)(m / OW % OH);
		int b = (int)(m / ((long)OW * OH));
		float *y = out + (size_t)m * C;
		uint8_t *a = arg != NULL ? arg + (size_t)m * C : NULL;
		int first = 1;

		for (int ih = 2 * oh - 1; ih <= 2 * oh + 1; ih++) {
			if (ih < 0 || ih >= H)
				continue;
			for (int iw = 2 * ow - 1; iw <= 2 * ow + 1; iw++) {
				const float *x;
				uint8_t k = (uint8_t)((ih - 2 * oh + 1) * 3 +
				    iw - 2 * ow + 1);

				if (iw < 0 || iw >= W)
					continue;
				x = inp + (((size_t)b * H + ih) * W + iw) * C;
				if (first) {  /* padded cells never win */
					for (int c = 0; c < C; c++)
						y[c] = x[c];
					for (int c = 0; a != NULL && c < C; c++)
						a[c] = k;
					first = 0;
					continue;
				}
				if (a != NULL)
					for (int c = 0; c < C; c++)
						a[c] = x[c] > y[c] ? k : a[c];
				for (int c = 0; c < C; c++)
					y[c] = x[c] > y[c] ? x[c] : y[c];
			}
		}
	}
}

/*
 * A gather: each input cell sums the gradients of the (at most 2 x 2)
 * windows that cover it and chose it, so every dinp element is written
 * once, with no clearing pass and no read-modify-write.
 */
void
maxpool_backward(float *dinp, const float *dout, const uint8_t *arg, int B,
    int H, int W, int C)
{
	int OH = (H - 1) / 2 + 1, OW = (W - 1) / 2 + 1;

#pragma omp parallel for schedule(static)
	for (long i = 0; i < (long)B * H * W; i++) {
		int iw = (int)(i % W), ih = (int)(i / W % H);
		int b = (int)(i / ((long)W * H));
		/* covering windows: oh in [ih/2 rounded up from (ih-1)/2,
		 * (ih+1)/2], likewise ow */
		int oh0 = ih / 2, oh1 = RL_MIN((ih + 1) / 2, OH - 1);
		int ow0 = iw / 2, ow1 = RL_MIN((iw + 1) / 2, OW - 1);
		float *d = dinp + (size_t)i * C;
		int n = 0;

		for (int oh = oh0; oh <= oh1; oh++)
		for (int ow = ow0; ow <= ow1; ow++) {
			size_t m = ((size_t)b * OH + oh) * OW + ow;
			const float *g = dout + m * C;
			const uint8_t *a = arg + m * C;
			uint8_t k = (uint8_t)((ih - 2 * oh + 1) * 3 + iw -
			    2 * ow + 1);

			if (n++ == 0)
				for (int c = 0; c < C; c++)
					d[c] = a[c] == k ? g[c] : 0;
			else
				for (int c = 0; c < C; c++)
					d[c] += a[c] == k ? g[c] : 0;
		}
	}
}

void
gap_forward(float *out, const float *inp, int B, int H, int W, int C)
{
	int HW = H * W;

#pragma omp parallel for schedule(static)
	for (int b = 0; b < B; b++) {
		float *y = out + (size_t)b * C;

		for (int c = 0; c < C; c++)
			y[c] = 0;
		for (int i = 0; i < HW; i++) {
			const float *x = inp + ((size_t)b * HW + i) * C;

			for (int c = 0; c < C; c++)
				y[c] += x[c];
		}
		for (int c = 0; c < C; c++)
			y[c] /= HW;
	}
}

void
gap_backward(float *dinp, const float *dout, int B, int H, int W, int C)
{
	int HW = H * W;

#pragma omp parallel for schedule(static)
	for (long m = 0; m < (long)B * HW; m++) {
		const float *g = dout + (size_t)(m / HW) * C;
		float *d = dinp + (size_t)m * C;

		for (int c = 0; c < C; c++)
			d[c] = g[c] / HW;
	}
}

void
avgpool_forward(float *out, const float *inp, int B, int H, int W, int C,
    int K, int S, int P)
{
	int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
	float inv = 1.0f / (K * K);

	assert(P <= K / 2 && OH > 0 && OW > 0);
#pragma omp parallel for schedule(static)
	for (long m = 0; m < (long)B * OH * OW; m++) {
		int ow = (int)(m % OW), oh = (int)(m / OW % OH);
		int b = (int)(m / ((long)OW * OH));
		float *y = out + (size_t)m * C;

		for (int c = 0; c < C; c++)
			y[c] = 0;
		for (int ih = oh * S - P; ih < oh * S - P + K; ih++) {
			if (ih < 0 || ih >= H)
				continue;
			for (int iw = ow * S - P; iw < ow * S - P + K; iw++) {
				const float *x;

				if (iw < 0 || iw >= W)
					continue;
				x = inp + (((size_t)b * H + ih) * W + iw) * C;
				for (int c = 0; c < C; c++)
					y[c] += x[c];
			}
		}
		for (int c = 0; c < C; c++)
			y[c] *= inv;
	}
}

void
avgpool_backward(float *dinp, const float *dout, int B, int H, int W, int C,
    int K, int S, int P)
{
	int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
	float inv = 1.0f / (K * K);

#pragma omp parallel for schedule(static)
	for (int b = 0; b < B; b++) {
		float *db = dinp + (size_t)b * H * W * C;

		memset(db, 0, (size_t)H * W * C * sizeof *db);
		for (int oh = 0; oh < OH; oh++)
		for (int ow = 0; ow < OW; ow++) {
			const float *g = dout + (((size_t)b * OH + oh) * OW +
			    ow) * C;

			for (int ih = oh * S - P; ih < oh * S - P + K; ih++) {
				if (ih < 0 || ih >= H)
					continue;
				for (int iw = ow * S - P; iw < ow * S - P + K;
				    iw++) {
					float *d;

					if (iw < 0 || iw >= W)
						continue;
					d = db + ((size_t)ih * W + iw) * C;
					for (int c = 0; c < C; c++)
						d[c] += g[c] * inv;
				}
			}
		}
	}
}

// ----------------------------------------------------------------------------
// linear, dropout, loss

void
linear_forward(float *out, const float *inp, const float *weight,
    const float *bias, int B, int C, int OC)
{
	blas_gemm(0, 1, B, OC, C, inp, C, weight, C, 0.0f, out, OC, NULL);
	if (bias == NULL)
		return;
#pragma omp parallel for schedule(static)
	for (int b = 0; b < B; b++)
		for (int o = 0; o < OC; o++)
			out[(size_t)b * OC + o] += bias[o];
}

void
linear_backward(float *dinp, float *dweight, float *dbias,
    const float *dout, const float *inp, const float *weight, int B, int C,
    int OC, float *scratch)
{
	blas_gemm(1, 0, OC, C, B, dout, OC, inp, C, 1.0f, dweight, C,
	    scratch);
	if (dbias != NULL) {
#pragma omp parallel for schedule(static)
		for (int o = 0; o < OC; o++) {
			double s = 0;

			for (int b = 0; b < B; b++)
				s += dout[(size_t)b * OC + o];
			dbias[o] += (float)s;
		}
	}
	if (dinp != NULL)
		blas_gemm(0, 0, B, C, OC, dout, OC, weight, C, 1.0f, dinp, C,
		    NULL);
}

/* Elements per dropout generator: the mask is drawn in fixed chunks, each
 * from its own key, so the threads split it without changing it. */
#define DROP_CHUNK 4096

void
dropout_forward(float *out, float *mask, const float *inp, size_t N,
    float p, uint64_t seed, uint64_t step)
{
	dropout_forward_at(out, mask, inp, N, 0, p, seed, step);
}

void
dropout_forward_at(float *out, float *mask, const float *inp, size_t N,
    size_t first, float p, uint64_t seed, uint64_t step)
{
	float keep = 1.0f / (1.0f - p);
	long k0 = (long)(first / DROP_CHUNK);
	long k1 = (long)((first + N + DROP_CHUNK - 1) / DROP_CHUNK);

	assert(p >= 0 && p < 1);
	assert(k1 < (1L << 24));
#pragma omp parallel for schedule(static)
	for (long k = k0; k < k1; k++) {
		size_t c0 = (size_t)k * DROP_CHUNK;
		size_t i0 = RL_MAX(first, c0);
		size_t i1 = RL_MIN(first + N, c0 + DROP_CHUNK);
		Rng g;

		rng_init(&g, seed, RNG_STREAM_DROPOUT, (step << 24) | (uint64_t)k);
		for (size_t i = c0; i < i0; i++)     /* draws of earlier shards */
			(void)rng_uniform(&g);
		for (size_t i = i0; i < i1; i++) {
			size_t j = i - first;

			mask[j] = rng_uniform(&g) < p ? 0.0f : keep;
			out[j] = inp[j] * mask[j];
		}
	}
}

void
dropout_backward(float *dinp, const float *dout, const float *mask,
    size_t N)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < N; i++)
		dinp[i] = dout[i] * mask[i];
}

float
crossentropy_forward(float *probs, int *ncorrect, const float *logits,
    const int *labels, int B, int V)
{
	double loss = 0;
	int right = 0;

	for (int b = 0; b < B; b++) {
		const float *l = logits + (size_t)b * V;
		float *p = probs + (size_t)b * V;
		int arg = 0;
		double sum = 0;

		assert(labels[b] >= 0 && labels[b] < V);
		for (int v = 1; v < V; v++)
			if (l[v] > l[arg])
				arg = v;
		for (int v = 0; v < V; v++)
			sum += exp((double)l[v] - l[arg]);
		for (int v = 0; v < V; v++)
			p[v] = (float)(exp((double)l[v] - l[arg]) / sum);
		loss += log(sum) + l[arg] - l[labels[b]];
		right += arg == labels[b];
	}
	if (ncorrect != NULL)
		*ncorrect = right;
	return (float)(loss / B);
}

void
crossentropy_backward(float *dlogits, const float *probs, const int *labels,
    int B, int V, float dloss)
{
	float f = dloss / B;

	for (int b = 0; b < B; b++)
		for (int v = 0; v < V; v++)
			dlogits[(size_t)b * V + v] = f * (probs[(size_t)b * V +
			    v] - (v == labels[b]));
}

/*
 * t_gemm: blas_gemm and blas_gemm_serial against double-precision loops,
 * for every transpose pair and both betas (beta 0 over a C full of NaN,
 * which must not leak through), on shapes that reach each path: libxsmm's
 * blocks with short last blocks in both directions, several column panels
 * and row strides wider than the rows; OpenBLAS for the transposed ones,
 * for a K too long for libxsmm's blocks and for an A too large for its
 * cache; the threaded splits by rows,
 * by columns and by K.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/blas.h"
#include "common/util.h"
#include "tests/check.h"

typedef struct {
	int M, N, K;
	int pad;     /* extra floats at the end of every row of A, B, C */
} Shape;

/* Fill n floats with values in [-1, 1) from a fixed sequence. */
static void
fill(float *x, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
	}
}

/*
 * One product through blas_gemm (serial 0) or blas_gemm_serial: the worst
 * error against the double sum, over the bound 1e-5 * sum |a b| + 1e-6;
 * > 1 fails. Also fails when the padding of C's rows was written.
 */
static double
one(int ta, int tb, const Shape *s, float beta, int serial)
{
	int M = s->M, N = s->N, K = s->K;
	int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
	int lda = ac + s->pad, ldb = bc + s->pad, ldc = N + s->pad;
	float *a = emalloc((size_t)ar * lda * sizeof *a);
	float *b = emalloc((size_t)br * ldb * sizeof *b);
	float *c = emalloc((size_t)M * ldc * sizeof *c);
	float *c0 = emalloc((size_t)M * ldc * sizeof *c0);
	float *scr = emalloc((blas_gemm_scratch(M, N) + 1) * sizeof *scr);
	double worst = 0;

	fill(a, (size_t)ar * lda, 1);
	fill(b, (size_t)br * ldb, 2);
	fill(c0, (size_t)M * ldc, 3);
	for (size_t i = 0; i < (size_t)M * ldc; i++)
		c[i] = beta == 0 && (int)(i % ldc) < N ? NAN : c0[i];
	if (serial)
		blas_gemm_serial(ta, tb, M, N, K, a, lda, b, ldb, beta, c,
		    ldc);
	else
		blas_gemm(ta, tb, M, N, K, a, lda, b, ldb, beta, c, ldc, scr);
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++) {
			double sum = beta == 0 ? 0 : c0[(size_t)i * ldc + j];
			double mag = fabs(sum);

			for (int k = 0; k < K; k++) {
				double x = ta ? a[(size_t)k * lda + i] :
				    a[(size_t)i * lda + k];
				double y = tb ? b[(size_t)j * ldb + k] :
				    b[(size_t)k * ldb + j];

				sum += x * y;
				mag += fabs(x * y);
			}
			double e = fabs(c[(size_t)i * ldc + j] - sum) /
			    (1e-5 * mag + 1e-6);

			worst = isnan(e) || e > worst ? (isnan(e) ? 1e30 :
			    e) : worst;
		}
		for (int j = N; j < ldc; j++)
			if (c[(size_t)i * ldc + j] != c0[(size_t)i * ldc + j])
				worst = 1e30;
	}
	free(a);
	free(b);
	free(c);
	free(c0);
	free(scr);
	return worst;
}

static void
all_kinds(const Shape *s, int serial)
{
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++)
			for (int bt = 0; bt < 2; bt++) {
				double e = one(ta, tb, s, (float)bt, serial);

				CHECK(e <= 1, "%s M %d N %d K %d pad %d ta %d "
				    "tb %d beta %d: error %.3g of the bound",
				    serial ? "serial" : "threaded", s->M, s->N,
				    s->K, s->pad, ta, tb, bt, e);
			}
}

/* libxsmm's blocks: 64 columns by 28 rows, panels of 128 Ki floats of B */
TEST(serial_shapes)
{
	static const Shape shapes[] = {
		{1, 1, 1, 0},
		{28, 64, 64, 0},       /* whole blocks only */
		{29, 65, 64, 0},       /* one short block each way */
		{57, 200, 37, 3},      /* short blocks, wide rows */
		{100, 500, 300, 1},    /* two column panels, short last */
		{5, 7, 3, 2},          /* smaller than one block */
		{40, 70, 4500, 0},     /* K too long: OpenBLAS */
		{1030, 20, 1024, 1},   /* A too large: OpenBLAS */
		{30, 3, 700, 5},
	};

	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		all_kinds(&shapes[i], 1);
}

TEST(threaded_shapes)
{
	static const Shape shapes[] = {
		{3000, 96, 64, 1},     /* split by rows, in blocks */
		{600, 80, 1100, 0},    /* by rows, one call each (K >= 1024) */
		{20, 900, 50, 2},      /* by columns */
		{24, 40, 5000, 0},     /* by K, into scratch */
	};

	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		all_kinds(&shapes[i], 0);
}

int
main(void)
{
	RUN(serial_shapes);
	RUN(threaded_shapes);
	return check_summary();
}

/*
 * blas: OpenBLAS set-up (core type, threads) and the threaded sgemm.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#include "common/blas.h"

/* Floats of A and C rows per product call in the row split. */
#define BLOCK_FLOATS (256 * 1024)
#define RL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RL_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

static int blas_single;  /* OpenBLAS already set to one thread */

static void
blas_single_thread(void)
{
#pragma omp critical(blas_single)
	if (!blas_single) {
		openblas_set_num_threads(1);
		blas_single = 1;
	}
}

/* Whether the CPU is an AMD one (the case measured on Zen 4). */
static int
cpu_is_amd(void)
{
	FILE *fp;
	char line[256];
	int amd = 0;

	if ((fp = fopen("/proc/cpuinfo", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, fp) != NULL)
		if (strncmp(line, "vendor_id", 9) == 0) {
			amd = strstr(line, "AuthenticAMD") != NULL;
			break;
		}
	fclose(fp);
	return amd;
}

void
blas_init(char **argv)
{
	const char *core = openblas_get_corename(), *no;
	int again = 0;

	no = getenv("RL_BLAS_NO_REEXEC");
	if (no != NULL && *no != '\0' && *no != '0') {
		blas_single_thread();
		return;
	}
	if (getenv("OPENBLAS_CORETYPE") == NULL && core != NULL &&
	    (strcasecmp(core, "cooperlake") == 0 ||
	    strcasecmp(core, "skylakex") == 0) && cpu_is_amd())
		again |= setenv("OPENBLAS_CORETYPE", "Haswell", 1) == 0;
	if (getenv("OMP_WAIT_POLICY") == NULL &&
	    getenv("GOMP_SPINCOUNT") == NULL)
		again |= setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
	if (again) {
		/* The libraries read these when loaded: start again. */
		fflush(NULL);
		execv("/proc/self/exe", argv);
	}
	blas_single_thread();
}

const char *
blas_corename(void)
{
	return openblas_get_corename();
}

int
blas_threads(void)
{
	return omp_get_max_threads();
}

size_t
blas_gemm_scratch(int M, int N)
{
	return (size_t)omp_get_max_threads() * M * N;
}

static void
gemm1(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		if (beta == 0)
			for (int i = 0; i < M; i++)
				memset(C + (size_t)i * ldc, 0, N * sizeof *C);
		return;
	}
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
	    tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
	    beta, C, ldc);
}

void
blas_gemm_serial(int ta, int tb, int M, int N, int K, const float *A,
    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	blas_single_thread();
	gemm1(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void
blas_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc, float *scratch)
{
	int nt = omp_get_max_threads();
	double flops = 2.0 * M * N * K;

	blas_single_thread();
	if (nt == 1 || flops < 2e6) {
		gemm1(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	if (scratch != NULL && K >= 4 * M && K >= 4 * N && K >= 64 * nt) {
		/*
		 * Split K: each thread sums its part into scratch, then the
		 * parts are added into C. When M > N the parts are computed
		 * transposed (C^T = op(B)^T op(A)^T), which puts the smaller
		 * dimension first: 10-13% faster on conv weight gradients
		 * (K*K*C rows against OC columns).
		 */
		int tr = M > N;

#pragma omp parallel num_threads(nt)
		{
			int t = omp_get_thread_num(), n = omp_get_num_threads();
			int k0 = (int)((long long)K * t / n);
			int k1 = (int)((long long)K * (t + 1) / n);
			const float *a = ta ? A + (size_t)k0 * lda : A + k0;
			const float *b = tb ? B + k0 : B + (size_t)k0 * ldb;
			float *part = scratch + (size_t)t * M * N;

			if (tr)
				gemm1(!tb, !ta, N, M, k1 - k0, b, ldb, a, lda,
				    0.0f, part, M);
			else
				gemm1(ta, tb, M, N, k1 - k0, a, lda, b, ldb,
				    0.0f, part, N);
#pragma omp barrier
#pragma omp for schedule(static)
			for (int i = 0; i < M; i++) {
				float *ci = C + (size_t)i * ldc;

				for (int j = 0; j < N; j++) {
					float sum = beta == 0 ? 0 : ci[j];

					for (int u = 0; u < n; u++)
						sum += tr ? scratch[((size_t)u *
						    N + j) * M + i] : scratch[
						    ((size_t)u * M + i) * N + j];
					ci[j] = sum;
				}
			}
		}
		return;
	}
	if (M >= N || M >= 64 * nt) {
		/*
		 * Split the rows of C (and of op(A)) into blocks whose A and
		 * C parts fit in about 1 MB, so
		 * OpenBLAS's beta pass over C and its kernel pass meet in
		 * cache (5-18% faster on the memory-bound 1x1 convolutions).
		 */
		int rb = (int)RL_CLAMP(BLOCK_FLOATS / (N + K), 256, 1 << 30);
		int nblk, step;

		if (K >= 1024) {
			/* compute-bound: one call per thread, B packed once */
#pragma omp parallel num_threads(nt)
			{
				int t = omp_get_thread_num();
				int n = omp_get_num_threads();
				int m0 = (int)((long long)M * t / n);
				int m1 = (int)((long long)M * (t + 1) / n);
				const float *a = ta ? A + m0 : A + (size_t)m0 * lda;

				gemm1(ta, tb, m1 - m0, N, K, a, lda, B, ldb,
				    beta, C + (size_t)m0 * ldc, ldc);
			}
			return;
		}
		/*
		 * Blocks handed out dynamically: a thread that loses its core
		 * to another process leaves its blocks to the other (each
		 * element's sum is the same whichever thread computes it).
		 */
		nblk = (M + rb - 1) / rb;
		step = (M + nblk - 1) / nblk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
		for (int k = 0; k < nblk; k++) {
			int r = k * step, nr = RL_MIN(step, M - r);
			const float *a = ta ? A + r : A + (size_t)r * lda;

			gemm1(ta, tb, nr, N, K, a, lda, B, ldb, beta,
			    C + (size_t)r * ldc, ldc);
		}
		return;
	}
	/* Split the columns of C (and of op(B)). */
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		int n0 = (int)((long long)N * t / n);
		int n1 = (int)((long long)N * (t + 1) / n);
		const float *b = tb ? B + (size_t)n0 * ldb : B + n0;

		gemm1(ta, tb, M, n1 - n0, K, A, lda, b, ldb, beta, C + n0,
		    ldc);
	}
}

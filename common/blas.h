/*
 * blas: the process-wide OpenBLAS set-up and the one matrix product every
 * kernel of relloc uses.
 *
 * Threading: blas_gemm splits each product across the OpenMP threads
 * itself and calls a single-threaded OpenBLAS in each, so OpenBLAS's own
 * thread pool never runs. With 2 cores that avoids two pools (OpenBLAS's
 * pthreads and OpenMP's) spinning against each other between a GEMM and the
 * element-wise loops around it, and it measured as fast as OpenBLAS's own
 * threading on conv-shaped products, faster on the weight-gradient ones.
 *
 * Kernel choice: OpenBLAS picks its kernels (OPENBLAS_CORETYPE) when the
 * library is loaded, before main() runs; see blas_init.
 *
 * What it does not do: any other BLAS routine, any other layout than
 * row-major, double precision.
 */
#ifndef RL_BLAS_H
#define RL_BLAS_H

#include <stddef.h>

/*
 * Call first in main(), before any other thread exists. If the user has not
 * set OPENBLAS_CORETYPE and OpenBLAS chose a core type measured as slower
 * than its Haswell kernels on this kind of machine (Cooperlake/SkylakeX
 * kernels on an AMD Zen CPU: 15-38% slower on conv-shaped GEMMs), sets
 * OPENBLAS_CORETYPE=Haswell and re-executes the program (/proc/self/exe)
 * with the same argv, so the library loads again with those kernels. A
 * value the user set is always kept, and RL_BLAS_NO_REEXEC=1 in the
 * environment disables the re-exec. Returns normally (possibly in the new
 * process image); if the re-exec fails it carries on with the kernels it
 * has. Also sets OpenBLAS to one thread (blas_gemm threads itself).
 */
void blas_init(char **argv);

/* The core type OpenBLAS runs with (e.g. "Haswell"), for logs. */
const char *blas_corename(void);

/* The number of threads blas_gemm and the kernels use (omp_get_max_threads). */
int blas_threads(void);

/*
 * C = op(A) op(B) + beta * C, single precision, row-major, where op(X) is X
 * or its transpose (ta, tb non-zero), op(A) is M x K, op(B) is K x N, C is
 * M x N; lda, ldb, ldc are the row strides of A, B, C as stored. beta is 0
 * (C is overwritten; it may hold garbage) or 1 (accumulate).
 *
 * The product is split across the threads by rows of C, or, when M is small
 * and K large (weight gradients), by K, each thread's partial sum going to
 * scratch, which then needs blas_gemm_scratch(M, N) floats (NULL is allowed
 * and then the split is by rows or columns of C instead). Call it from
 * serial code, not inside an OpenMP parallel region.
 */
void blas_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc, float *scratch);

/* Floats of scratch blas_gemm may use for an M x N result. */
size_t blas_gemm_scratch(int M, int N);

#endif

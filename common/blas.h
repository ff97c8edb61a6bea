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
 * Call first in main(), before any other thread exists. OpenBLAS reads
 * OPENBLAS_CORETYPE and libgomp OMP_WAIT_POLICY when they are loaded,
 * before main() runs, so when either needs setting this sets it and
 * re-executes the program (/proc/self/exe) with the same argv:
 *   - OPENBLAS_CORETYPE=Haswell, if unset and OpenBLAS chose its
 *     Cooperlake/SkylakeX kernels on an AMD CPU (Zen 4 runs AVX-512 as
 *     two halves; on a Zen 4 machine the Haswell kernels measured 15-38%
 *     faster on conv-shaped products);
 *   - OMP_WAIT_POLICY=passive, if neither it nor GOMP_SPINCOUNT is set:
 *     threads that wait sleep instead of spinning, which costs nothing
 *     measurable on idle cores and keeps a step from collapsing when the
 *     cores are shared (a sampler beside the trainer: a ResNet-50 step
 *     took 26 s with spinning, 9-12 s without, at a load of 10 on 2 cores).
 * A value the user set is always kept, and RL_BLAS_NO_REEXEC=1 in the
 * environment disables all of it. Returns normally (possibly in the new
 * process image); if the re-exec fails it carries on as it is. Also sets
 * OpenBLAS to one thread (blas_gemm threads itself).
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
 * The product is split across the threads by rows of C (in blocks handed
 * out as threads come free, unless K >= 1024), or, when M is small
 * and K large (weight gradients), by K, each thread's partial sum going to
 * scratch, which then needs blas_gemm_scratch(M, N) floats (NULL is allowed
 * and then the split is by rows or columns of C instead). The result does
 * not depend on what scratch held. Call it from
 * serial code, not inside an OpenMP parallel region.
 */
void blas_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc, float *scratch);

/*
 * The same product (any beta) on the calling thread only, for kernels that
 * split work across the OpenMP threads themselves: may be called inside a
 * parallel region.
 */
void blas_gemm_serial(int ta, int tb, int M, int N, int K, const float *A,
    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Floats of scratch blas_gemm may use for an M x N result. */
size_t blas_gemm_scratch(int M, int N);

#endif

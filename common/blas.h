/*
 * blas: the process-wide OpenBLAS set-up, and the one single-precision
 * matrix product of relloc: the engine (layers, wino, resnet, relloc),
 * the kNN similarities (knn) and the linear probes (probe) all multiply
 * through blas_gemm or blas_gemm_serial. The one exception is the SVM
 * (svm.c, svmproto.c): its Gram matrices are double precision (dsyrk,
 * dgemm), called directly with OpenBLAS's own threads, whose number
 * svmproto sets (on the kernels blas_init chose: rl-svm calls it too).
 *
 * Threading: blas_gemm splits each product across the OpenMP threads
 * itself and calls a single-threaded OpenBLAS in each, so OpenBLAS's own
 * thread pool never runs for them. With 2 cores that avoids two pools
 * (OpenBLAS's pthreads and OpenMP's) spinning against each other between
 * a GEMM and the element-wise loops around it, and it measured as fast as
 * OpenBLAS's own threading on conv-shaped products, faster on the
 * weight-gradient ones.
 *
 * Kernel choice: OpenBLAS picks its kernels (its "core type") when the
 * library is loaded, before main() runs, by the CPU's name, and that pick
 * is not the fastest everywhere: its AVX-512 kernels (SkylakeX,
 * Cooperlake) lose to its AVX2 ones (Haswell) on a Zen 4, which runs
 * AVX-512 as two halves, and win by far on a Zen 5, which OpenBLAS 0.3.21
 * does not know and gives Haswell (bench/b_kernels.sh measures it on the
 * machine at hand). So blas_init chooses by measurement: once per CPU
 * model and OpenBLAS release it times the products a ResNet step spends
 * its time in (blas_shapes) under every core type the CPU can run, each in
 * a child process (OpenBLAS reads OPENBLAS_CORETYPE only when loaded), and
 * keeps the fastest in a cache file; every later start reads the file.
 * Measured rather than tabled by CPU family because the machines relloc
 * runs on are not all known in advance, and a table would be right only
 * for the CPUs someone measured; cached because the calibration takes a
 * few seconds, which a tool must not pay at every start.
 *
 * Products with neither operand transposed (a convolution's forward, a
 * 1x1 convolution's input gradient, Winograd's forward blocks) go to
 * libxsmm instead, when libxsmm has a kernel for them, their inner size
 * K is at most about 4096 and A holds at most 1 Mi floats (beyond, its
 * blocks read A and B from memory again and again, where OpenBLAS's
 * blocking keeps them in cache): its just-in-time kernels use A and B where
 * they lie, where OpenBLAS copies both into its own layout at every call,
 * which costs most on the products of a few hundred rows that the layers
 * make. On a Zen 4 they ran 1.1 to 1.5 times as fast as OpenBLAS's best
 * kernels on one core on ResNet shapes with warm caches, and about as
 * fast with cold ones; rl-extract ran 1.12 times as fast end to end.
 * libxsmm picks its instruction set by the CPU's flags (AVX-512 on a Zen
 * 4 or 5, where they beat its AVX2 ones; LIBXSMM_TARGET overrides it),
 * so the calibration below times OpenBLAS alone. RL_BLAS_XSMM=0 in the
 * environment leaves every product to OpenBLAS.
 *
 * What it does not do: any other BLAS routine, any other layout than
 * row-major, double precision; no kernel choice on CPUs other than x86-64.
 */
#ifndef RL_BLAS_H
#define RL_BLAS_H

#include <stddef.h>

/*
 * Call first in main(), before any other thread exists, in every tool that
 * multiplies matrices. OpenBLAS reads OPENBLAS_CORETYPE and libgomp
 * OMP_WAIT_POLICY when they are loaded, before main() runs, so when either
 * needs setting this sets it and re-executes the program (/proc/self/exe)
 * with the same argv:
 *   - OPENBLAS_CORETYPE, if unset: the core type found fastest on this
 *     CPU (above), read from $XDG_CACHE_HOME/relloc (or ~/.cache/relloc)
 *     in a file named for the CPU model (model name, family, model), the
 *     OpenBLAS release and the core types the CPU can run. When there is
 *     none, this calibrates first: each candidate (Haswell, Zen, SkylakeX,
 *     Cooperlake, those the CPU's flags allow; Sandybridge only without
 *     FMA) runs as a child of this program, which blas_init stops after
 *     timing (by CPU time, blas_score, so that a busy machine disturbs
 *     the ranking less); the close ones are timed twice, the best kept.
 *     Concurrent starts wait on a lock and then read the first one's
 *     result. No calibration (OpenBLAS's own pick) when there is no cache
 *     directory (HOME and XDG_CACHE_HOME unset), or nothing to compare.
 *     Delete the file to calibrate again (on a quiet machine: the
 *     choice is only as good as the timing);
 *   - GOMP_SPINCOUNT=BLAS_SPINCOUNT, if neither it nor OMP_WAIT_POLICY is
 *     set: a thread that waits spins for about a millisecond, then
 *     sleeps. The threads of a team (layers.h) meet hundreds of times a
 *     step, for microseconds each, and waking a sleeping thread costs
 *     more than that: a ResNet-50 training step ran 1.04-1.2 times faster
 *     than with OMP_WAIT_POLICY=passive (the former default); and when
 *     other processes share the cores, threads that spin without end
 *     (OMP_WAIT_POLICY=active) took the cores from the ones with work
 *     and steps ran two to five times slower, where this costs about 10%
 *     against passive (bench notes in rl-train(1));
 * A value the user set is always kept (OPENBLAS_CORETYPE is the user's
 * override), and RL_BLAS_NO_REEXEC=1 in the environment disables all of
 * it. Reads RL_BLAS_XSMM (above). Returns normally (possibly in the new process image); if the
 * re-exec fails it carries on as it is. Also sets OpenBLAS to one thread
 * (blas_gemm threads itself).
 */
void blas_init(char **argv);

/* The spin count blas_init sets (GOMP_SPINCOUNT, iterations of a pause). */
#define BLAS_SPINCOUNT "100000"

/* The core type OpenBLAS runs with (e.g. "Haswell"), for logs. */
const char *blas_corename(void);

/*
 * How that core type came about, for logs: "user" (OPENBLAS_CORETYPE was
 * set), "cached" (a past calibration), "calibrated" (at this start), or
 * "default" (OpenBLAS's own pick: no cache directory, nothing to compare,
 * RL_BLAS_NO_REEXEC, or blas_init not called).
 */
const char *blas_origin(void);

/*
 * The cache file blas_init reads for this CPU into buf (len bytes): 0, or
 * -1 when there is no cache directory. The file's first line is the core
 * type, the second the key, the third the calibration's figures.
 */
int blas_cache_path(char *buf, size_t len);

/*
 * The core types this CPU can run (all of the calibration's list the CPU
 * flags allow, Sandybridge included) into names[0..max): their number.
 */
int blas_coretypes(const char **names, int max);

/* "model name, family F, model M" of /proc/cpuinfo, into buf. */
void blas_cpu(char *buf, size_t len);

/*
 * An sgemm shape as blas_gemm takes it (C is M x N, K the inner size);
 * serial: timed as 16 products on each thread through blas_gemm_serial,
 * as wino.c does its blocks.
 */
typedef struct {
	const char *what;
	int ta, tb, M, N, K;
	int serial;
} BlasShape;

/* The calibration's shapes: ResNet-50 products at 144 patches of 64x64. */
extern const BlasShape blas_shapes[];
extern const int blas_nshapes;

/*
 * GFLOP/s of blas_gemm on shape s (the best of at least 3 runs after a
 * warm-up, and of as many as fit in `seconds`), on blas_threads() threads,
 * by the clock. Unless cpu is NULL, *cpu gets the same by the process's
 * CPU time (FLOPs over CPU seconds per thread): what the threads did while
 * they had a core, which other processes on the cores disturb far less.
 */
double blas_rate(const BlasShape *s, double seconds, double *cpu);

/*
 * GFLOP/s over one product of each of blas_shapes (their total FLOPs over
 * their total best times), by the clock; each shape's own rate goes to
 * rates[i] unless rates is NULL, and the score by CPU time (blas_rate) to
 * *cpu unless NULL. The calibration compares the CPU-time scores.
 */
double blas_score(double seconds, double *rates, double *cpu);

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

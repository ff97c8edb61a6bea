/*
 * svm: the linear SVM of the VOC07 benchmarks: L2-regularised, squared
 * hinge loss, bias appended as a regularised feature, solved in the dual by
 * coordinate descent with shrinking. This is liblinear's
 * L2R_L2LOSS_SVC_DUAL (Hsieh et al., "A dual coordinate descent method for
 * large-scale linear SVM", ICML 2008, Algorithm 3), which scikit-learn's
 * LinearSVC(loss='squared_hinge', dual=True) runs:
 *
 *   min_w  1/2 |w~|^2 + sum_i C_i max(0, 1 - y_i w~.x~_i)^2,
 *   x~ = [x; bias], C_i = cpos (y_i = +1) or cneg (y_i = -1);
 *   dual:  min_a  1/2 a'(Q + D)a - sum a,  a >= 0,
 *   Q_ij = y_i y_j x~_i.x~_j,  D_ii = 1 / (2 C_i),  w~ = sum_i y_i a_i x~_i.
 *
 * Each outer iteration visits the active coordinates in a fresh random
 * order (common/rng: seed, RNG_STREAM_SVM, index), shrinks a_i = 0 whose
 * gradient exceeds the last pass's largest projected gradient, and stops
 * when max PG - min PG <= eps over all coordinates, or after max_iter
 * outer iterations, exactly as liblinear does. Arithmetic is double.
 *
 * Two forms of the same iteration:
 * - svm_fit_dense works on feature rows, as liblinear does: each visit
 *   costs a dot product and, on a change, an axpy over d + 1 features.
 * - svm_fit_gram works on a precomputed kernel matrix K~ = X~ X~' (stored
 *   as float) and keeps the margins f_j = w~.x~_j of all n rows up to date:
 *   a visit costs nothing, a change an axpy over n. For n <= d this is
 *   much cheaper, and one kernel serves every class, cost and fold.
 * In exact arithmetic both make the same updates; they differ by rounding
 * (and the float kernel).
 *
 * No I/O, no threads inside; calls on separate outputs may run in
 * parallel. Argument errors are programmer errors (assert).
 */
#ifndef RL_SVM_H
#define RL_SVM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	double eps;        /* stop when max PG - min PG <= eps (1e-4) */
	int max_iter;      /* outer iterations (2000, as MMSelfSup) */
	int warm;          /* 1: start from the alpha passed in, not 0 */
	uint64_t seed;     /* the permutation stream is rng(seed, */
	uint64_t index;    /*   RNG_STREAM_SVM, index): one index per fit */
} SvmParam;

typedef struct {
	int iter;          /* outer iterations run */
	int converged;     /* 0: stopped by max_iter */
	size_t nsv;        /* coordinates with alpha > 0 */
	uint64_t nvisit;   /* coordinate visits */
	uint64_t nstep;    /* visits that changed alpha */
} SvmInfo;

/* MMSelfSup's LinearSVC settings: eps 1e-4, max_iter 2000, cold, seed 0. */
void svm_param_init(SvmParam *p);

/*
 * Fit on the n rows rows[0..n) (or 0..n when rows is NULL) of X (row i
 * at X + i*ldx, d features) with an extra feature of value `bias`, labels
 * y[k] = +1 or -1 for row rows[k]. Writes w[0..d] (w[d] is the weight of
 * the bias feature, so a decision value is w.x + w[d]*bias) and alpha[n]
 * (read first when p->warm). info may be NULL.
 */
void svm_fit_dense(double *w, double *alpha, SvmInfo *info, const double *X,
    size_t ldx, const uint32_t *rows, size_t n, size_t d, double bias,
    const int8_t *y, double cpos, double cneg, const SvmParam *p);

/*
 * Fit nfit problems at once on one kernel: K is n x n (row i at K +
 * i*ldk), symmetric, K_ij = x~_i.x~_j including the bias term; fit c has
 * labels y + c*ldy (ldy 0: all fits share y) and costs cpos[c], cneg[c].
 * The fits run in lockstep on one shared permutation per outer
 * iteration, so a kernel row fetched for one fit's update serves the
 * others from cache; each fit still visits its own active set in a
 * uniform random order and stops on its own, and its result equals a run
 * of it alone with the same seed and index. Writes alpha (nfit x n; read
 * first when p->warm) and, when f is not NULL, the margins f[c*n + j] =
 * w~_c.x~_j. info (nfit entries) may be NULL.
 */
void svm_fit_gram(double *alpha, double *f, SvmInfo *info, const float *K,
    size_t ldk, size_t n, const int8_t *y, size_t ldy, const double *cpos,
    const double *cneg, size_t nfit, const SvmParam *p);

/*
 * w[0..d] = sum_k y[k] alpha[k] x~_{rows[k]} (rows NULL: 0..n): the
 * primal weights of a kernel fit, in svm_fit_dense's layout.
 */
void svm_weights(double *w, const double *X, size_t ldx, const uint32_t *rows,
    size_t n, size_t d, double bias, const int8_t *y, const double *alpha);

/* out[i] = w.x_i + w[d]*bias for the m rows of X (row i at X + i*ldx). */
void svm_decision(double *out, const double *X, size_t ldx, size_t m,
    size_t d, double bias, const double *w);

/*
 * Decision values through a kernel, for several fits at once:
 * out[c*m + t] = sum_k coef[c*n + k] * K[rows[k]*ldk + tg[t]] for t < m
 * and c < nfit, with coef = y * alpha of fit c (rows NULL: 0..n, tg NULL:
 * 0..m). Row r of K holds the kernel values, bias included, between
 * training row r and the targets (for held-out training rows, the
 * training kernel itself, which is symmetric).
 */
void svm_decision_kernel(double *out, size_t m, size_t nfit, const float *K,
    size_t ldk, const uint32_t *rows, size_t n, const uint32_t *tg,
    const double *coef);

/*
 * K = X~ X~' for the n rows of X (n x d, row i at X + i*ldx, double) with
 * the bias feature, rounded to float; K is n x n, row i at K + i*n.
 * Uses BLAS (dsyrk) in double. Returns 0, or -1 when the n x n double
 * scratch cannot be allocated.
 */
int svm_gram(float *K, const double *X, size_t ldx, size_t n, size_t d,
    double bias);

/*
 * Kc = X~ Z~' (n x m, row i at Kc + i*m): the kernel between the rows of
 * X (training) and the rows of Z (targets), bias included, as float. BLAS
 * dgemm in double, by blocks of rows. Returns 0 or -1 as svm_gram.
 */
int svm_cross_gram(float *Kc, const double *X, size_t ldx, size_t n,
    const double *Z, size_t ldz, size_t m, size_t d, double bias);

#endif

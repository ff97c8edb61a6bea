/*
 * svm: dual coordinate descent for the L2-loss linear SVM. See svm.h.
 * The iteration follows Hsieh et al. (ICML 2008), Algorithm 3, with the
 * shrinking and stopping rules that liblinear's solve_l2r_l1l2_svc uses.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/rng.h"
#include "common/svm.h"
#include "common/util.h"

void
svm_param_init(SvmParam *p)
{
	p->eps = 1e-4;
	p->max_iter = 2000;
	p->warm = 0;
	p->seed = 0;
	p->index = 0;
}

// ----------------------------------------------------------------------
// The coordinate-descent loop, shared by both forms, for nfit fits on the
// same rows in lockstep. A form supplies margin(c, i) = w~_c.x~_i and
// step(c, i, d): w~_c += d x~_i (and whatever it keeps in step with w~_c).
//
// liblinear shuffles the active prefix of an index array and swaps a
// shrunk coordinate out of it. Here every outer iteration shuffles all n
// coordinates once, and each fit visits its active ones in that order: a
// uniform random order of its active set all the same, and a fit's path
// does not depend on which other fits run beside it (fit c of a lockstep
// run equals a run of fit c alone with the same seed and index).

typedef struct {
	double (*margin)(void *ctx, size_t c, size_t i);
	void (*step)(void *ctx, size_t c, size_t i, double d);
	void *ctx;
} Form;

typedef struct {
	double diag[2];          // D_ii = 1 / (2 C_i), by y_i > 0
	// liblinear also keeps PGmin_old, but reads it only for the upper
	// bound of the L1 loss; alpha has none here.
	double pgmax_old, pgmax_new, pgmin_new;
	size_t nactive;
	int iter, done, converged;
	uint64_t nvisit, nstep;
} Fit;

static void
cd_solve(double *alpha, SvmInfo *info, const Form *fm, const double *kd,
    size_t n, const int8_t *y, size_t ldy, const double *cpos,
    const double *cneg, size_t nfit, const SvmParam *p)
{
	uint32_t *perm = emalloc(n * sizeof *perm);
	uint8_t *act = emalloc(nfit * n);
	Fit *F = ecalloc(nfit, sizeof *F);
	size_t left = 0;
	Rng g;

	assert(n <= UINT32_MAX);
	rng_init(&g, p->seed, RNG_STREAM_SVM, p->index);
	for (size_t i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	memset(act, 1, nfit * n);
	for (size_t c = 0; c < nfit; c++) {
		assert(cpos[c] > 0 && cneg[c] > 0);
		F[c].diag[0] = 0.5 / cneg[c];
		F[c].diag[1] = 0.5 / cpos[c];
		F[c].pgmax_old = INFINITY;
		F[c].nactive = n;
		F[c].done = p->max_iter <= 0;
		left += !F[c].done;
	}
	while (left > 0) {
		rng_shuffle_u32(&g, perm, n);
		for (size_t c = 0; c < nfit; c++) {
			F[c].pgmax_new = -INFINITY;
			F[c].pgmin_new = INFINITY;
		}
		for (size_t s = 0; s < n; s++) {
			size_t i = perm[s];

			for (size_t c = 0; c < nfit; c++) {
				Fit *t = &F[c];
				double *a = alpha + c * n, G, PG = 0;
				int yi = y[c * ldy + i] > 0 ? 1 : -1;

				if (t->done || !act[c * n + i])
					continue;
				t->nvisit++;
				G = yi * fm->margin(fm->ctx, c, i) - 1 +
				    a[i] * t->diag[yi > 0];
				if (a[i] == 0) {
					if (G > t->pgmax_old) {   // shrink
						act[c * n + i] = 0;
						t->nactive--;
						continue;
					}
					if (G < 0)
						PG = G;
				} else
					PG = G;
				t->pgmax_new = fmax(t->pgmax_new, PG);
				t->pgmin_new = fmin(t->pgmin_new, PG);
				if (fabs(PG) > 1e-12) {
					double old = a[i];

					a[i] = fmax(old - G / (kd[i] +
					    t->diag[yi > 0]), 0.0);
					fm->step(fm->ctx, c, i, (a[i] - old) * yi);
					t->nstep++;
				}
			}
		}
		for (size_t c = 0; c < nfit; c++) {
			Fit *t = &F[c];

			if (t->done)
				continue;
			t->iter++;
			if (t->pgmax_new - t->pgmin_new <= p->eps) {
				if (t->nactive == n) {
					t->converged = t->done = 1;
					left--;
					continue;
				}
				// verify on all coordinates
				memset(act + c * n, 1, n);
				t->nactive = n;
				t->pgmax_old = INFINITY;
			} else
				t->pgmax_old = t->pgmax_new <= 0 ? INFINITY :
				    t->pgmax_new;
			if (t->iter >= p->max_iter) {
				t->done = 1;
				left--;
			}
		}
	}
	for (size_t c = 0; info && c < nfit; c++) {
		info[c].iter = F[c].iter;
		info[c].converged = F[c].converged;
		info[c].nvisit = F[c].nvisit;
		info[c].nstep = F[c].nstep;
		info[c].nsv = 0;
		for (size_t i = 0; i < n; i++)
			info[c].nsv += alpha[c * n + i] > 0;
	}
	free(perm);
	free(act);
	free(F);
}

// ----------------------------------------------------------------------
// The dense form: liblinear's, on feature rows.

typedef struct {
	const double *X;
	size_t ldx, d;
	const uint32_t *rows;
	double bias;
	double *w;            // d + 1
} Dense;

static const double *
dense_row(const Dense *c, size_t i)
{
	return c->X + (c->rows ? c->rows[i] : i) * c->ldx;
}

static double
dot(const double *a, const double *b, size_t n)
{
	double s = 0;

	for (size_t k = 0; k < n; k++)
		s += a[k] * b[k];
	return s;
}

static double
dense_margin(void *ctx, size_t c, size_t i)
{
	Dense *t = ctx;
	const double *w = t->w + c * (t->d + 1);

	return dot(w, dense_row(t, i), t->d) + w[t->d] * t->bias;
}

static void
dense_step(void *ctx, size_t c, size_t i, double d)
{
	Dense *t = ctx;
	const double *restrict x = dense_row(t, i);
	double *restrict w = t->w + c * (t->d + 1);

	for (size_t k = 0; k < t->d; k++)
		w[k] += d * x[k];
	w[t->d] += d * t->bias;
}

void
svm_fit_dense(double *w, double *alpha, SvmInfo *info, const double *X,
    size_t ldx, const uint32_t *rows, size_t n, size_t d, double bias,
    const int8_t *y, double cpos, double cneg, const SvmParam *p)
{
	Dense t = {X, ldx, d, rows, bias, w};
	Form fm = {dense_margin, dense_step, &t};
	double *kd = emalloc(n * sizeof *kd);

	if (!p->warm)
		memset(alpha, 0, n * sizeof *alpha);
	svm_weights(w, X, ldx, rows, n, d, bias, y, alpha);
	for (size_t i = 0; i < n; i++) {
		const double *x = dense_row(&t, i);

		kd[i] = dot(x, x, d) + bias * bias;
	}
	cd_solve(alpha, info, &fm, kd, n, y, 0, &cpos, &cneg, 1, p);
	free(kd);
}

void
svm_weights(double *w, const double *X, size_t ldx, const uint32_t *rows,
    size_t n, size_t d, double bias, const int8_t *y, const double *alpha)
{
	memset(w, 0, (d + 1) * sizeof *w);
	for (size_t i = 0; i < n; i++) {
		const double *x = X + (rows ? rows[i] : i) * ldx;
		double a = y[i] > 0 ? alpha[i] : -alpha[i];

		if (a == 0)
			continue;
		for (size_t k = 0; k < d; k++)
			w[k] += a * x[k];
		w[d] += a * bias;
	}
}

void
svm_decision(double *out, const double *X, size_t ldx, size_t m, size_t d,
    double bias, const double *w)
{
	for (size_t i = 0; i < m; i++)
		out[i] = dot(w, X + i * ldx, d) + w[d] * bias;
}

// ----------------------------------------------------------------------
// The kernel form: f[c][j] = w~_c.x~_j kept for all n rows, every fit.

typedef struct {
	const float *K;
	size_t ldk, n;
	double *f;            // nfit x n
} Gram;

static double
gram_margin(void *ctx, size_t c, size_t i)
{
	Gram *t = ctx;

	return t->f[c * t->n + i];
}

static void
gram_step(void *ctx, size_t c, size_t i, double d)
{
	Gram *t = ctx;
	const float *restrict k = t->K + i * t->ldk;
	double *restrict f = t->f + c * t->n;
	size_t n = t->n;

	for (size_t j = 0; j < n; j++)
		f[j] += d * (double)k[j];
}

void
svm_fit_gram(double *alpha, double *f, SvmInfo *info, const float *K,
    size_t ldk, size_t n, const int8_t *y, size_t ldy, const double *cpos,
    const double *cneg, size_t nfit, const SvmParam *p)
{
	double *ff = f ? f : emalloc(nfit * n * sizeof *ff);
	Gram t = {K, ldk, n, ff};
	Form fm = {gram_margin, gram_step, &t};
	double *kd = emalloc(n * sizeof *kd);

	memset(ff, 0, nfit * n * sizeof *ff);
	if (!p->warm)
		memset(alpha, 0, nfit * n * sizeof *alpha);
	for (size_t c = 0; c < nfit; c++)
		for (size_t i = 0; i < n; i++)
			if (alpha[c * n + i] != 0)
				gram_step(&t, c, i, y[c * ldy + i] > 0 ?
				    alpha[c * n + i] : -alpha[c * n + i]);
	for (size_t i = 0; i < n; i++)
		kd[i] = (double)K[i * ldk + i];
	cd_solve(alpha, info, &fm, kd, n, y, ldy, cpos, cneg, nfit, p);
	free(kd);
	if (!f)
		free(ff);
}

void
svm_decision_kernel(double *out, size_t m, size_t nfit, const float *K,
    size_t ldk, const uint32_t *rows, size_t n, const uint32_t *tg,
    const double *coef)
{
	enum { TB = 512 };   // target block: nfit x TB doubles stay in cache

	for (size_t t0 = 0; t0 < m; t0 += TB) {
		size_t tb = RL_MIN((size_t)TB, m - t0);

		for (size_t c = 0; c < nfit; c++)
			memset(out + c * m + t0, 0, tb * sizeof *out);
		for (size_t k = 0; k < n; k++) {
			const float *restrict kr = K + (rows ? rows[k] : k) * ldk;

			for (size_t c = 0; c < nfit; c++) {
				double a = coef[c * n + k];
				double *restrict o = out + c * m + t0;

				if (a == 0)
					continue;
				if (tg)
					for (size_t t = 0; t < tb; t++)
						o[t] += a * (double)kr[tg[t0 + t]];
				else
					for (size_t t = 0; t < tb; t++)
						o[t] += a * (double)kr[t0 + t];
			}
		}
	}
}

// ----------------------------------------------------------------------
// Kernels by BLAS, in double, rounded to float.

int
svm_gram(float *K, const double *X, size_t ldx, size_t n, size_t d,
    double bias)
{
	double *G = malloc(n * n * sizeof *G);

	if (!G)
		return -1;
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)d,
	    1.0, X, (int)ldx, 0.0, G, (int)n);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i; j < n; j++) {
			float v = (float)(G[i * n + j] + bias * bias);

			K[i * n + j] = v;
			K[j * n + i] = v;
		}
	free(G);
	return 0;
}

int
svm_cross_gram(float *Kc, const double *X, size_t ldx, size_t n,
    const double *Z, size_t ldz, size_t m, size_t d, double bias)
{
	enum { RB = 256 };   // rows of X a block
	double *G = malloc(RB * m * sizeof *G);

	if (!G)
		return -1;
	for (size_t i0 = 0; i0 < n; i0 += RB) {
		size_t rb = RL_MIN((size_t)RB, n - i0);

		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb,
		    (int)m, (int)d, 1.0, X + i0 * ldx, (int)ldx, Z, (int)ldz,
		    0.0, G, (int)m);
		for (size_t k = 0; k < rb * m; k++)
			Kc[i0 * m + k] = (float)(G[k] + bias * bias);
	}
	free(G);
	return 0;
}

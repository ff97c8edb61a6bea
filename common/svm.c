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
// The coordinate-descent loop, shared by both forms. A form supplies
// margin(i) = w~.x~_i and step(i, d): w~ += d x~_i (and whatever it keeps
// in step with w~).

typedef struct {
	double (*margin)(void *ctx, size_t i);
	void (*step)(void *ctx, size_t i, double d);
	void *ctx;
} Form;

static void
cd_solve(double *alpha, SvmInfo *info, const Form *fm, const double *qd,
    size_t n, const int8_t *y, double cpos, double cneg, const SvmParam *p)
{
	uint32_t *index = emalloc(n * sizeof *index);
	double diag[2] = {0.5 / cneg, 0.5 / cpos};   // by y > 0
	// liblinear also keeps PGmin_old, but reads it only for the upper
	// bound of the L1 loss; alpha has none here.
	double pgmax_old = INFINITY;
	size_t active = n;
	int iter = 0, converged = 0;
	Rng g;

	assert(n <= UINT32_MAX);
	rng_init(&g, p->seed, RNG_STREAM_SVM, p->index);
	for (size_t i = 0; i < n; i++)
		index[i] = (uint32_t)i;
	while (iter < p->max_iter) {
		double pgmax_new = -INFINITY, pgmin_new = INFINITY;

		rng_shuffle_u32(&g, index, active);
		for (size_t s = 0; s < active; s++) {
			size_t i = index[s];
			int yi = y[i] > 0 ? 1 : -1;
			double G, PG = 0;

			G = yi * fm->margin(fm->ctx, i) - 1 +
			    alpha[i] * diag[yi > 0];
			if (alpha[i] == 0) {
				if (G > pgmax_old) {
					// shrink: move i out of the active prefix
					active--;
					index[s] = index[active];
					index[active] = (uint32_t)i;
					s--;
					continue;
				}
				if (G < 0)
					PG = G;
			} else
				PG = G;
			if (PG > pgmax_new)
				pgmax_new = PG;
			if (PG < pgmin_new)
				pgmin_new = PG;
			if (fabs(PG) > 1e-12) {
				double old = alpha[i];

				alpha[i] = fmax(old - G / qd[i], 0.0);
				fm->step(fm->ctx, i, (alpha[i] - old) * yi);
			}
		}
		iter++;
		if (pgmax_new - pgmin_new <= p->eps) {
			if (active == n) {
				converged = 1;
				break;
			}
			active = n;     // verify on all coordinates
			pgmax_old = INFINITY;
			continue;
		}
		pgmax_old = pgmax_new <= 0 ? INFINITY : pgmax_new;
	}
	if (info) {
		info->iter = iter;
		info->converged = converged;
		info->nsv = 0;
		for (size_t i = 0; i < n; i++)
			info->nsv += alpha[i] > 0;
	}
	free(index);
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
dense_margin(void *ctx, size_t i)
{
	Dense *c = ctx;

	return dot(c->w, dense_row(c, i), c->d) + c->w[c->d] * c->bias;
}

static void
dense_step(void *ctx, size_t i, double d)
{
	Dense *c = ctx;
	const double *x = dense_row(c, i);
	double *w = c->w;

	for (size_t k = 0; k < c->d; k++)
		w[k] += d * x[k];
	w[c->d] += d * c->bias;
}

void
svm_fit_dense(double *w, double *alpha, SvmInfo *info, const double *X,
    size_t ldx, const uint32_t *rows, size_t n, size_t d, double bias,
    const int8_t *y, double cpos, double cneg, const SvmParam *p)
{
	Dense c = {X, ldx, d, rows, bias, w};
	Form fm = {dense_margin, dense_step, &c};
	double *qd = emalloc(n * sizeof *qd);

	assert(cpos > 0 && cneg > 0);
	if (!p->warm)
		memset(alpha, 0, n * sizeof *alpha);
	svm_weights(w, X, ldx, rows, n, d, bias, y, alpha);
	for (size_t i = 0; i < n; i++) {
		const double *x = dense_row(&c, i);

		qd[i] = dot(x, x, d) + bias * bias +
		    0.5 / (y[i] > 0 ? cpos : cneg);
	}
	cd_solve(alpha, info, &fm, qd, n, y, cpos, cneg, p);
	free(qd);
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
// The kernel form: f[j] = w~.x~_j kept for all n rows.

typedef struct {
	const float *K;
	size_t ldk, n;
	double *f;
} Gram;

static double
gram_margin(void *ctx, size_t i)
{
	return ((Gram *)ctx)->f[i];
}

static void
gram_step(void *ctx, size_t i, double d)
{
	Gram *c = ctx;
	const float *restrict k = c->K + i * c->ldk;
	double *restrict f = c->f;
	size_t n = c->n;

	for (size_t j = 0; j < n; j++)
		f[j] += d * (double)k[j];
}

void
svm_fit_gram(double *alpha, double *f, SvmInfo *info, const float *K,
    size_t ldk, size_t n, const int8_t *y, double cpos, double cneg,
    const SvmParam *p)
{
	double *fm_f = f ? f : emalloc(n * sizeof *fm_f);
	Gram c = {K, ldk, n, fm_f};
	Form fm = {gram_margin, gram_step, &c};
	double *qd = emalloc(n * sizeof *qd);

	assert(cpos > 0 && cneg > 0);
	memset(fm_f, 0, n * sizeof *fm_f);
	if (!p->warm)
		memset(alpha, 0, n * sizeof *alpha);
	for (size_t i = 0; i < n; i++) {
		if (alpha[i] != 0)
			gram_step(&c, i, y[i] > 0 ? alpha[i] : -alpha[i]);
		qd[i] = (double)K[i * ldk + i] + 0.5 / (y[i] > 0 ? cpos : cneg);
	}
	cd_solve(alpha, info, &fm, qd, n, y, cpos, cneg, p);
	free(qd);
	if (!f)
		free(fm_f);
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

/*
 * t_svm: the dual coordinate-descent SVM against independent checks:
 * scikit-learn's decision values and objective (tests/ref/svm_ref.txt from
 * gen_svm_ref.py), the primal and dual objectives and their gap, the KKT
 * conditions of the dual, the kernel form against the dense form, and the
 * kernel helpers against plain loops.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/svm.h"
#include "tests/check.h"
#include "tests/svmref.h"

// ----------------------------------------------------------------------
// Independent arithmetic: plain loops over x~ = [x; 1].

typedef struct {
	size_t n, d;
	const double *x;     // n x d
	int8_t *y;
	double cpos, cneg;
} Prob;

static double
ci(const Prob *p, size_t i)
{
	return p->y[i] > 0 ? p->cpos : p->cneg;
}

static void
weights(const Prob *p, const double *alpha, double *w)
{
	memset(w, 0, (p->d + 1) * sizeof *w);
	for (size_t i = 0; i < p->n; i++) {
		for (size_t k = 0; k < p->d; k++)
			w[k] += p->y[i] * alpha[i] * p->x[i * p->d + k];
		w[p->d] += p->y[i] * alpha[i];
	}
}

static double
margin(const Prob *p, const double *w, size_t i)
{
	double f = w[p->d];

	for (size_t k = 0; k < p->d; k++)
		f += w[k] * p->x[i * p->d + k];
	return f;
}

static double
primal(const Prob *p, const double *w)
{
	double v = 0;

	for (size_t k = 0; k <= p->d; k++)
		v += 0.5 * w[k] * w[k];
	for (size_t i = 0; i < p->n; i++) {
		double h = fmax(0, 1 - p->y[i] * margin(p, w, i));

		v += ci(p, i) * h * h;
	}
	return v;
}

static double
dual(const Prob *p, const double *alpha, const double *w)
{
	double v = 0;

	for (size_t k = 0; k <= p->d; k++)
		v -= 0.5 * w[k] * w[k];
	for (size_t i = 0; i < p->n; i++)
		v += alpha[i] - alpha[i] * alpha[i] / (4 * ci(p, i));
	return v;
}

// The largest violation of the dual's KKT conditions: for alpha_i > 0
// the gradient G_i must be 0, for alpha_i = 0 it must be >= 0.
static double
kkt(const Prob *p, const double *alpha, const double *w)
{
	double worst = 0;

	for (size_t i = 0; i < p->n; i++) {
		double G = p->y[i] * margin(p, w, i) - 1 +
		    alpha[i] / (2 * ci(p, i));

		if (alpha[i] < 0)
			return INFINITY;
		worst = fmax(worst, alpha[i] > 0 ? fabs(G) : -G);
	}
	return worst;
}

static void
prob_from_ref(Prob *p, const SvmRef *r)
{
	p->n = r->n;
	p->d = r->d;
	p->x = r->x;
	p->y = malloc(r->n);
	for (size_t i = 0; i < r->n; i++)
		p->y[i] = (int8_t)r->y[i];
	p->cpos = 2 * r->C;
	p->cneg = r->C;
}

static int nsvm_case;

// ----------------------------------------------------------------------

// The dense form solved tightly reproduces scikit-learn's solution.
TEST(ref_dense)
{
	SvmRef r;

	nsvm_case = 0;
	SVMREF_EACH(r, "svm") {
		Prob p;
		SvmParam sp;
		SvmInfo info;
		double *alpha = calloc(r.n, sizeof *alpha);
		double *w = calloc(r.d + 1, sizeof *w), *wi = calloc(r.d + 1,
		    sizeof *wi), maxd = 0, P;

		prob_from_ref(&p, &r);
		svm_param_init(&sp);
		sp.eps = 1e-10;
		sp.max_iter = 1000000;
		svm_fit_dense(w, alpha, &info, r.x, r.d, NULL, r.n, r.d, 1.0,
		    p.y, p.cpos, p.cneg, &sp);
		CHECK(info.converged, "%s: not converged", r.name);
		for (size_t i = 0; i < r.n + r.m; i++) {
			double f;

			svm_decision(&f, r.x + i * r.d, r.d, 1, r.d, 1.0, w);
			maxd = fmax(maxd, fabs(f - r.dec[i]));
		}
		CHECK(maxd < 1e-6, "%s: decision values differ from sklearn "
		    "by %g", r.name, maxd);
		// The returned w is w(alpha), and its objective is sklearn's.
		weights(&p, alpha, wi);
		for (size_t k = 0; k <= r.d; k++)
			CHECK_NEAR(w[k], wi[k], 1e-9, 1e-9);
		P = primal(&p, w);
		CHECK_NEAR(P, r.value, 0, 1e-9);
		CHECK_NEAR(P, dual(&p, alpha, w), 0, 1e-9);
		CHECK(kkt(&p, alpha, wi) < 1e-8, "%s: KKT violation %g",
		    r.name, kkt(&p, alpha, wi));
		nsvm_case++;
		free(p.y);
		free(alpha);
		free(w);
		free(wi);
		svmref_free(&r);
	}
	CHECK(nsvm_case == 4, "%d svm cases in %s", nsvm_case, SVMREF_PATH);
}

// The kernel form (float kernel) lands on the same solution.
TEST(ref_gram)
{
	SvmRef r;

	SVMREF_EACH(r, "svm") {
		Prob p;
		SvmParam sp;
		SvmInfo info;
		float *K = malloc(r.n * r.n * sizeof *K);
		double *alpha = calloc(r.n, sizeof *alpha);
		double *f = calloc(r.n, sizeof *f), *w = calloc(r.d + 1,
		    sizeof *w), maxd = 0, maxf = 0;

		prob_from_ref(&p, &r);
		svm_param_init(&sp);
		sp.eps = 1e-10;
		sp.max_iter = 1000000;
		CHECK(svm_gram(K, r.x, r.d, r.n, r.d, 1.0) == 0, "svm_gram");
		svm_fit_gram(alpha, f, &info, K, r.n, r.n, p.y, 0, &p.cpos,
		    &p.cneg, 1, &sp);
		CHECK(info.converged, "%s: not converged", r.name);
		svm_weights(w, r.x, r.d, NULL, r.n, r.d, 1.0, p.y, alpha);
		for (size_t i = 0; i < r.n + r.m; i++) {
			double v;

			svm_decision(&v, r.x + i * r.d, r.d, 1, r.d, 1.0, w);
			maxd = fmax(maxd, fabs(v - r.dec[i]));
			if (i < r.n)   // f holds the margins of the rows
				maxf = fmax(maxf, fabs(v - f[i]));
		}
		// The float kernel perturbs the problem by ~1e-7 relative.
		CHECK(maxd < 1e-4, "%s: decision values differ from sklearn "
		    "by %g", r.name, maxd);
		CHECK(maxf < 1e-4, "%s: f differs from X w by %g", r.name,
		    maxf);
		CHECK_NEAR(primal(&p, w), r.value, 0, 1e-5);
		free(p.y);
		free(K);
		free(alpha);
		free(f);
		free(w);
		svmref_free(&r);
	}
}

// At the default eps (1e-4) both forms stop near the optimum: a small
// duality gap, small KKT violations.
TEST(gap_and_kkt)
{
	SvmRef r;

	SVMREF_EACH(r, "svm") {
		Prob p;
		SvmParam sp;
		SvmInfo info;
		float *K = malloc(r.n * r.n * sizeof *K);
		double *alpha = calloc(r.n, sizeof *alpha), *ag = calloc(r.n,
		    sizeof *ag);
		double *w = calloc(r.d + 1, sizeof *w), *wg = calloc(r.d + 1,
		    sizeof *wg), P, D;

		prob_from_ref(&p, &r);
		svm_param_init(&sp);
		svm_fit_dense(w, alpha, &info, r.x, r.d, NULL, r.n, r.d, 1.0,
		    p.y, p.cpos, p.cneg, &sp);
		CHECK(info.converged && info.iter < 2000, "%s: %d iterations",
		    r.name, info.iter);
		CHECK(info.nsv > 0 && info.nsv <= r.n, "nsv %zu", info.nsv);
		P = primal(&p, w);
		D = dual(&p, alpha, w);
		CHECK(P - D >= -1e-12 * fabs(P) && P - D <= 1e-3 * fabs(P),
		    "%s: primal %.12g dual %.12g", r.name, P, D);
		CHECK(kkt(&p, alpha, w) <= 2e-4, "%s: KKT violation %g",
		    r.name, kkt(&p, alpha, w));
		// Same seed and index: the kernel form makes the same moves.
		svm_gram(K, r.x, r.d, r.n, r.d, 1.0);
		svm_fit_gram(ag, NULL, &info, K, r.n, r.n, p.y, 0, &p.cpos,
		    &p.cneg, 1, &sp);
		weights(&p, ag, wg);
		CHECK(kkt(&p, ag, wg) <= 2e-4, "%s: gram KKT violation %g",
		    r.name, kkt(&p, ag, wg));
		CHECK_NEAR(primal(&p, wg), P, 0, 1e-3);
		free(p.y);
		free(K);
		free(alpha);
		free(ag);
		free(w);
		free(wg);
		svmref_free(&r);
	}
}

// The permutation stream is keyed by (seed, index): the same key gives
// bit-identical results, another key another path to the same optimum.
// A warm start at the optimum stops at once; max_iter is honoured.
TEST(seed_warm_maxiter)
{
	SvmRef r;

	SVMREF_EACH(r, "svm") {
		Prob p;
		SvmParam sp;
		SvmInfo info;
		double *a1 = calloc(r.n, sizeof *a1), *a2 = calloc(r.n,
		    sizeof *a2), *a3 = calloc(r.n, sizeof *a3);
		double *w = calloc(r.d + 1, sizeof *w), *w3 = calloc(r.d + 1,
		    sizeof *w3);
		int differs = 0, cold;

		prob_from_ref(&p, &r);
		svm_param_init(&sp);
		sp.seed = 5;
		svm_fit_dense(w, a1, NULL, r.x, r.d, NULL, r.n, r.d, 1.0, p.y,
		    p.cpos, p.cneg, &sp);
		svm_fit_dense(w, a2, NULL, r.x, r.d, NULL, r.n, r.d, 1.0, p.y,
		    p.cpos, p.cneg, &sp);
		CHECK(!memcmp(a1, a2, r.n * sizeof *a1), "%s: not "
		    "reproducible", r.name);
		sp.index = 1;
		svm_fit_dense(w3, a3, NULL, r.x, r.d, NULL, r.n, r.d, 1.0, p.y,
		    p.cpos, p.cneg, &sp);
		for (size_t i = 0; i < r.n; i++)
			differs |= a1[i] != a3[i];
		CHECK(differs, "%s: index 1 gave the same alpha", r.name);
		CHECK_NEAR(primal(&p, w3), primal(&p, w), 0, 1e-3);

		sp.eps = 1e-8;
		sp.max_iter = 100000;
		svm_fit_dense(w, a1, &info, r.x, r.d, NULL, r.n, r.d, 1.0, p.y,
		    p.cpos, p.cneg, &sp);
		cold = info.iter;
		sp.warm = 1;
		svm_fit_dense(w, a1, &info, r.x, r.d, NULL, r.n, r.d, 1.0, p.y,
		    p.cpos, p.cneg, &sp);
		CHECK(info.converged && info.iter <= 5 && info.iter < cold,
		    "%s: a warm start at the optimum took %d iterations, a "
		    "cold one %d", r.name, info.iter, cold);
		sp.warm = 0;
		sp.max_iter = 1;
		svm_fit_dense(w, a1, &info, r.x, r.d, NULL, r.n, r.d, 1.0, p.y,
		    p.cpos, p.cneg, &sp);
		CHECK(!info.converged && info.iter == 1, "%s: max_iter 1: "
		    "converged %d iter %d", r.name, info.converged, info.iter);
		free(p.y);
		free(a1);
		free(a2);
		free(a3);
		free(w);
		free(w3);
		svmref_free(&r);
	}
}

// Fits in lockstep (one kernel, one permutation stream, own shrinking and
// stopping) give exactly what each gives alone; the dense form with the
// same stream lands on the same solution.
TEST(lockstep)
{
	SvmRef r;

	SVMREF_EACH(r, "svm") {
		enum { NF = 3 };
		double cpos[NF], cneg[NF] = {r.C / 100, r.C, r.C * 3};
		size_t n = r.n;
		float *K = malloc(n * n * sizeof *K);
		double *a = calloc(NF * n, sizeof *a), *f = calloc(NF * n,
		    sizeof *f), *one = calloc(n, sizeof *one), *w = calloc(r.d +
		    1, sizeof *w), *ad = calloc(n, sizeof *ad);
		SvmInfo info[NF], i1;
		SvmParam sp;
		Prob p;

		prob_from_ref(&p, &r);
		svm_param_init(&sp);
		sp.index = 77;
		svm_gram(K, r.x, r.d, n, r.d, 1.0);
		for (int c = 0; c < NF; c++)
			cpos[c] = 2 * cneg[c];
		svm_fit_gram(a, f, info, K, n, n, p.y, 0, cpos, cneg, NF, &sp);
		for (int c = 0; c < NF; c++) {
			double maxd = 0;

			svm_fit_gram(one, NULL, &i1, K, n, n, p.y, 0, &cpos[c],
			    &cneg[c], 1, &sp);
			CHECK(!memcmp(one, a + c * n, n * sizeof *one) &&
			    i1.iter == info[c].iter && i1.nstep ==
			    info[c].nstep, "%s: fit %d differs in lockstep",
			    r.name, c);
			svm_fit_dense(w, ad, NULL, r.x, r.d, NULL, n, r.d, 1.0,
			    p.y, cpos[c], cneg[c], &sp);
			for (size_t i = 0; i < n; i++)
				maxd = fmax(maxd, fabs(ad[i] - one[i]));
			CHECK(maxd < 1e-3 * (1 + cneg[c]), "%s: dense and "
			    "kernel alphas differ by %g", r.name, maxd);
		}
		free(p.y);
		free(K);
		free(a);
		free(f);
		free(one);
		free(w);
		free(ad);
		svmref_free(&r);
	}
}

// A fit on a subset of rows (rows[]) equals a fit on a copy of them.
TEST(row_subset)
{
	SvmRef r;

	SVMREF_EACH(r, "svm") {
		size_t n = r.n / 2, d = r.d;
		uint32_t *rows = malloc(n * sizeof *rows);
		double *xs = malloc(n * d * sizeof *xs);
		int8_t *y = malloc(n);
		double *a1 = calloc(n, sizeof *a1), *a2 = calloc(n,
		    sizeof *a2), *w1 = calloc(d + 1, sizeof *w1),
		    *w2 = calloc(d + 1, sizeof *w2);
		SvmParam sp;

		for (size_t i = 0; i < n; i++) {
			rows[i] = (uint32_t)(2 * i + 1);
			memcpy(xs + i * d, r.x + rows[i] * d, d * sizeof *xs);
			y[i] = (int8_t)r.y[rows[i]];
		}
		svm_param_init(&sp);
		svm_fit_dense(w1, a1, NULL, r.x, d, rows, n, d, 1.0, y,
		    2 * r.C, r.C, &sp);
		svm_fit_dense(w2, a2, NULL, xs, d, NULL, n, d, 1.0, y,
		    2 * r.C, r.C, &sp);
		CHECK(!memcmp(a1, a2, n * sizeof *a1) &&
		    !memcmp(w1, w2, (d + 1) * sizeof *w1), "%s: rows[] fit "
		    "differs", r.name);
		free(rows);
		free(xs);
		free(y);
		free(a1);
		free(a2);
		free(w1);
		free(w2);
		svmref_free(&r);
	}
}

// The kernels and decision values through a kernel against plain loops.
TEST(kernels)
{
	enum { N = 37, M = 23, D = 11, NF = 3 };
	static double X[N * D], Z[M * D], coef[NF * N], w[D + 1];
	static float K[N * N], Kc[N * M];
	static double out[NF * M], out2[NF * 5];
	uint32_t rows[N], tg[5] = {4, 0, 22, 7, 7};
	int8_t y[N];
	double maxk = 0, maxd = 0;

	for (size_t i = 0; i < N * D; i++)
		X[i] = sin(0.37 * (double)i) + 0.1;
	for (size_t i = 0; i < M * D; i++)
		Z[i] = cos(0.91 * (double)i);
	CHECK(svm_gram(K, X, D, N, D, 1.0) == 0, "svm_gram");
	CHECK(svm_cross_gram(Kc, X, D, N, Z, D, M, D, 1.0) == 0, "cross");
	for (size_t i = 0; i < N; i++) {
		for (size_t j = 0; j < N; j++) {
			double s = 1;

			for (size_t k = 0; k < D; k++)
				s += X[i * D + k] * X[j * D + k];
			maxk = fmax(maxk, fabs(K[i * N + j] - s) / fabs(s));
		}
		for (size_t t = 0; t < M; t++) {
			double s = 1;

			for (size_t k = 0; k < D; k++)
				s += X[i * D + k] * Z[t * D + k];
			maxk = fmax(maxk, fabs(Kc[i * M + t] - s) /
			    fmax(fabs(s), 1e-3));
		}
	}
	CHECK(maxk < 1e-6, "kernel relative error %g", maxk);

	// Three "fits" on rows 1, 3, 5, ...; one alpha left at 0.
	for (size_t k = 0; k < N; k++)
		rows[k] = (uint32_t)((2 * k + 1) % N);
	for (size_t c = 0; c < NF; c++)
		for (size_t k = 0; k < N; k++) {
			y[k] = (k % 3) ? 1 : -1;
			coef[c * N + k] = (k == 5) ? 0 :
			    y[k] * (0.1 + 0.01 * (double)(c * N + k));
		}
	svm_decision_kernel(out, M, NF, Kc, M, rows, N, NULL, coef);
	svm_decision_kernel(out2, 5, NF, Kc, M, rows, N, tg, coef);
	for (size_t c = 0; c < NF; c++) {
		double alpha[N];

		for (size_t k = 0; k < N; k++)
			alpha[k] = fabs(coef[c * N + k]);
		svm_weights(w, X, D, rows, N, D, 1.0, y, alpha);
		for (size_t t = 0; t < M; t++) {
			double v;

			svm_decision(&v, Z + t * D, D, 1, D, 1.0, w);
			maxd = fmax(maxd, fabs(v - out[c * M + t]));
		}
		for (size_t t = 0; t < 5; t++)
			maxd = fmax(maxd, fabs(out2[c * 5 + t] -
			    out[c * M + tg[t]]));
	}
	CHECK(maxd < 1e-5, "kernel decision values differ by %g", maxd);
}

int
main(void)
{
	RUN(ref_dense);
	RUN(ref_gram);
	RUN(gap_and_kkt);
	RUN(seed_warm_maxiter);
	RUN(lockstep);
	RUN(row_subset);
	RUN(kernels);
	return check_summary();
}

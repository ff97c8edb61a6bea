/*
 * svmproto: the VOC07 SVM and low-shot protocols. See svmproto.h and
 * relloc-protocols(7), SVM and LOW-SHOT.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/metric.h"
#include "common/rng.h"
#include "common/svm.h"
#include "common/svmproto.h"
#include "common/util.h"

#define POS_WEIGHT 2.0   // class_weight={1: 2, -1: 1}
#define BIAS 1.0         // intercept_scaling

void
svmp_opt_init(SvmpOpt *o)
{
	char err[64];

	memset(o, 0, sizeof *o);
	o->threads = 2;
	o->seed = 0;
	o->solver = SVMP_AUTO;
	o->max_gram_bytes = 4.0 * 1024 * 1024 * 1024;
	o->eps = 1e-4;
	o->max_iter = 2000;
	svmp_parse_costs(o, "1,10,100", err, sizeof err);
}

int
svmp_parse_costs(SvmpOpt *o, const char *list, char *err, size_t errlen)
{
	char *s = estrdup(list), *tok, *save = NULL;
	const char *e;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",",
	    &save)) {
		double c;

		if (n >= SVMP_MAXCOST - 16) {
			snprintf(err, errlen, "costs: more than %d",
			    SVMP_MAXCOST - 16);
			goto fail;
		}
		if (parse_double(tok, 1e-300, 1e300, &c, &e) == -1) {
			snprintf(err, errlen, "costs: '%s' is %s (want a "
			    "positive number)", tok, e);
			goto fail;
		}
		o->cost[n++] = c;
	}
	if (n == 0) {
		snprintf(err, errlen, "costs: empty list");
		goto fail;
	}
	for (int p = 4; p < 20; p++)
		o->cost[n++] = ldexp(1.0, -p);
	o->ncost = n;
	free(s);
	return 0;
fail:
	free(s);
	return -1;
}

// ----------------------------------------------------------------------
// Data

// Normalised rows of a 2-D feature array, or NULL with a message.
static double *
load_features(const Npy *a, const char *name, char *err, size_t errlen)
{
	size_t n, d;
	double *x;

	if (a->ndim != 2) {
		snprintf(err, errlen, "%s: features must be 2-D (rows x "
		    "features), not %d-D", name, a->ndim);
		return NULL;
	}
	n = (size_t)a->shape[0];
	d = (size_t)a->shape[1];
	if (n == 0 || d == 0) {
		snprintf(err, errlen, "%s: no data (%zu x %zu)", name, n, d);
		return NULL;
	}
	x = emalloc_aligned(n * d * sizeof *x);
	for (size_t i = 0; i < n; i++) {
		double *r = x + i * d, ss = 0;

		if (a->type == NPY_F32)
			for (size_t k = 0; k < d; k++)
				r[k] = ((const float *)a->data)[i * d + k];
		else if (a->type == NPY_F64)
			memcpy(r, (const double *)a->data + i * d,
			    d * sizeof *r);
		else
			for (size_t k = 0; k < d; k++)
				r[k] = npy_get(a, i * d + k);
		for (size_t k = 0; k < d; k++)
			ss += r[k] * r[k];
		if (!isfinite(ss)) {
			snprintf(err, errlen, "%s: row %zu holds a NaN or an "
			    "infinity", name, i);
			free(x);
			return NULL;
		}
		ss = sqrt(ss) + 1e-5;   // svm_helper.normalize_features
		for (size_t k = 0; k < d; k++)
			r[k] /= ss;
	}
	return x;
}

// Labels as an n x *ncls matrix of 1/0/-1, or NULL with a message.
// want_cls: the class count the other set has (0: any).
static int *
load_labels(const Npy *a, size_t nrow, size_t want_cls, size_t *ncls,
    const char *name, char *err, size_t errlen)
{
	size_t n = a->ndim >= 1 ? (size_t)a->shape[0] : 0, c;
	int *y;

	if (a->type == NPY_F32 || a->type == NPY_F64) {
		snprintf(err, errlen, "%s: labels must be integers", name);
		return NULL;
	}
	if (a->ndim != 1 && a->ndim != 2) {
		snprintf(err, errlen, "%s: labels must be a vector or an "
		    "N x C matrix, not %d-D", name, a->ndim);
		return NULL;
	}
	if (n != nrow) {
		snprintf(err, errlen, "%s: %zu rows of labels for %zu rows "
		    "of features", name, n, nrow);
		return NULL;
	}
	if (a->ndim == 2) {
		c = (size_t)a->shape[1];
		for (size_t i = 0; i < a->count; i++) {
			double v = npy_get(a, i);

			if (v != 1 && v != 0 && v != -1) {
				snprintf(err, errlen, "%s: label %g at row %zu "
				    "(want 1, 0 or -1)", name, v, i / c);
				return NULL;
			}
		}
	} else {
		double top = -1;

		for (size_t i = 0; i < n; i++) {
			double v = npy_get(a, i);

			if (v < 0 || v > 1e6) {
				snprintf(err, errlen, "%s: class %g at row %zu "
				    "(want 0 .. 1e6)", name, v, i);
				return NULL;
			}
			top = RL_MAX(top, v);
		}
		c = (size_t)top + 1;
		if (want_cls > c)   // the test set need not show every class
			c = want_cls;
	}
	if (c == 0 || (want_cls && c != want_cls)) {
		snprintf(err, errlen, "%s: %zu classes, the training labels "
		    "have %zu", name, c, want_cls);
		return NULL;
	}
	y = emalloc(n * c * sizeof *y);
	if (a->ndim == 2)
		for (size_t i = 0; i < n * c; i++)
			y[i] = (int)npy_get(a, i);
	else
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < c; k++)
				y[i * c + k] = (size_t)npy_get(a, i) == k;
	*ncls = c;
	return y;
}

int
svmp_data_load(SvmpData *d, const Npy *xtr, const Npy *ytr,
    const Npy *xte, const Npy *yte, const char *const names[4],
    char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	if (!(d->xtr = load_features(xtr, names[0], err, errlen)))
		goto fail;
	d->n = (size_t)xtr->shape[0];
	d->d = (size_t)xtr->shape[1];
	if (!(d->xte = load_features(xte, names[2], err, errlen)))
		goto fail;
	d->m = (size_t)xte->shape[0];
	if ((size_t)xte->shape[1] != d->d) {
		snprintf(err, errlen, "%s: %zu features a row, %s has %zu",
		    names[2], (size_t)xte->shape[1], names[0], d->d);
		goto fail;
	}
	if (!(d->ytr = load_labels(ytr, d->n, 0, &d->ncls, names[1], err,
	    errlen)))
		goto fail;
	if (!(d->yte = load_labels(yte, d->m, d->ncls, &d->ncls, names[3],
	    err, errlen)))
		goto fail;
	return 0;
fail:
	svmp_data_free(d);
	return -1;
}

void
svmp_data_free(SvmpData *d)
{
	free(d->xtr);
	free(d->xte);
	free(d->ytr);
	free(d->yte);
	free(d->K);
	free(d->Kt);
	memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------
// Folds

void
svmp_folds(int *fold, const int *y, size_t n, int nsplit)
{
	int *val = emalloc(n * sizeof *val), *code = emalloc(n * sizeof *code);
	size_t *cnt = ecalloc(n, sizeof *cnt), *start, *seen;
	size_t ncl = 0;

	// Code the classes by order of first appearance.
	for (size_t i = 0; i < n; i++) {
		size_t c = 0;

		while (c < ncl && val[c] != y[i])
			c++;
		if (c == ncl)
			val[ncl++] = y[i];
		code[i] = (int)c;
		cnt[c]++;
	}
	// In the sorted codes, class c fills positions [start[c], +cnt[c]);
	// position p goes to fold p % nsplit. Rows of class c, in data
	// order, take fold 0's share of those positions first, then fold 1's.
	start = ecalloc(ncl + 1, sizeof *start);
	seen = ecalloc(ncl + 1, sizeof *seen);
	for (size_t c = 0; c < ncl; c++)
		start[c + 1] = start[c] + cnt[c];
	for (size_t i = 0; i < n; i++) {
		size_t c = (size_t)code[i], r = seen[c]++, acc = 0;
		int f;

		for (f = 0; f < nsplit; f++) {
			// positions p in [start, start+cnt) with p % nsplit == f
			size_t a = start[c], b = start[c] + cnt[c];
			size_t share = (b + nsplit - 1 - f) / nsplit -
			    (a + nsplit - 1 - f) / nsplit;

			acc += share;
			if (r < acc)
				break;
		}
		fold[i] = f;
	}
	free(val);
	free(code);
	free(cnt);
	free(start);
	free(seen);
}

// ----------------------------------------------------------------------
// Fits

typedef struct {
	const SvmpData *d;
	const SvmpOpt *o;
	int gram;
	size_t done, total, nfit, nmaxiter;
} Run;

static void
run_tick(Run *R, size_t nfit, size_t nmaxiter)
{
#pragma omp critical(svmp_tick)
	{
		R->done += nfit;
		R->nfit += nfit;
		R->nmaxiter += nmaxiter;
		if (R->o->progress)
			R->o->progress(R->o->progress_arg, R->done, R->total);
	}
}

// The random stream of the fits of one (mode, sample, k, class, fold),
// whatever thread runs them; the costs share it (svm_fit_gram).
static uint64_t
fit_index(int mode, int s, int kk, size_t c, int fold)
{
	return (((uint64_t)mode * 1024 + (uint64_t)s) * SVMP_MAXK +
	    (uint64_t)kk) * 65536 * 8 + c * 8 + (uint64_t)fold;
}

/*
 * Fit nc problems on training rows tr[0..ntr) (NULL: all rows in order):
 * problem j has labels y + j*ldy (+1, -1; ldy 0: shared) and cost
 * cost[j] (2 cost[j] for positives). Score the targets tg[0..ntg) (NULL:
 * 0..ntg): training rows (test == 0) or test rows (test == 1); out[j*ntg
 * + t] is problem j's decision value at target t. In the kernel form the
 * problems run in lockstep on the kernel cut down to the training rows.
 * All share the random stream `index`.
 */
static void
fit_score(Run *R, const uint32_t *tr, const int8_t *y, size_t ldy,
    size_t ntr, const double *cost, int nc, int test, const uint32_t *tg,
    size_t ntg, double *out, uint64_t index)
{
	const SvmpData *d = R->d;
	const SvmpOpt *o = R->o;
	size_t m = (size_t)nc;
	double *alpha = emalloc(m * ntr * sizeof *alpha);
	double *coef = emalloc(m * ntr * sizeof *coef);
	double *cpos = emalloc(m * sizeof *cpos);
	SvmInfo *info = emalloc(m * sizeof *info);
	// Score through the kernel when there is one for the targets, else
	// through the primal weights.
	int bykernel = R->gram && (!test || d->Kt);
	double *w = bykernel ? NULL : emalloc((d->d + 1) * sizeof *w);
	size_t nmax = 0;
	SvmParam p;

	svm_param_init(&p);
	p.eps = o->eps;
	p.max_iter = o->max_iter;
	p.seed = o->seed;
	p.index = index;
	for (size_t j = 0; j < m; j++)
		cpos[j] = POS_WEIGHT * cost[j];
	if (R->gram) {
		float *Ksub = NULL;

		if (tr) {
			Ksub = emalloc(ntr * ntr * sizeof *Ksub);
			for (size_t a = 0; a < ntr; a++) {
				const float *kr = d->K + (size_t)tr[a] * d->n;
				float *dst = Ksub + a * ntr;

				for (size_t b = 0; b < ntr; b++)
					dst[b] = kr[tr[b]];
			}
		}
		svm_fit_gram(alpha, NULL, info, tr ? Ksub : d->K, ntr, ntr, y,
		    ldy, cpos, cost, m, &p);
		free(Ksub);
	} else
		for (size_t j = 0; j < m; j++)
			svm_fit_dense(w, alpha + j * ntr, info + j, d->xtr, d->d,
			    tr, ntr, d->d, BIAS, y + j * ldy, cpos[j], cost[j],
			    &p);
	for (size_t j = 0; j < m; j++) {
		const int8_t *yj = y + j * ldy;

		nmax += !info[j].converged;
		for (size_t a = 0; a < ntr; a++)
			coef[j * ntr + a] = yj[a] > 0 ? alpha[j * ntr + a] :
			    -alpha[j * ntr + a];
	}
	if (bykernel)
		svm_decision_kernel(out, ntg, m, test ? d->Kt : d->K,
		    test ? d->m : d->n, tr, ntr, tg, coef);
	else {
		const double *X = test ? d->xte : d->xtr;

		for (size_t j = 0; j < m; j++) {
			svm_weights(w, d->xtr, d->d, tr, ntr, d->d, BIAS,
			    y + j * ldy, alpha + j * ntr);
			for (size_t t = 0; t < ntg; t++)
				svm_decision(out + j * ntg + t,
				    X + (size_t)(tg ? tg[t] : t) * d->d, d->d,
				    1, d->d, BIAS, w);
		}
	}
	run_tick(R, m, nmax);
	free(alpha);
	free(coef);
	free(cpos);
	free(info);
	free(w);
}

/*
 * Fold f of a cross-validation of every cost on the rows sub[0..n) with
 * labels y (+1, -1) and folds fold[]: ap[j] = sklearn's AP of cost j on
 * the held-out rows.
 */
static void
cv_fold(Run *R, const uint32_t *sub, const int8_t *y, const int *fold,
    size_t n, int f, double *ap, uint64_t index)
{
	int nc = R->o->ncost;
	uint32_t *tr = emalloc(n * sizeof *tr), *tg = emalloc(n * sizeof *tg);
	int8_t *ytr = emalloc(n);
	int *ytg = emalloc(n * sizeof *ytg);
	double *out = emalloc((size_t)nc * n * sizeof *out);
	size_t ntr = 0, ntg = 0;

	for (size_t i = 0; i < n; i++)
		if (fold[i] == f) {
			tg[ntg] = sub[i];
			ytg[ntg++] = y[i];
		} else {
			tr[ntr] = sub[i];
			ytr[ntr++] = y[i];
		}
	fit_score(R, tr, ytr, 0, ntr, R->o->cost, nc, 0, tg, ntg, out,
	    index + (uint64_t)f);
	for (int j = 0; j < nc; j++)
		ap[j] = metric_ap_sklearn(out + (size_t)j * ntg, ytg, ntg);
	free(tr);
	free(tg);
	free(ytr);
	free(ytg);
	free(out);
}

// The folds of the +1/-1 labels y.
static void
make_folds(int *fold, const int8_t *y, size_t n)
{
	int *yi = emalloc(n * sizeof *yi);

	for (size_t i = 0; i < n; i++)
		yi[i] = y[i];
	svmp_folds(fold, yi, n, SVMP_NFOLD);
	free(yi);
}

// cv[j] = the mean over the folds of ap[f*SVMP_MAXCOST + j].
static void
cv_mean(double *cv, const double *ap, int nc)
{
	for (int j = 0; j < nc; j++) {
		double s = 0;

		for (int f = 0; f < SVMP_NFOLD; f++)
			s += ap[f * SVMP_MAXCOST + j];
		cv[j] = s / SVMP_NFOLD;
	}
}

// The first best cost, as np.argmax.
static int
argmax(const double *v, int n)
{
	int best = 0;

	for (int j = 1; j < n; j++)
		if (v[j] > v[best])
			best = j;
	return best;
}

// Decide the solver and compute the kernels it needs.
static int
prepare(Run *R, SvmpData *d, const SvmpOpt *o, int cross, char *err,
    size_t errlen)
{
	double bytes = 4.0 * (double)d->n * (double)d->n +
	    (cross ? 4.0 * (double)d->n * (double)d->m : 0) +
	    8.0 * (double)d->n * (double)d->n;   // dsyrk's scratch

	memset(R, 0, sizeof *R);
	R->d = d;
	R->o = o;
	R->gram = o->solver == SVMP_GRAM ||
	    (o->solver == SVMP_AUTO && bytes <= o->max_gram_bytes);
	if (!R->gram)
		return 0;
	openblas_set_num_threads(o->threads);
	if (!d->K) {
		d->K = malloc(d->n * d->n * sizeof *d->K);
		if (!d->K || svm_gram(d->K, d->xtr, d->d, d->n, d->d,
		    BIAS) == -1)
			goto nomem;
	}
	if (cross && !d->Kt) {
		d->Kt = malloc(d->n * d->m * sizeof *d->Kt);
		if (!d->Kt || svm_cross_gram(d->Kt, d->xtr, d->d, d->n,
		    d->xte, d->d, d->m, d->d, BIAS) == -1)
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory for the %zu x %zu kernel "
	    "(try --solver dense)", d->n, cross ? d->m : d->n);
	return -1;
}

// Training rows and +1/-1 labels of class c among the rows with
// lab != -1 (lab == NULL: all rows, difficult counted as negative).
// Returns the row count; *npos gets the positives.
static size_t
class_rows(uint32_t *rows, int8_t *y, const int *ytr, const int *lab,
    size_t n, size_t ncls, size_t c, size_t *npos)
{
	size_t k = 0;

	*npos = 0;
	for (size_t i = 0; i < n; i++) {
		int v = lab ? lab[i * ncls + c] : ytr[i * ncls + c];

		if (lab && v == -1)
			continue;
		rows[k] = (uint32_t)i;
		y[k] = v == 1 ? 1 : -1;
		*npos += v == 1;
		k++;
	}
	return k;
}

// The test labels of class c and the VOC AP of scores for it.
static double
test_ap(const SvmpData *d, size_t c, const double *score, int *lab)
{
	for (size_t t = 0; t < d->m; t++)
		lab[t] = d->yte[t * d->ncls + c];
	return metric_ap_voc(score, lab, d->m);
}

static int
has_test_pos(const SvmpData *d, size_t c)
{
	for (size_t t = 0; t < d->m; t++)
		if (d->yte[t * d->ncls + c] == 1)
			return 1;
	return 0;
}

// ----------------------------------------------------------------------
// The full protocol

// Order the classes by descending positive count, so that the longest
// units start first.
static void
order_by_count(size_t *cls, const size_t *npos, size_t ncls)
{
	for (size_t c = 0; c < ncls; c++)
		cls[c] = c;
	for (size_t j = 1; j < ncls; j++)
		for (size_t i = j; i > 0 && npos[cls[i]] > npos[cls[i - 1]];
		    i--) {
			size_t t = cls[i];
			cls[i] = cls[i - 1];
			cls[i - 1] = t;
		}
}

int
svmp_full(SvmpResult *r, SvmpData *d, const SvmpOpt *o, char *err,
    size_t errlen)
{
	size_t C = d->ncls, n = d->n, nok = 0, ng, *npos, *cls;
	int nc = o->ncost, *fold, *lab;
	uint32_t *rows;
	int8_t *y;
	double *ap, sum = 0;
	size_t nmap = 0;
	Run R;

	memset(r, 0, sizeof *r);
	if (prepare(&R, d, o, 0, err, errlen) == -1)
		return -1;
	r->ncls = C;
	r->ncost = nc;
	r->ap = emalloc(C * sizeof *r->ap);
	r->cost = emalloc(C * sizeof *r->cost);
	r->best = emalloc(C * sizeof *r->best);
	r->cv = ecalloc(C * (size_t)nc, sizeof *r->cv);
	r->status = ecalloc(C, sizeof *r->status);
	rows = emalloc(n * sizeof *rows);   // all rows, in order
	y = emalloc(C * n);
	fold = emalloc(C * n * sizeof *fold);
	npos = ecalloc(C, sizeof *npos);
	cls = emalloc(C * sizeof *cls);
	ap = ecalloc(C * SVMP_NFOLD * SVMP_MAXCOST, sizeof *ap);
	lab = emalloc(C * d->m * sizeof *lab);

	for (size_t c = 0; c < C; c++) {
		r->ap[c] = r->cost[c] = NAN;
		r->best[c] = -1;
		class_rows(rows, y + c * n, d->ytr, NULL, n, C, c, &npos[c]);
		if (npos[c] == 0 || npos[c] == n)
			r->status[c] = SVMP_NO_TRAIN_POS;
		else if (!has_test_pos(d, c))
			r->status[c] = SVMP_NO_TEST_POS;
		else {
			make_folds(fold + c * n, y + c * n, n);
			nok++;
		}
		if (r->status[c])
			npos[c] = 0;   // not a unit: sorts last
	}
	order_by_count(cls, npos, C);
	R.total = nok * ((size_t)nc * SVMP_NFOLD + 1);

	// Cross-validation, one unit per (class, fold).
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads)
	for (size_t u = 0; u < nok * SVMP_NFOLD; u++) {
		size_t c = cls[u / SVMP_NFOLD];
		int f = (int)(u % SVMP_NFOLD);

		cv_fold(&R, rows, y + c * n, fold + c * n, n, f,
		    ap + (c * SVMP_NFOLD + (size_t)f) * SVMP_MAXCOST,
		    fit_index(0, 0, 0, c, 0));
	}
	for (size_t u = 0; u < nok; u++) {
		size_t c = cls[u];

		cv_mean(r->cv + c * (size_t)nc,
		    ap + c * SVMP_NFOLD * SVMP_MAXCOST, nc);
		r->best[c] = argmax(r->cv + c * (size_t)nc, nc);
		r->cost[c] = o->cost[r->best[c]];
	}

	// The refit at the chosen cost on all rows, scored on the test set.
	// In the kernel form one group of classes per thread runs in lockstep
	// on the whole kernel. All refits share one random stream, so the
	// grouping does not change the results.
	ng = R.gram ? RL_MIN((size_t)o->threads, nok) : nok;
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads)
	for (size_t g = 0; g < ng; g++) {
		size_t gs = (nok - g + ng - 1) / ng, k = 0;
		int8_t *yg = emalloc(gs * n);
		double *cg = emalloc(gs * sizeof *cg);
		double *out = emalloc(gs * d->m * sizeof *out);

		for (size_t u = g; u < nok; u += ng, k++) {
			memcpy(yg + k * n, y + cls[u] * n, n);
			cg[k] = r->cost[cls[u]];
		}
		fit_score(&R, NULL, yg, n, n, cg, (int)gs, 1, NULL, d->m, out,
		    fit_index(0, 0, 0, 0, SVMP_NFOLD));
		k = 0;
		for (size_t u = g; u < nok; u += ng, k++)
			r->ap[cls[u]] = test_ap(d, cls[u], out + k * d->m,
			    lab + cls[u] * d->m);
		free(yg);
		free(cg);
		free(out);
	}
	for (size_t c = 0; c < C; c++)
		if (!isnan(r->ap[c])) {
			sum += r->ap[c];
			nmap++;
		}
	r->map = nmap ? sum / (double)nmap : NAN;
	r->nfit = R.nfit;
	r->nmaxiter = R.nmaxiter;
	free(rows);
	free(y);
	free(fold);
	free(npos);
	free(cls);
	free(ap);
	free(lab);
	return 0;
}

void
svmp_result_free(SvmpResult *r)
{
	free(r->ap);
	free(r->cost);
	free(r->best);
	free(r->cv);
	free(r->status);
	memset(r, 0, sizeof *r);
}

// ----------------------------------------------------------------------
// The low-shot protocol

// Move a uniform choice of min(want, n) of v[0..n) to its front (a partial
// Fisher-Yates shuffle); returns how many.
static size_t
choose(Rng *g, uint32_t *v, size_t n, size_t want)
{
	size_t k = RL_MIN(want, n);

	for (size_t i = 0; i < k; i++) {
		size_t j = i + (size_t)rng_below(g, n - i);
		uint32_t t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
	return k;
}

int
svmp_sample_load(int *lab, const Npy *a, const SvmpData *d,
    const char *name, char *err, size_t errlen)
{
	size_t c;
	int *y;

	if (a->ndim != 2) {
		snprintf(err, errlen, "%s: a sample must be %zu x %zu labels",
		    name, d->n, d->ncls);
		return -1;
	}
	if (!(y = load_labels(a, d->n, d->ncls, &c, name, err, errlen)))
		return -1;
	memcpy(lab, y, d->n * d->ncls * sizeof *lab);
	free(y);
	return 0;
}

void
svmp_lowshot_sample(int *lab, size_t *npos, const int *y, size_t n,
    size_t ncls, int s, int k, uint64_t seed)
{
	uint32_t *pos = emalloc(n * sizeof *pos), *neg = emalloc(n *
	    sizeof *neg);

	for (size_t i = 0; i < n * ncls; i++)
		lab[i] = -1;
	for (size_t c = 0; c < ncls; c++) {
		size_t np = 0, nn = 0, kp, kn;
		Rng g;

		for (size_t i = 0; i < n; i++) {
			int v = y[i * ncls + c];

			if (v == 1)
				pos[np++] = (uint32_t)i;
			else if (v == 0)
				neg[nn++] = (uint32_t)i;
		}
		rng_init(&g, seed, RNG_STREAM_LOWSHOT, ((uint64_t)s << 40) |
		    ((uint64_t)k << 20) | c);
		kp = choose(&g, pos, np, (size_t)k);
		kn = choose(&g, neg, nn, 19 * (size_t)k);
		for (size_t i = 0; i < kp; i++)
			lab[(size_t)pos[i] * ncls + c] = 1;
		for (size_t i = 0; i < kn; i++)
			lab[(size_t)neg[i] * ncls + c] = 0;
		npos[c] = kp;
	}
	free(pos);
	free(neg);
}

// out = mean, min, max, population std (numpy's default) of v[0..n).
static void
stats(double out[4], const double *v, int n)
{
	double s = 0, lo = INFINITY, hi = -INFINITY, ss = 0;

	for (int i = 0; i < n; i++) {
		s += v[i];
		lo = fmin(lo, v[i]);
		hi = fmax(hi, v[i]);
	}
	s /= n;
	for (int i = 0; i < n; i++)
		ss += (v[i] - s) * (v[i] - s);
	out[0] = s;
	out[1] = lo;
	out[2] = hi;
	out[3] = sqrt(ss / n);
}

// The mean of the non-NaN v[i*stride], i < n (NaN if none).
static double
nanmean(const double *v, size_t n, size_t stride)
{
	double s = 0;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i * stride])) {
			s += v[i * stride];
			k++;
		}
	return k ? s / (double)k : NAN;
}

static void
lowshot_unit(Run *R, SvmpLowshot *L, const int *lab, int s, int kk, size_t c)
{
	const SvmpData *d = R->d;
	int nc = R->o->ncost;
	size_t n = d->n, C = d->ncls, npos, nrow;
	uint32_t *rows = emalloc(n * sizeof *rows);
	int8_t *y = emalloc(n);
	int *fold = emalloc(n * sizeof *fold), *tl = emalloc(d->m * sizeof *tl);
	double *out = emalloc((size_t)nc * d->m * sizeof *out);
	double ap[SVMP_NFOLD * SVMP_MAXCOST], cv[SVMP_MAXCOST];
	double *res = L->ap + ((size_t)s * L->nk + (size_t)kk) * (size_t)nc * C;
	int *ci = emalloc((size_t)nc * sizeof *ci);

	nrow = class_rows(rows, y, d->ytr, lab, n, C, c, &npos);
	L->cvcost[((size_t)s * L->nk + (size_t)kk) * C + c] = 0;
	if (npos == 0 || npos == nrow) {
		for (int j = 0; j < nc; j++)
			res[(size_t)j * C + c] = NAN;
		run_tick(R, (size_t)nc * (SVMP_NFOLD + 1), 0);
		goto done;
	}
	make_folds(fold, y, nrow);
	for (int f = 0; f < SVMP_NFOLD; f++)
		cv_fold(R, rows, y, fold, nrow, f, ap + f * SVMP_MAXCOST,
		    fit_index(1, s, kk, c, 0));
	cv_mean(cv, ap, nc);
	L->cvcost[((size_t)s * L->nk + (size_t)kk) * C + c] = argmax(cv, nc);
	for (int j = 0; j < nc; j++)
		ci[j] = j;
	fit_score(R, rows, y, 0, nrow, R->o->cost, nc, 1, NULL, d->m, out,
	    fit_index(1, s, kk, c, SVMP_NFOLD));
	for (int j = 0; j < nc; j++)
		res[(size_t)j * C + c] = test_ap(d, c, out + (size_t)j * d->m,
		    tl);
done:
	free(rows);
	free(y);
	free(fold);
	free(tl);
	free(out);
	free(ci);
}

int
svmp_lowshot(SvmpLowshot *L, SvmpData *d, const SvmpOpt *o,
    const int *const *samples, char *err, size_t errlen)
{
	size_t C = d->ncls, n = d->n, nk = (size_t)L->nk;
	size_t ns = (size_t)L->nsample, nc = (size_t)o->ncost;
	int **lab = emalloc(ns * nk * sizeof *lab);
	size_t *npos = emalloc(C * sizeof *npos);
	double *v;
	Run R;

	if (prepare(&R, d, o, 1, err, errlen) == -1) {
		free(lab);
		free(npos);
		return -1;
	}
	L->ap = emalloc(ns * nk * nc * C * sizeof *L->ap);
	L->map = emalloc(nk * ns * nc * sizeof *L->map);
	L->cvcost = emalloc(ns * nk * C * sizeof *L->cvcost);
	L->status = ecalloc(C, sizeof *L->status);
	for (size_t c = 0; c < C; c++) {
		size_t np = 0;

		for (size_t i = 0; i < n; i++)
			np += d->ytr[i * C + c] == 1;
		if (np == 0)
			L->status[c] = SVMP_NO_TRAIN_POS;
		else if (!has_test_pos(d, c))
			L->status[c] = SVMP_NO_TEST_POS;
	}
	L->npos_short = emalloc(nk * C * sizeof *L->npos_short);
	for (size_t i = 0; i < nk * C; i++)
		L->npos_short[i] = -1;
	L->test_cost = emalloc(nk * sizeof *L->test_cost);
	L->test_stat = emalloc(nk * 4 * sizeof *L->test_stat);
	L->cv_stat = emalloc(nk * 4 * sizeof *L->cv_stat);
	v = emalloc(ns * sizeof *v);

	for (size_t s = 0; s < ns; s++)
		for (size_t kk = 0; kk < nk; kk++) {
			int *l = emalloc(n * C * sizeof *l), k = L->k[kk];

			if (samples) {
				memcpy(l, samples[s * nk + kk], n * C *
				    sizeof *l);
				for (size_t c = 0; c < C; c++) {
					npos[c] = 0;
					for (size_t i = 0; i < n; i++)
						npos[c] += l[i * C + c] == 1;
				}
			} else
				svmp_lowshot_sample(l, npos, d->ytr, n, C,
				    (int)s + 1, k, o->seed);
			for (size_t c = 0; c < C; c++)
				if (npos[c] < (size_t)k)
					L->npos_short[kk * C + c] =
					    (int)npos[c];
			lab[s * nk + kk] = l;
		}
	R.total = ns * nk * C * nc * (SVMP_NFOLD + 1);

#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads)
	for (size_t u = 0; u < ns * nk * C; u++) {
		// Largest k first: those units take longest.
		size_t kk = nk - 1 - u / (ns * C), s = u / C % ns, c = u % C;

		lowshot_unit(&R, L, lab[s * nk + kk], (int)s, (int)kk, c);
	}

	for (size_t kk = 0; kk < nk; kk++) {
		double best = -INFINITY, *map = L->map + kk * ns * nc;
		int bj = 0;

		// MMSelfSup: mAP per (sample, cost), the cost with the best
		// mean over the samples.
		for (size_t s = 0; s < ns; s++)
			for (size_t j = 0; j < nc; j++)
				map[s * nc + j] = nanmean(L->ap + ((s * nk +
				    kk) * nc + j) * C, C, 1);
		for (size_t j = 0; j < nc; j++) {
			double m = nanmean(map + j, ns, nc);

			if (m > best) {
				best = m;
				bj = (int)j;
			}
		}
		L->test_cost[kk] = bj;
		for (size_t s = 0; s < ns; s++)
			v[s] = map[s * nc + (size_t)bj];
		stats(L->test_stat + kk * 4, v, (int)ns);
		// CV-selected: each class at its own cost, per sample.
		for (size_t s = 0; s < ns; s++) {
			double sum = 0;
			size_t cnt = 0;

			for (size_t c = 0; c < C; c++) {
				int j = L->cvcost[(s * nk + kk) * C + c];
				double a = L->ap[((s * nk + kk) * nc +
				    (size_t)j) * C + c];

				if (!isnan(a)) {
					sum += a;
					cnt++;
				}
			}
			v[s] = cnt ? sum / (double)cnt : NAN;
		}
		stats(L->cv_stat + kk * 4, v, (int)ns);
	}
	L->nfit = R.nfit;
	L->nmaxiter = R.nmaxiter;
	for (size_t i = 0; i < ns * nk; i++)
		free(lab[i]);
	free(lab);
	free(npos);
	free(v);
	return 0;
}

void
svmp_lowshot_free(SvmpLowshot *L)
{
	free(L->ap);
	free(L->map);
	free(L->cvcost);
	free(L->npos_short);
	free(L->status);
	free(L->test_cost);
	free(L->test_stat);
	free(L->cv_stat);
	L->ap = L->map = NULL;
	L->cvcost = L->npos_short = L->status = L->test_cost = NULL;
	L->test_stat = L->cv_stat = NULL;
}

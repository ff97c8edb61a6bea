/*
 * t_svmproto: the protocol around the solver: the cost list, scikit-learn's
 * StratifiedKFold folds (reference file and a hand-derived case), the
 * low-shot samples, input checks, and whole runs of both protocols on
 * small separable data (known answer, thread-count independence).
 */
#include <math.h>
#include <string.h>

#include "common/svmproto.h"
#include "tests/check.h"
#include "tests/svmref.h"

TEST(costs)
{
	SvmpOpt o;
	char err[256];

	svmp_opt_init(&o);
	CHECK(o.ncost == 19, "%d costs", o.ncost);
	CHECK(o.cost[0] == 1 && o.cost[1] == 10 && o.cost[2] == 100, "base");
	CHECK(o.cost[3] == 0.0625 && o.cost[18] == 1.9073486328125e-06,
	    "%g .. %g", o.cost[3], o.cost[18]);
	CHECK(svmp_parse_costs(&o, "0.5", err, sizeof err) == 0 &&
	    o.ncost == 17 && o.cost[0] == 0.5 && o.cost[1] == 0.0625, "0.5");
	CHECK(svmp_parse_costs(&o, "1,x", err, sizeof err) == -1 &&
	    strstr(err, "'x'"), "%s", err);
	CHECK(svmp_parse_costs(&o, "0", err, sizeof err) == -1, "zero");
	CHECK(svmp_parse_costs(&o, "", err, sizeof err) == -1, "empty");
}

// Derived by hand from the rules in svmproto.h: labels
//   row   0  1  2  3  4  5  6  7  8  9 10 11 12
//   y     1  1 -1 -1 -1  1 -1 -1 -1 -1  1 -1 -1
// Class 1 appears first (code 0, 4 rows), -1 second (code 1, 9 rows).
// Sorted codes: positions 0-3 are code 0, 4-12 code 1; position p goes to
// fold p % 3. Code 0: positions 0,1,2,3 -> folds 0,1,2,0: shares 2,1,1.
// Code 1: positions 4..12 -> 1,2,0,1,2,0,1,2,0: shares 3,3,3.
// Positives (rows 0,1,5,10) fill fold 0 twice, then 1, then 2; negatives
// (rows 2,3,4,6,7,8,9,11,12) fill 0,0,0,1,1,1,2,2,2.
TEST(folds_hand)
{
	int y[] = {1, 1, -1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1};
	int want[] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
	int fold[13];

	svmp_folds(fold, y, 13, 3);
	CHECK(!memcmp(fold, want, sizeof want), "folds differ");
}

// Against sklearn's own StratifiedKFold(3).split (gen_svm_ref.py).
TEST(folds_ref)
{
	SvmRef r;
	int ncase = 0;

	SVMREF_EACH(r, "folds") {
		int *f = malloc(r.n * sizeof *f);

		svmp_folds(f, r.y, r.n, 3);
		CHECK(!memcmp(f, r.fold, r.n * sizeof *f), "%s: folds differ "
		    "from sklearn", r.name);
		free(f);
		ncase++;
		svmref_free(&r);
	}
	CHECK(ncase == 5, "%d fold cases in %s", ncase, SVMREF_PATH);
}

// ----------------------------------------------------------------------
// Low-shot samples

enum { SN = 400, SC = 3 };

static void
sample_labels(int *y)
{
	// Class 0: every 5th row positive (80), every 50th difficult;
	// class 1: 3 positives; class 2: 90 negatives only besides positives.
	for (int i = 0; i < SN; i++) {
		y[i * SC + 0] = i % 5 == 0 ? 1 : (i % 50 == 1 ? -1 : 0);
		y[i * SC + 1] = i % 150 == 7 ? 1 : 0;
		y[i * SC + 2] = i < 90 ? 0 : (i < 300 ? 1 : -1);
	}
}

TEST(lowshot_sample)
{
	static int y[SN * SC], a[SN * SC], b[SN * SC], c[SN * SC];
	size_t npos[SC];

	sample_labels(y);
	svmp_lowshot_sample(a, npos, y, SN, SC, 1, 4, 9);
	for (int k = 0; k < SC; k++) {
		int ones = 0, zeros = 0, bad = 0;

		for (int i = 0; i < SN; i++) {
			int v = a[i * SC + k];

			ones += v == 1;
			zeros += v == 0;
			bad += (v == 1 && y[i * SC + k] != 1) ||
			    (v == 0 && y[i * SC + k] != 0);
		}
		CHECK(bad == 0, "class %d: %d rows sampled against their "
		    "label (difficult rows must never be sampled)", k, bad);
		if (k == 1)   // 3 positives exist: all are taken
			CHECK(ones == 3 && npos[k] == 3, "class 1: %d", ones);
		else
			CHECK(ones == 4 && npos[k] == 4, "class %d: %d "
			    "positives", k, ones);
		CHECK(zeros == 19 * 4, "class %d: %d negatives", k, zeros);
	}
	svmp_lowshot_sample(b, npos, y, SN, SC, 1, 4, 9);
	CHECK(!memcmp(a, b, sizeof a), "same seed, different sample");
	svmp_lowshot_sample(c, npos, y, SN, SC, 1, 4, 10);
	CHECK(memcmp(a, c, sizeof a), "seed 10 gave seed 9's sample");
	svmp_lowshot_sample(c, npos, y, SN, SC, 2, 4, 9);
	CHECK(memcmp(a, c, sizeof a), "sample 2 equals sample 1");
	// k = 5: class 2 wants 95 negatives and has 90: all are taken.
	svmp_lowshot_sample(c, npos, y, SN, SC, 1, 5, 9);
	{
		int zeros = 0;

		for (int i = 0; i < SN; i++)
			zeros += c[i * SC + 2] == 0;
		CHECK(zeros == 90, "class 2: %d negatives", zeros);
	}
}

// ----------------------------------------------------------------------
// Inputs

static Npy
arr(NpyType t, int ndim, int64_t r, int64_t c, void *data)
{
	Npy a;

	memset(&a, 0, sizeof a);
	a.type = t;
	a.ndim = ndim;
	a.shape[0] = r;
	a.shape[1] = c;
	a.count = (size_t)(ndim == 1 ? r : r * c);
	a.data = data;
	return a;
}

static const char *const names[4] = {"trx", "try", "tex", "tey"};

static int
load(Npy xtr, Npy ytr, Npy xte, Npy yte, char *err, size_t errlen)
{
	SvmpData d;
	int rc = svmp_data_load(&d, &xtr, &ytr, &xte, &yte, names, err,
	    errlen);

	if (rc == 0)
		svmp_data_free(&d);
	return rc;
}

TEST(inputs)
{
	float x[6 * 2] = {3, 4, 1, 0, 0, 2, 1, 1, 5, 5, 0, 1};
	double xd[4 * 3] = {0};
	int32_t y2[6 * 2] = {1, 0, 0, 1, -1, 0, 1, 1, 0, 0, 0, -1};
	int64_t y1[6] = {0, 2, 1, 1, 0, 2};
	float yf[6] = {0};
	int32_t bad[6 * 2] = {1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	char err[256];
	SvmpData d;
	Npy X = arr(NPY_F32, 2, 6, 2, x), Y = arr(NPY_I32, 2, 6, 2, y2);
	Npy a[4] = {X, Y, X, Y};

	CHECK(svmp_data_load(&d, &a[0], &a[1], &a[2], &a[3], names, err,
	    sizeof err) == 0, "%s", err);
	// Rows normalised by |x| + 1e-5: (3, 4) -> (3, 4) / 5.00001.
	CHECK_NEAR(d.xtr[0], 3 / 5.00001, 1e-15, 0);
	CHECK_NEAR(d.xtr[1], 4 / 5.00001, 1e-15, 0);
	CHECK(d.ncls == 2 && d.ytr[4] == -1 && d.yte[11] == -1, "labels");
	svmp_data_free(&d);

	// A class vector becomes one-vs-rest columns.
	a[1] = arr(NPY_I64, 1, 6, 0, y1);
	a[3] = a[1];
	CHECK(svmp_data_load(&d, &a[0], &a[1], &a[2], &a[3], names, err,
	    sizeof err) == 0, "%s", err);
	CHECK(d.ncls == 3 && d.ytr[1 * 3 + 2] == 1 && d.ytr[1 * 3 + 0] == 0,
	    "one-vs-rest");
	svmp_data_free(&d);

	x[5] = NAN;
	CHECK(load(X, Y, X, Y, err, sizeof err) == -1 && strstr(err, "trx") &&
	    strstr(err, "NaN"), "NaN: %s", err);
	x[5] = INFINITY;
	CHECK(load(X, Y, X, Y, err, sizeof err) == -1, "infinity");
	x[5] = 2;
	CHECK(load(X, arr(NPY_I32, 2, 5, 2, y2), X, Y, err, sizeof err) == -1
	    && strstr(err, "5 rows of labels for 6"), "rows: %s", err);
	CHECK(load(X, Y, arr(NPY_F64, 2, 4, 3, xd), arr(NPY_I32, 2, 4, 2, y2),
	    err, sizeof err) == -1 && strstr(err, "tex"), "dims: %s", err);
	CHECK(load(X, Y, X, arr(NPY_I32, 2, 6, 1, y2), err, sizeof err) == -1
	    && strstr(err, "classes"), "classes: %s", err);
	CHECK(load(X, arr(NPY_I32, 2, 6, 2, bad), X, Y, err, sizeof err) ==
	    -1 && strstr(err, "label 2"), "value: %s", err);
	CHECK(load(X, arr(NPY_F32, 1, 6, 0, yf), X, Y, err, sizeof err) ==
	    -1 && strstr(err, "integers"), "float labels: %s", err);
	CHECK(load(arr(NPY_F32, 1, 6, 0, x), Y, X, Y, err, sizeof err) == -1
	    && strstr(err, "2-D"), "1-D features: %s", err);
}

// ----------------------------------------------------------------------
// Whole runs on separable data: class c's positives have feature c high.

enum { TN = 90, TM = 60, TD = 6, TC = 3 };

// The arrays are copied by svmp_data_load, so one static set serves all.
static void
toy(SvmpData *d)
{
	static float x[TN * TD], xt[TM * TD];
	static int32_t y[TN * TC], yt[TM * TC];
	Npy a[4];
	char err[256];

	for (int s = 0; s < 2; s++) {
		float *X = s ? xt : x;
		int32_t *Y = s ? yt : y;
		int n = s ? TM : TN;

		for (int i = 0; i < n; i++) {
			for (int k = 0; k < TD; k++)
				X[i * TD + k] = 1 + (float)((i * 7 + k * 3 + s)
				    % 5) * 0.1f;
			for (int c = 0; c < TC; c++) {
				int pos = (i + c) % 4 == 0;

				Y[i * TC + c] = pos;
				if (pos)
					X[i * TD + c] += 3;
			}
			// Some difficult rows; at test they must be ignored
			// although they score high.
			if (i % 11 == 3) {
				Y[i * TC + 0] = -1;
				X[i * TD + 0] += s ? 6 : 0;
			}
		}
	}
	a[0] = arr(NPY_F32, 2, TN, TD, x);
	a[1] = arr(NPY_I32, 2, TN, TC, y);
	a[2] = arr(NPY_F32, 2, TM, TD, xt);
	a[3] = arr(NPY_I32, 2, TM, TC, yt);
	if (svmp_data_load(d, &a[0], &a[1], &a[2], &a[3], names, err,
	    sizeof err))
		fprintf(stderr, "toy: %s\n", err);
}

TEST(full_separable)
{
	SvmpData d;
	SvmpOpt o;
	SvmpResult r1, r2, r3;
	char err[256];

	toy(&d);
	svmp_opt_init(&o);
	o.threads = 1;
	CHECK(svmp_full(&r1, &d, &o, err, sizeof err) == 0, "%s", err);
	CHECK(r1.map == 1.0, "mAP %g", r1.map);
	for (int c = 0; c < TC; c++)
		CHECK(r1.status[c] == SVMP_OK && r1.ap[c] == 1.0 &&
		    r1.cost[c] == o.cost[r1.best[c]], "class %d", c);
	CHECK(r1.nfit == TC * (19 * 3 + 1), "%zu fits", r1.nfit);
	o.threads = 2;
	CHECK(svmp_full(&r2, &d, &o, err, sizeof err) == 0, "%s", err);
	CHECK(!memcmp(r1.cv, r2.cv, TC * 19 * sizeof *r1.cv), "CV APs "
	    "depend on the thread count");
	o.solver = SVMP_DENSE;
	CHECK(svmp_full(&r3, &d, &o, err, sizeof err) == 0, "%s", err);
	CHECK(r3.map == 1.0, "dense mAP %g", r3.map);
	for (int i = 0; i < TC * 19; i++)
		CHECK_NEAR(r3.cv[i], r1.cv[i], 1e-9, 0);
	svmp_result_free(&r1);
	svmp_result_free(&r2);
	svmp_result_free(&r3);
	svmp_data_free(&d);
}

// No training positive for class 1; no test positive for class 2.
TEST(full_skips)
{
	SvmpData d;
	SvmpOpt o;
	SvmpResult r;
	char err[256];

	toy(&d);
	for (size_t i = 0; i < d.n; i++)
		d.ytr[i * TC + 1] = d.ytr[i * TC + 1] == 1 ? 0 : d.ytr[i * TC + 1];
	for (size_t i = 0; i < d.m; i++)
		d.yte[i * TC + 2] = d.yte[i * TC + 2] == 1 ? -1 : 0;
	svmp_opt_init(&o);
	CHECK(svmp_full(&r, &d, &o, err, sizeof err) == 0, "%s", err);
	CHECK(r.status[0] == SVMP_OK && r.status[1] == SVMP_NO_TRAIN_POS &&
	    r.status[2] == SVMP_NO_TEST_POS, "status %d %d %d", r.status[0],
	    r.status[1], r.status[2]);
	CHECK(isnan(r.ap[1]) && isnan(r.ap[2]) && r.map == r.ap[0], "mAP %g",
	    r.map);
	CHECK(r.nfit == 19 * 3 + 1, "%zu fits", r.nfit);
	svmp_result_free(&r);
	svmp_data_free(&d);
}

TEST(lowshot_run)
{
	SvmpData d;
	SvmpOpt o;
	SvmpLowshot L1 = {.nk = 2, .nsample = 3, .k = {1, 3}}, L2 = L1;
	char err[256];

	toy(&d);
	svmp_opt_init(&o);
	o.threads = 1;
	CHECK(svmp_lowshot(&L1, &d, &o, NULL, err, sizeof err) == 0, "%s",
	    err);
	o.threads = 2;
	CHECK(svmp_lowshot(&L2, &d, &o, NULL, err, sizeof err) == 0, "%s",
	    err);
	CHECK(L1.nfit == 3 * 2 * TC * 19 * 4, "%zu fits", L1.nfit);
	CHECK(!memcmp(L1.ap, L2.ap, 3 * 2 * 19 * TC * sizeof *L1.ap),
	    "low-shot APs depend on the thread count");
	for (int kk = 0; kk < 2; kk++) {
		const double *t = L1.test_stat + kk * 4, *c = L1.cv_stat +
		    kk * 4;

		CHECK(t[1] <= t[0] && t[0] <= t[2] && t[3] >= 0 && t[2] <= 1,
		    "k %d test stats %g %g %g %g", L1.k[kk], t[0], t[1], t[2],
		    t[3]);
		CHECK(c[1] <= c[0] && c[0] <= c[2] && c[3] >= 0 && c[2] <= 1,
		    "k %d cv stats", L1.k[kk]);
		CHECK(L1.test_cost[kk] >= 0 && L1.test_cost[kk] < 19, "cost");
		{   // the statistics are those of the mAP table at that cost
			const double *m = L1.map + kk * 3 * 19;
			int j = L1.test_cost[kk];

			CHECK_NEAR(t[0], (m[j] + m[19 + j] + m[38 + j]) / 3,
			    1e-12, 0);
			CHECK(t[1] == fmin(m[j], fmin(m[19 + j], m[38 + j])),
			    "min");
		}
	}
	// Separable with 3 shots: some cost ranks every test row right.
	CHECK(L1.test_stat[4] == 1.0, "k = 3: %g", L1.test_stat[4]);
	svmp_lowshot_free(&L1);
	svmp_lowshot_free(&L2);
	svmp_data_free(&d);
}

int
main(void)
{
	RUN(costs);
	RUN(folds_hand);
	RUN(folds_ref);
	RUN(lowshot_sample);
	RUN(inputs);
	RUN(full_separable);
	RUN(full_skips);
	RUN(lowshot_run);
	return check_summary();
}

/*
 * t_metric: both AP flavours on hand-computed cases (ties, difficult rows,
 * interpolation, no positive) and top-k accuracy with ties.
 */
#include <math.h>

#include "common/metric.h"
#include "tests/check.h"
#include "tests/svmref.h"

// Ranked: +P1=1, -, +P3=2/3, -. Both flavours: (1 + 2/3) / 2.
TEST(ap_simple)
{
	double s[] = {0.9, 0.8, 0.7, 0.6};
	int y[] = {1, 0, 1, 0};

	CHECK_NEAR(metric_ap_voc(s, y, 4), 5.0 / 6, 1e-15, 0);
	CHECK_NEAR(metric_ap_sklearn(s, y, 4), 5.0 / 6, 1e-15, 0);
}

// Precision rises after the first positive: -, +P=1/2, +P=2/3. VOC
// interpolates the first step up to 2/3: AP = 2/3; sklearn does not:
// 1/2 * 1/2 + 1/2 * 2/3 = 7/12.
TEST(ap_interpolation)
{
	double s[] = {0.9, 0.8, 0.7};
	int y[] = {0, 1, 1};

	CHECK_NEAR(metric_ap_voc(s, y, 3), 2.0 / 3, 1e-15, 0);
	CHECK_NEAR(metric_ap_sklearn(s, y, 3), 7.0 / 12, 1e-15, 0);
}

// A difficult row ranked second: VOC drops it (+1, -1/2, +2/3: 5/6);
// sklearn counts it as a negative (+1, -, -, +2/4: 3/4).
TEST(ap_difficult)
{
	double s[] = {0.9, 0.8, 0.7, 0.6};
	int y[] = {1, -1, 0, 1};

	CHECK_NEAR(metric_ap_voc(s, y, 4), 5.0 / 6, 1e-15, 0);
	CHECK_NEAR(metric_ap_sklearn(s, y, 4), 0.75, 1e-15, 0);
}

// Ties. sklearn: one threshold per distinct score, so {0.5: one positive,
// one negative} gives P = 1/2 at R = 1 whatever the order: AP = 1/2 both
// ways round. VOC ranks ties in index order: negative first gives 1/2,
// positive first gives 1.
TEST(ap_ties)
{
	double s[] = {0.5, 0.5};
	int y1[] = {0, 1}, y2[] = {1, 0};
	// sklearn's own doc-style case: average_precision_score(
	// [1,-1,1,-1], [0.5,0.5,0.2,0.9]) = 0.41666 (checked with sklearn 1.2):
	// thresholds 0.9 (0/1), 0.5 (1/3, R 1/2), 0.2 (2/4, R 1).
	double s3[] = {0.5, 0.5, 0.2, 0.9};
	int y3[] = {1, -1, 1, -1};

	CHECK_NEAR(metric_ap_sklearn(s, y1, 2), 0.5, 1e-15, 0);
	CHECK_NEAR(metric_ap_sklearn(s, y2, 2), 0.5, 1e-15, 0);
	CHECK_NEAR(metric_ap_voc(s, y1, 2), 0.5, 1e-15, 0);
	CHECK_NEAR(metric_ap_voc(s, y2, 2), 1.0, 1e-15, 0);
	CHECK_NEAR(metric_ap_sklearn(s3, y3, 4), 5.0 / 12, 1e-15, 0);
	// VOC ignores the -1 rows there (two positives left: AP 1); with 0
	// for negatives, index order: -(0.9), +(0.5) P 1/2, -(0.5), +(0.2) P 2/4.
	CHECK_NEAR(metric_ap_voc(s3, y3, 4), 1, 1e-15, 0);
	y3[1] = y3[3] = 0;
	CHECK_NEAR(metric_ap_voc(s3, y3, 4), 0.5, 1e-15, 0);
}

TEST(ap_no_positive)
{
	double s[] = {0.3, 0.2, 0.1};
	int y[] = {0, -1, 0};

	CHECK(isnan(metric_ap_voc(s, y, 3)), "VOC AP without positives");
	CHECK(metric_ap_sklearn(s, y, 3) == 0, "sklearn AP without positives");
	CHECK(isnan(metric_ap_voc(s, y, 0)), "empty");
	CHECK(metric_ap_sklearn(s, y, 0) == 0, "empty");
}

// All positives ranked first (the difficult row below them): AP 1 in both
// flavours.
TEST(ap_perfect)
{
	double s[] = {-1, 3, 2, -5, 0};
	int y[] = {0, 1, 1, 0, -1};

	CHECK_NEAR(metric_ap_voc(s, y, 5), 1, 1e-15, 0);
	CHECK_NEAR(metric_ap_sklearn(s, y, 5), 1, 1e-15, 0);
}

// Against sklearn's average_precision_score (gen_svm_ref.py), with ties.
TEST(ap_sklearn_ref)
{
	SvmRef r;
	int ncase = 0;

	SVMREF_EACH(r, "ap") {
		CHECK_NEAR(metric_ap_sklearn(r.dec, r.y, r.n), r.value, 1e-12,
		    0);
		ncase++;
		svmref_free(&r);
	}
	CHECK(ncase == 2, "%d ap cases in %s", ncase, SVMREF_PATH);
}

TEST(topk)
{
	float sc[] = {
		0.1f, 0.7f, 0.2f, 0.0f,   // label 1: rank 0
		0.5f, 0.5f, 0.5f, 0.9f,   // label 2: 0.9 above, 0 and 1 tie before
		0.3f, 0.3f, 0.1f, 0.2f,   // label 0: rank 0 (tie, smaller index)
		NAN, 0.2f, 0.1f, 0.0f,    // label 0 is NaN: never correct
	};
	int y[] = {1, 2, 0, 0};
	int bad[] = {4, -1, 0, 0};

	CHECK(metric_rank(sc, 4, 1) == 0, "rank row 0");
	CHECK(metric_rank(sc + 4, 4, 2) == 3, "rank row 1");
	CHECK(metric_rank(sc + 8, 4, 0) == 0, "rank row 2");
	CHECK(metric_rank(sc + 8, 4, 1) == 1, "tie, larger index");
	CHECK(metric_rank(sc + 12, 4, 0) == 4, "NaN");
	CHECK(metric_topk(sc, y, 4, 4, 1) == 2, "top-1");
	CHECK(metric_topk(sc, y, 4, 4, 3) == 2, "top-3");
	CHECK(metric_topk(sc, y, 4, 4, 4) == 3, "top-4");
	CHECK(metric_topk(sc, bad, 2, 4, 4) == 0, "labels out of range");
}

int
main(void)
{
	RUN(ap_simple);
	RUN(ap_interpolation);
	RUN(ap_difficult);
	RUN(ap_ties);
	RUN(ap_no_positive);
	RUN(ap_perfect);
	RUN(ap_sklearn_ref);
	RUN(topk);
	return check_summary();
}

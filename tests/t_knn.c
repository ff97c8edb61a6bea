/* t_knn: the blocked kNN search against a full sort, votes by hand. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/knn.h"
#include "common/rng.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

static float *
randn(size_t n, uint64_t key)
{
	Rng g;

	rng_init(&g, 1, RNG_STREAM_USER, key);
	return th_randn(&g, n, 1);
}

/* The reference: every similarity in double, a full stable sort. */
static const double *ref_sim;

static int
ref_cmp(const void *a, const void *b)
{
	int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;

	if (ref_sim[i] != ref_sim[j])
		return ref_sim[i] > ref_sim[j] ? -1 : 1;
	return i < j ? -1 : 1;
}

static void
brute(double *sim, int64_t *idx, const float *q, size_t nq, const float *b,
    size_t nb, size_t dim, int k)
{
	double *s = emalloc(nb * sizeof *s);
	int64_t *ord = emalloc(nb * sizeof *ord);

	for (size_t i = 0; i < nq; i++) {
		for (size_t j = 0; j < nb; j++) {
			s[j] = 0;
			for (size_t d = 0; d < dim; d++)
				s[j] += (double)q[i * dim + d] * b[j * dim + d];
			ord[j] = j;
		}
		ref_sim = s;
		qsort(ord, nb, sizeof *ord, ref_cmp);
		for (int j = 0; j < k; j++) {
			idx[i * k + j] = ord[j];
			sim[i * k + j] = s[ord[j]];
		}
	}
	free(s);
	free(ord);
}

TEST(normalize)
{
	float x[9] = {3, 4, 0, 0, 0, 0, 1e-20f, 0, 0};

	knn_normalize(x, 3, 3);
	CHECK_NEAR(x[0], 0.6, 1e-7, 0);
	CHECK_NEAR(x[1], 0.8, 1e-7, 0);
	CHECK(x[3] == 0 && x[4] == 0 && x[5] == 0, "zero row changed");
	/* norm below eps: divided by eps, as F.normalize */
	CHECK_NEAR(x[6], 1e-8, 1e-12, 0);
}

TEST(against_full_sort)
{
	enum { NQ = 37, NB = 301, D = 13, K = 17 };
	float *q = randn(NQ * D, 1), *b = randn(NB * D, 2);
	float sim[NQ * K];
	int64_t idx[NQ * K], ridx[NQ * K];
	double rsim[NQ * K];
	int bad = 0;

	knn_normalize(q, NQ, D);
	knn_normalize(b, NB, D);
	knn_search(sim, idx, q, NQ, b, NB, D, K, 0, 0, NULL, NULL);
	brute(rsim, ridx, q, NQ, b, NB, D, K);
	for (int i = 0; i < NQ * K; i++) {
		bad += idx[i] != ridx[i] || fabs(sim[i] - rsim[i]) > 1e-6;
		CHECK(i % K == 0 || sim[i] <= sim[i - 1], "not sorted at %d", i);
	}
	CHECK(bad == 0, "%d of %d neighbours differ from the full sort", bad,
	    NQ * K);
	free(q);
	free(b);
}

/* Class order for the reference: score descending, lower class first. */
static const double *ref_score;

static int
class_cmp(const void *a, const void *b)
{
	int i = *(const int *)a, j = *(const int *)b;

	if ((float)ref_score[i] != (float)ref_score[j])
		return (float)ref_score[i] > (float)ref_score[j] ? -1 : 1;
	return i - j;
}

TEST(hits_against_full_sort)
{
	/* votes and hits from the reference neighbours, classes fully sorted */
	enum { NQ = 60, NB = 400, D = 8, C = 7, KMAX = 50 };
	static const int ks[] = {1, 3, 5, 10, 50};
	float *q = randn(NQ * D, 5), *b = randn(NB * D, 6);
	static float sim[NQ * KMAX];
	static int64_t idx[NQ * KMAX], ridx[NQ * KMAX];
	static double rsim[NQ * KMAX];
	int bl[NB], ql[NQ];
	Rng g;

	rng_init(&g, 1, RNG_STREAM_USER, 7);
	for (int i = 0; i < NB; i++)
		bl[i] = rng_below(&g, C);
	for (int i = 0; i < NQ; i++)
		ql[i] = rng_below(&g, C);
	knn_normalize(q, NQ, D);
	knn_normalize(b, NB, D);
	knn_search(sim, idx, q, NQ, b, NB, D, KMAX, 16, 50, NULL, NULL);
	brute(rsim, ridx, q, NQ, b, NB, D, KMAX);
	for (size_t t = 0; t < RL_NELEM(ks); t++) {
		int k = ks[t];
		size_t h1, h5, r1 = 0, r5 = 0;
		knn_hits(&h1, &h5, sim, idx, KMAX, NQ, k, bl, ql, C, KNN_T);
		for (int i = 0; i < NQ; i++) {
			double score[C] = {0};
			int ord[C];
			for (int j = 0; j < k; j++)
				score[bl[ridx[i * KMAX + j]]] +=
				    exp(rsim[i * KMAX + j] / KNN_T);
			for (int c = 0; c < C; c++)
				ord[c] = c;
			ref_score = score;
			qsort(ord, C, sizeof *ord, class_cmp);
			r1 += ord[0] == ql[i] && score[ql[i]] > 0;
			for (int j = 0; j < RL_MIN(5, k); j++)
				r5 += ord[j] == ql[i] && score[ql[i]] > 0;
		}
		CHECK(h1 == r1 && h5 == r5, "k=%d: hits %zu/%zu, reference "
		    "%zu/%zu", k, h1, h5, r1, r5);
		CHECK(h1 <= h5, "k=%d: top-1 above top-5", k);
	}
	free(q);
	free(b);
}

TEST(chunks_identical)
{
	enum { NQ = 41, NB = 257, D = 24, K = 20 };
	static const size_t cs[][2] = {
		{1, 1}, {7, 13}, {41, 257}, {1000, 1000}, {5, 64}, {16, 256},
	};
	float *q = randn(NQ * D, 3), *b = randn(NB * D, 4);
	float sim0[NQ * K], sim[NQ * K];
	int64_t idx0[NQ * K], idx[NQ * K];

	/* exact ties: bank rows 100..109 repeat rows 0..9 */
	memcpy(b + 100 * D, b, 10 * D * sizeof *b);
	/* and some queries equal bank rows (similarity 1, then the copy) */
	memcpy(q, b + 5 * D, D * sizeof *q);
	knn_normalize(q, NQ, D);
	knn_normalize(b, NB, D);
	knn_search(sim0, idx0, q, NQ, b, NB, D, K, 0, 0, NULL, NULL);
	for (size_t c = 0; c < RL_NELEM(cs); c++) {
		knn_search(sim, idx, q, NQ, b, NB, D, K, cs[c][0], cs[c][1],
		    NULL, NULL);
		CHECK(!memcmp(sim, sim0, sizeof sim) &&
		    !memcmp(idx, idx0, sizeof idx),
		    "chunks %zu x %zu differ from the default", cs[c][0],
		    cs[c][1]);
	}
	/* query 0 is bank row 5: itself, then its copy 105 (same sim) */
	CHECK(idx0[0] == 5 && idx0[1] == 105, "tie order: %lld %lld",
	    (long long)idx0[0], (long long)idx0[1]);
	CHECK(sim0[0] == sim0[1], "copies differ: %g %g", sim0[0], sim0[1]);
	/* wherever two neighbours tie, the lower index comes first */
	for (int i = 0; i < NQ * K; i++)
		if (i % K && sim0[i] == sim0[i - 1])
			CHECK(idx0[i] > idx0[i - 1], "tie at %d", i);
	free(q);
	free(b);
}

TEST(ties_at_the_cut)
{
	/* 50 equal bank rows: the first k by index, whatever the blocks */
	enum { NB = 50, D = 3, K = 10 };
	static const size_t cs[][2] = {{1, 1}, {1, 7}, {2, 50}, {0, 0}};
	float b[NB * D], q[2 * D] = {1, 2, 2, -1, 0, 0}, sim[2 * K];
	int64_t idx[2 * K];

	for (int i = 0; i < NB * D; i++)
		b[i] = i % D + 1;
	knn_normalize(b, NB, D);
	knn_normalize(q, 2, D);
	for (size_t c = 0; c < RL_NELEM(cs); c++) {
		knn_search(sim, idx, q, 2, b, NB, D, K, cs[c][0], cs[c][1],
		    NULL, NULL);
		for (int j = 0; j < 2 * K; j++)
			CHECK(idx[j] == j % K, "chunks %zu x %zu: idx[%d] = %lld",
			    cs[c][0], cs[c][1], j, (long long)idx[j]);
	}
}

TEST(constructed)
{
	/*
	 * 2-D bank of vectors at angles 0, .5, 1, 2, 3, pi with labels
	 * 2, 0, 0, 1, 1, 2; queries along x, so the similarities are the
	 * cosines of the angles. Four queries, labels 0..3 (class 3 has no
	 * bank row).
	 */
	static const double ang[6] = {0, 0.5, 1, 2, 3, 3.14159265358979};
	static const int lab[6] = {2, 0, 0, 1, 1, 2}, qlab[4] = {0, 1, 2, 3};
	float b[12], q[8], sim[4 * 4];
	int64_t idx[4 * 4];
	double score[4];
	size_t h1, h5;

	for (int i = 0; i < 6; i++) {
		b[2 * i] = 3 * cos(ang[i]);   /* not unit: normalise */
		b[2 * i + 1] = 3 * sin(ang[i]);
	}
	for (int i = 0; i < 4; i++)
		q[2 * i] = 2, q[2 * i + 1] = 0;
	knn_normalize(b, 6, 2);
	knn_normalize(q, 4, 2);
	knn_search(sim, idx, q, 4, b, 6, 2, 4, 0, 0, NULL, NULL);
	CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 3,
	    "order %lld %lld %lld %lld", (long long)idx[0], (long long)idx[1],
	    (long long)idx[2], (long long)idx[3]);
	CHECK_NEAR(sim[1], cos(0.5), 1e-6, 0);
	/* k = 4: label 2 gets e^(1/T), label 0 e^(cos.5/T) + e^(cos1/T) */
	knn_vote(score, sim, idx, 4, lab, 4, KNN_T);
	CHECK_NEAR(score[2], exp(1 / KNN_T), 0, 1e-5);
	CHECK_NEAR(score[0], exp(cos(0.5) / KNN_T) + exp(cos(1.0) / KNN_T), 0,
	    1e-5);
	CHECK_NEAR(score[1], exp(cos(2.0) / KNN_T), 0, 1e-5);
	CHECK(score[3] == 0, "class 3 voted");
	/*
	 * e^14.29 = 1.6e6 beats e^12.54 + e^7.72 = 2.8e5 + 2.3e3 beats
	 * e^-5.9: ranks 2, 0, 1. Top-1: the label-2 query; top-5 (= top-4,
	 * k = 4): labels 0, 1, 2; class 3 has no vote, so never a hit.
	 */
	knn_hits(&h1, &h5, sim, idx, 4, 4, 4, lab, qlab, 4, KNN_T);
	CHECK(h1 == 1 && h5 == 3, "k=4: top1 %zu top5 %zu", h1, h5);
	/* k = 2 (labels 2, 0 vote): top-5 means top-2 */
	knn_hits(&h1, &h5, sim, idx, 4, 4, 2, lab, qlab, 4, KNN_T);
	CHECK(h1 == 1 && h5 == 2, "k=2: top1 %zu top5 %zu", h1, h5);
	/* T = 1, k = 3: e^.878 + e^.540 = 4.12 > e^1, label 0 wins */
	knn_hits(&h1, &h5, sim, idx, 4, 4, 3, lab, qlab, 4, 1.0);
	CHECK(h1 == 1 && h5 == 2, "T=1: top1 %zu top5 %zu", h1, h5);
	knn_hits(&h1, &h5, sim, idx, 4, 1, 3, lab, qlab, 4, 1.0);
	CHECK(h1 == 1, "T=1: the label-0 query is not top-1");
}

int
main(void)
{
	RUN(normalize);
	RUN(against_full_sort);
	RUN(hits_against_full_sort);
	RUN(chunks_identical);
	RUN(ties_at_the_cut);
	RUN(constructed);
	return check_summary();
}

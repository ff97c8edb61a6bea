/* t_knn: the blocked kNN search against a full sort, votes by hand. */
#include <float.h>
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

/* Every similarity of the nq queries and nb bank rows, in double. */
static double *
all_sims(const float *q, size_t nq, const float *b, size_t nb, size_t dim)
{
	double *s = emalloc(nq * nb * sizeof *s);

	for (size_t i = 0; i < nq; i++)
		for (size_t j = 0; j < nb; j++) {
			s[i * nb + j] = 0;
			for (size_t d = 0; d < dim; d++)
				s[i * nb + j] += (double)q[i * dim + d] *
				    b[j * dim + d];
		}
	return s;
}

/*
 * What knn.h promises of a search whose similarities carry rounding of
 * at most tol: each returned similarity is its row's true one to tol; the
 * list is sorted, the lower index first among equal returned values; the
 * rows are distinct; and no row left out is above the k-th by more than
 * tol. The number of broken promises.
 */
static int
topk_holds(const float *sim, const int64_t *idx, const double *ref,
    size_t nq, size_t nb, int k, double tol)
{
	char *in = emalloc(nb);
	int bad = 0;

	for (size_t i = 0; i < nq; i++) {
		const float *s = sim + i * k;
		const int64_t *x = idx + i * k;
		const double *r = ref + i * nb;

		memset(in, 0, nb);
		for (int j = 0; j < k; j++) {
			if (x[j] < 0 || (size_t)x[j] >= nb || in[x[j]]++) {
				bad++;
				continue;
			}
			bad += fabs(s[j] - r[x[j]]) > tol;
			bad += j > 0 && (s[j] > s[j - 1] ||
			    (s[j] == s[j - 1] && x[j] < x[j - 1]));
		}
		for (size_t j = 0; j < nb; j++)
			bad += !in[j] && r[j] > s[k - 1] + tol;
	}
	free(in);
	return bad;
}

/*
 * The rounding of a float dot product of two unit vectors of dimension
 * d is at most about d * FLT_EPSILON / 2 in any order of summation (each
 * |q_i b_i| sums to at most 1); twice that is the tolerance.
 */
#define DOT_TOL(d) ((d) * (double)FLT_EPSILON)

TEST(against_full_sort)
{
	enum { NQ = 37, NB = 301, D = 13, K = 17 };
	float *q = randn(NQ * D, 1), *b = randn(NB * D, 2);
	float sim[NQ * K];
	int64_t idx[NQ * K], ridx[NQ * K];
	double rsim[NQ * K], *ref;
	int same = 0, bad;

	knn_normalize(q, NQ, D);
	knn_normalize(b, NB, D);
	knn_search(sim, idx, q, NQ, b, NB, D, K, 0, 0, NULL, NULL);
	brute(rsim, ridx, q, NQ, b, NB, D, K);
	ref = all_sims(q, NQ, b, NB, D);
	bad = topk_holds(sim, idx, ref, NQ, NB, K, DOT_TOL(D));
	CHECK(bad == 0, "%d broken promises against the full sort", bad);
	/* no near-ties in random data this small: the same rows */
	for (int i = 0; i < NQ * K; i++)
		same += idx[i] == ridx[i];
	CHECK(same == NQ * K, "%d of %d neighbours as the full sort", same,
	    NQ * K);
	free(ref);
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

static const size_t chunkings[][2] = {
	{0, 0}, {1, 1}, {7, 13}, {41, 257}, {1000, 1000}, {5, 64}, {16, 256},
};

/*
 * Entries that are multiples of 1/4 up to 3/4 in magnitude: every product
 * and partial sum of 24 of them is exact in float, so any sgemm, on any
 * kernel and in any block shape, gives the same bits, and the result must
 * not depend on the chunking at all. Rows repeat, so ties abound.
 */
TEST(chunks_exact)
{
	enum { NQ = 41, NB = 257, D = 24, K = 20 };
	float *q = randn(NQ * D, 3), *b = randn(NB * D, 4);
	float sim0[NQ * K], sim[NQ * K];
	int64_t idx0[NQ * K], idx[NQ * K], ridx[NQ * K];
	double rsim[NQ * K];
	int bad = 0;

	for (int i = 0; i < NQ * D; i++)
		q[i] = nearbyintf(RL_MAX(-3.f, RL_MIN(3.f, q[i] * 2))) / 4;
	for (int i = 0; i < NB * D; i++)
		b[i] = nearbyintf(RL_MAX(-3.f, RL_MIN(3.f, b[i] * 2))) / 4;
	/* exact ties: bank rows 100..109 repeat rows 0..9 */
	memcpy(b + 100 * D, b, 10 * D * sizeof *b);
	memcpy(q, b + 5 * D, D * sizeof *q);
	brute(rsim, ridx, q, NQ, b, NB, D, K);
	for (size_t c = 0; c < RL_NELEM(chunkings); c++) {
		knn_search(sim, idx, q, NQ, b, NB, D, K, chunkings[c][0],
		    chunkings[c][1], NULL, NULL);
		bad = 0;
		for (int i = 0; i < NQ * K; i++)
			bad += idx[i] != ridx[i] || sim[i] != rsim[i];
		CHECK(bad == 0, "chunks %zu x %zu: %d of %d neighbours differ "
		    "from the full sort", chunkings[c][0], chunkings[c][1], bad,
		    NQ * K);
		if (c == 0)
			memcpy(sim0, sim, sizeof sim), memcpy(idx0, idx,
			    sizeof idx);
		CHECK(!memcmp(sim, sim0, sizeof sim) &&
		    !memcmp(idx, idx0, sizeof idx), "chunks %zu x %zu differ "
		    "from the default", chunkings[c][0], chunkings[c][1]);
	}
	/* the case has ties to break, or it tests less than it says */
	for (int i = 0; i < NQ * K; i++)
		bad += i % K && sim0[i] == sim0[i - 1];
	CHECK(bad > NQ, "only %d ties among the neighbours", bad);
	free(q);
	free(b);
}

/*
 * Random unit vectors: blocks of other shapes round the similarities
 * differently (by a few ulp), so the promise is the one of knn.h: values
 * within the rounding, near-ties in either order.
 */
TEST(chunks_rounding)
{
	enum { NQ = 41, NB = 257, D = 24, K = 20 };
	float *q = randn(NQ * D, 3), *b = randn(NB * D, 4);
	float sim[NQ * K];
	int64_t idx[NQ * K];
	double *ref;

	memcpy(b + 100 * D, b, 10 * D * sizeof *b);
	memcpy(q, b + 5 * D, D * sizeof *q);
	knn_normalize(q, NQ, D);
	knn_normalize(b, NB, D);
	ref = all_sims(q, NQ, b, NB, D);
	for (size_t c = 0; c < RL_NELEM(chunkings); c++) {
		int bad;

		knn_search(sim, idx, q, NQ, b, NB, D, K, chunkings[c][0],
		    chunkings[c][1], NULL, NULL);
		bad = topk_holds(sim, idx, ref, NQ, NB, K, DOT_TOL(D));
		CHECK(bad == 0, "chunks %zu x %zu: %d broken promises",
		    chunkings[c][0], chunkings[c][1], bad);
		/* query 0 is bank row 5 and its copy 105, in either order */
		CHECK(idx[0] + idx[1] == 110 && (idx[0] == 5 || idx[0] == 105),
		    "chunks %zu x %zu: first two %lld %lld", chunkings[c][0],
		    chunkings[c][1], (long long)idx[0], (long long)idx[1]);
	}
	free(ref);
	free(q);
	free(b);
}

TEST(ties_at_the_cut)
{
	/*
	 * 50 equal bank rows (1/2, 1/2, 1/2, 1/2) and queries whose
	 * similarities to them are exact (1/2 and 1): the first k by index,
	 * whatever the blocks.
	 */
	enum { NB = 50, D = 4, K = 10 };
	static const size_t cs[][2] = {{1, 1}, {1, 7}, {2, 50}, {0, 0}};
	float b[NB * D], q[2 * D] = {1, 0, 0, 0, .5, .5, .5, .5}, sim[2 * K];
	int64_t idx[2 * K];

	for (int i = 0; i < NB * D; i++)
		b[i] = .5f;
	knn_normalize(b, NB, D);
	knn_normalize(q, 2, D);
	for (size_t c = 0; c < RL_NELEM(cs); c++) {
		knn_search(sim, idx, q, 2, b, NB, D, K, cs[c][0], cs[c][1],
		    NULL, NULL);
		for (int j = 0; j < 2 * K; j++)
			CHECK(idx[j] == j % K && sim[j] == (j < K ? .5f : 1.f),
			    "chunks %zu x %zu: idx[%d] = %lld, sim %g", cs[c][0],
			    cs[c][1], j, (long long)idx[j], sim[j]);
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
	RUN(chunks_exact);
	RUN(chunks_rounding);
	RUN(ties_at_the_cut);
	RUN(constructed);
	return check_summary();
}

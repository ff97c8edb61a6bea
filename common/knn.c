/* knn: blocked top-k cosine search and weighted votes. See knn.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/knn.h"
#include "common/metric.h"
#include "common/util.h"

/* Below this many values a loop is not worth waking the OpenMP threads. */
#define PAR_MIN (1 << 16)

void
knn_normalize(float *x, size_t n, size_t dim)
{
	#pragma omp parallel for schedule(static) if (n * dim > PAR_MIN)
	for (size_t i = 0; i < n; i++) {
		float *r = x + i * dim;
		double s = 0;
		for (size_t j = 0; j < dim; j++)
			s += (double)r[j] * r[j];
		float inv = 1.0 / fmax(sqrt(s), KNN_EPS);
		for (size_t j = 0; j < dim; j++)
			r[j] *= inv;
	}
}

// ----------------------------------------------------------------------
// A bounded min-heap per query. "Worse" means a lower similarity, or an
// equal one at a higher bank index, so the root is the neighbour to drop
// first and the final order is a stable descending sort.

static int
worse(float sa, int64_t ia, float sb, int64_t ib)
{
	return sa < sb || (sa == sb && ia > ib);
}

static void
heap_swap(float *hs, int64_t *hi, int a, int b)
{
	float ts = hs[a];
	int64_t ti = hi[a];

	hs[a] = hs[b], hi[a] = hi[b];
	hs[b] = ts, hi[b] = ti;
}

static void
heap_down(float *hs, int64_t *hi, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && worse(hs[l], hi[l], hs[m], hi[m]))
			m = l;
		if (r < n && worse(hs[r], hi[r], hs[m], hi[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(hs, hi, i, m);
		i = m;
	}
}

static void
heap_up(float *hs, int64_t *hi, int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;
		if (!worse(hs[i], hi[i], hs[p], hi[p]))
			return;
		heap_swap(hs, hi, i, p);
		i = p;
	}
}

/*
 * Offer the similarities row[0..nb) (bank rows base..base+nb, all of a
 * higher index than anything in the heap) to a heap of n of cap entries.
 * Returns the new n.
 */
static int
heap_offer(float *hs, int64_t *hi, int n, int cap, const float *row,
    size_t nb, int64_t base)
{
	size_t j = 0;

	for (; j < nb && n < cap; j++) {
		hs[n] = row[j], hi[n] = base + j;
		heap_up(hs, hi, n++);
	}
	// A later row never beats an equal earlier one: strictly greater only.
	for (; j < nb; j++)
		if (row[j] > hs[0]) {
			hs[0] = row[j], hi[0] = base + j;
			heap_down(hs, hi, n, 0);
		}
	return n;
}

/* Sort a full heap into descending order in place (heapsort). */
static void
heap_sort(float *hs, int64_t *hi, int n)
{
	for (int m = n - 1; m > 0; m--) {
		heap_swap(hs, hi, 0, m);
		heap_down(hs, hi, m, 0);
	}
}

void
knn_search(float *sim, int64_t *idx, const float *query, size_t nq,
    const float *bank, size_t nb, size_t dim, int kmax, size_t chunk_q,
    size_t chunk_b, void (*done)(void *ctx, size_t nq_done), void *ctx)
{
	size_t cq = chunk_q ? chunk_q : KNN_CHUNK_Q;
	size_t cb = chunk_b ? chunk_b : KNN_CHUNK_B;
	float *s = emalloc_aligned(RL_MIN(cq, nq) * RL_MIN(cb, nb) * sizeof *s);
	int *fill = emalloc(RL_MIN(cq, nq) * sizeof *fill);

	for (size_t q0 = 0; q0 < nq; q0 += cq) {
		size_t mq = RL_MIN(cq, nq - q0);
		// The heaps live in the output rows of this block.
		float *hs = sim + q0 * kmax;
		int64_t *hi = idx + q0 * kmax;

		memset(fill, 0, mq * sizeof *fill);
		for (size_t b0 = 0; b0 < nb; b0 += cb) {
			size_t mb = RL_MIN(cb, nb - b0);
			// s (mq, mb) = query[q0..] (mq, dim) . bank[b0..]^T
			blas_gemm(0, 1, (int)mq, (int)mb, (int)dim,
			    query + q0 * dim, (int)dim, bank + b0 * dim,
			    (int)dim, 0.0f, s, (int)mb, NULL);
			#pragma omp parallel for schedule(static) \
			    if (mq * mb > PAR_MIN)
			for (size_t q = 0; q < mq; q++)
				fill[q] = heap_offer(hs + q * kmax, hi + q * kmax,
				    fill[q], kmax, s + q * mb, mb, b0);
		}
		#pragma omp parallel for schedule(static) \
		    if (mq * kmax > PAR_MIN / 8)
		for (size_t q = 0; q < mq; q++)
			heap_sort(hs + q * kmax, hi + q * kmax, kmax);
		if (done)
			done(ctx, q0 + mq);
	}
	free(s);
	free(fill);
}

void
knn_vote(double *score, const float *sim, const int64_t *idx, int k,
    const int *bank_label, int nclass, double t)
{
	memset(score, 0, nclass * sizeof *score);
	for (int j = 0; j < k; j++)
		score[bank_label[idx[j]]] += exp(sim[j] / t);
}

void
knn_hits(size_t *top1, size_t *top5, const float *sim, const int64_t *idx,
    int kmax, size_t nq, int k, const int *bank_label, const int *query_label,
    int nclass, double t)
{
	size_t h1 = 0, h5 = 0, n5 = RL_MIN(5, k);

	#pragma omp parallel reduction(+:h1, h5) \
	    if (nq * (size_t)(k + nclass) > PAR_MIN)
	{
		double *acc = emalloc(nclass * sizeof *acc);
		float *score = emalloc(nclass * sizeof *score);
		#pragma omp for schedule(static)
		for (size_t q = 0; q < nq; q++) {
			int y = query_label[q];
			knn_vote(acc, sim + q * kmax, idx + q * kmax, k,
			    bank_label, nclass, t);
			// DINO ranks float32 scores
			for (int c = 0; c < nclass; c++)
				score[c] = acc[c];
			if (y < 0 || y >= nclass || !(score[y] > 0))
				continue;
			size_t r = metric_rank(score, nclass, y);
			h1 += r < 1;
			h5 += r < n5;
		}
		free(acc);
		free(score);
	}
	*top1 = h1;
	*top5 = h5;
}

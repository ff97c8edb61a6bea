/* metric: average precision and top-k accuracy. See metric.h. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "common/metric.h"
#include "common/util.h"

typedef struct {
	double s;
	size_t i;
} Ranked;

/* Descending score, ties in index order: a stable descending sort. */
static int
ranked_cmp(const void *a, const void *b)
{
	const Ranked *x = a, *y = b;

	if (x->s > y->s)
		return -1;
	if (x->s < y->s)
		return 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* The rows with label >= min_label, sorted; returns how many. */
static size_t
rank_rows(Ranked *r, const double *score, const int *label, size_t n,
    int min_label)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (label[i] >= min_label) {
			r[m].s = score[i];
			r[m].i = i;
			m++;
		}
	qsort(r, m, sizeof *r, ranked_cmp);
	return m;
}

double
metric_ap_voc(const double *score, const int *label, size_t n)
{
	Ranked *r = emalloc(n * sizeof *r);
	double *prec = emalloc(n * sizeof *prec);
	size_t m, npos = 0, tp = 0;
	double ap = 0, best = 0;

	m = rank_rows(r, score, label, n, 0);
	for (size_t j = 0; j < m; j++) {
		if (label[r[j].i] > 0)
			tp++;
		prec[j] = (double)tp / (double)(j + 1);
	}
	npos = tp;
	// Walk from the bottom: best = max precision at or below rank j;
	// each positive adds a recall step of 1/npos at that precision.
	for (size_t j = m; j-- > 0;) {
		if (prec[j] > best)
			best = prec[j];
		if (label[r[j].i] > 0)
			ap += best;
	}
	free(r);
	free(prec);
	return npos ? ap / (double)npos : NAN;
}

double
metric_ap_sklearn(const double *score, const int *label, size_t n)
{
	Ranked *r = emalloc(n * sizeof *r);
	size_t npos = 0, tp = 0, lasttp = 0;
	double ap = 0;

	rank_rows(r, score, label, n, INT_MIN);
	for (size_t i = 0; i < n; i++)
		npos += label[i] > 0;
	for (size_t j = 0; j < n; j++) {
		tp += label[r[j].i] > 0;
		if (j + 1 < n && r[j + 1].s == r[j].s)
			continue;   // not the end of a threshold group
		if (tp > lasttp)
			ap += (double)(tp - lasttp) / (double)npos *
			    ((double)tp / (double)(j + 1));
		lasttp = tp;
	}
	free(r);
	return ap;
}

size_t
metric_rank(const float *row, size_t c, int label)
{
	size_t rank = 0;
	float s;

	if (label < 0 || (size_t)label >= c || isnan(row[label]))
		return c;
	s = row[label];
	for (size_t j = 0; j < c; j++)
		rank += row[j] > s || (row[j] == s && j < (size_t)label);
	return rank;
}

size_t
metric_topk(const float *score, const int *label, size_t n, size_t c,
    size_t k)
{
	size_t hit = 0;

	for (size_t i = 0; i < n; i++)
		hit += metric_rank(score + i * c, c, label[i]) < k;
	return hit;
}

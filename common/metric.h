/*
 * metric: the scores the benchmarks report: average precision (two
 * flavours) and top-k accuracy.
 *
 * metric_ap_voc is the all-point interpolated AP of the VOC devkit from
 * 2010 on, as MMSelfSup's svm_helper.calculate_ap computes it (not the
 * 11-point VOC2007 AP). metric_ap_sklearn is scikit-learn's
 * average_precision_score (no interpolation, tied scores as one
 * threshold), the score MMSelfSup's cross-validation maximises.
 * metric_topk counts the rows of a score matrix whose label is among the k
 * highest scores (rl-linear, rl-knn).
 *
 * Pure functions over caller-owned arrays: no I/O, no allocation that
 * outlives a call, no thread state; safe to call from several threads.
 */
#ifndef RL_METRIC_H
#define RL_METRIC_H

#include <stddef.h>

/*
 * VOC all-point interpolated AP of n scores. label[i] > 0 is a positive,
 * 0 a negative, < 0 (VOC's "difficult") is ignored. Rows are ranked by
 * descending score, tied scores in index order (a stable sort, as
 * bench/sklearn_svm.py does; MMSelfSup's np.argsort(...)[::-1]
 * leaves the order of ties unspecified). Then
 *   AP = sum over recall steps of (R_i - R_{i-1}) * max_{j >= i} P_j.
 * Returns the AP in [0, 1], or NAN when no row is a positive (undefined).
 * NaN scores are the caller's problem (the order is then unspecified).
 */
double metric_ap_voc(const double *score, const int *label, size_t n);

/*
 * scikit-learn's average_precision_score(label == 1, score) for n scores:
 * label[i] > 0 is a positive, anything else a negative (nothing is
 * ignored). Rows with equal scores form one threshold, so the order of
 * ties does not matter:
 *   AP = sum over distinct thresholds t, descending, of (R_t - R_prev) * P_t.
 * Returns the AP in [0, 1]; 0 when there is no positive (what
 * scikit-learn 1.2 returns, with a warning, in that case).
 */
double metric_ap_sklearn(const double *score, const int *label, size_t n);

/*
 * The 0-based rank of class `label` in one row of c scores: the number of
 * classes scored higher, plus those scored equal with a smaller index (a
 * deterministic tie rule; torch.topk leaves ties unspecified). A label
 * outside [0, c) or a NaN score at the label gives rank c (never correct).
 */
size_t metric_rank(const float *row, size_t c, int label);

/*
 * Top-k accuracy over n rows of an n x c row-major score matrix: returns
 * the number of rows i with metric_rank(score + i*c, c, label[i]) < k, so
 * that chunks can be summed; divide by n for the accuracy. k >= c counts
 * every row with a valid label.
 */
size_t metric_topk(const float *score, const int *label, size_t n, size_t c,
    size_t k);

#endif

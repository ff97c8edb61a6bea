/*
 * fdata: a feature matrix and its label vector read from two .npy files
 * and checked, the input of the scoring tools (rl-linear, rl-knn).
 *
 * Features are an (N, D) array, or (N, C, H, W) flattened C-major to
 * (N, C*H*W), of float32 (kept as is) or float64 (converted); every value
 * must be finite. Labels are an (N,) or (N, 1) integer array (int32,
 * int64, uint8) of class indices >= 0. Everything is held in memory.
 *
 * Does not normalise, pool or otherwise change the features; does not
 * read multi-label (N x 20) VOC matrices, which are rl-svm's.
 */
#ifndef RL_FDATA_H
#define RL_FDATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	size_t n, dim;
	float *x;         /* n x dim, row-major; owned */
	int *y;           /* n class indices; owned; NULL without labels */
	int nclass;       /* max label + 1 (0 without labels) */
	char *path;       /* the feature file, for messages; owned */
} FData;

/*
 * Read features from feat and, when labels is not NULL, their labels.
 * d is overwritten. Returns 0, or -1 with one line naming the file in
 * err: an unreadable or malformed file, a non-float feature or
 * non-integer label dtype, a NaN or infinite value (with its row and
 * column), a negative label, differing row counts, no rows.
 */
int fdata_load(FData *d, const char *feat, const char *labels, char *err,
    size_t errlen);
void fdata_free(FData *d);

/*
 * Check that b's rows have a's width (a bank and its queries, train and
 * val features). Returns 0, or -1 naming both files in err.
 */
int fdata_same_dim(const FData *a, const FData *b, char *err,
    size_t errlen);

#endif

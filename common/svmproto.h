/*
 * svmproto: MMSelfSup's VOC07 SVM benchmark protocols
 * (relloc-protocols(7), SVM and LOW-SHOT) on top of common/svm and common/metric.
 *
 * Full protocol (svmp_full): rows L2-normalised, one-vs-rest per class,
 * difficult (-1) training labels counted as negatives; per class each cost
 * scored by 3-fold cross-validation with scikit-learn's
 * StratifiedKFold(3, shuffle=False) folds and average_precision_score, the
 * first best cost refitted on all training rows, the test scored with the
 * VOC all-point AP over the rows not marked difficult.
 *
 * Low-shot protocol (svmp_lowshot): for each sample s and k, per class k
 * positives and 19k negatives (never difficult) drawn from the training
 * labels; every cost fitted on those 20k rows and scored on the test set;
 * per k the cost with the best mean test mAP over the samples (as
 * MMSelfSup, optimistic), and beside it the cost picked per class by the
 * same 3-fold cross-validation on the sample.
 *
 * Fits run in parallel (OpenMP) over classes, folds and samples; each fit
 * has its own random stream, so results do not depend on the thread count.
 * No file I/O: the caller reads the .npy arrays and prints the results.
 */
#ifndef RL_SVMPROTO_H
#define RL_SVMPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/npy.h"

#define SVMP_MAXCOST 64
#define SVMP_NFOLD 3
#define SVMP_MAXK 16

/* Training and test data, normalised; owned, free with svmp_data_free. */
typedef struct {
	size_t n, m, d, ncls;  /* train rows, test rows, features, classes */
	double *xtr, *xte;     /* n x d and m x d, x / (|x| + 1e-5) */
	int *ytr, *yte;        /* n x ncls and m x ncls: 1, 0, -1 difficult */
	float *K;              /* n x n kernel with the bias, or NULL */
	float *Kt;             /* n x m train-test kernel, or NULL */
} SvmpData;

enum { SVMP_AUTO, SVMP_GRAM, SVMP_DENSE };

typedef struct {
	double cost[SVMP_MAXCOST];
	int ncost;
	int threads;
	uint64_t seed;
	int solver;            /* SVMP_AUTO: the kernel form when it fits */
	double max_gram_bytes; /* SVMP_AUTO's limit for the kernels */
	double eps;            /* 1e-4 */
	int max_iter;          /* 2000 */
	/* Called (from any thread, serialised) as fits finish; may be NULL. */
	void (*progress)(void *arg, size_t done, size_t total);
	void *progress_arg;
} SvmpOpt;

/* Per-class outcome. */
enum {
	SVMP_OK = 0,
	SVMP_NO_TRAIN_POS,     /* no positive (or no negative) to train on */
	SVMP_NO_TEST_POS       /* no positive test row: AP undefined */
};

typedef struct {
	size_t ncls;
	int ncost;
	double *ap;            /* [ncls] test AP in [0, 1], NAN when skipped */
	double *cost;          /* [ncls] chosen cost, NAN when skipped */
	int *best;             /* [ncls] its index in the list, -1 skipped */
	double *cv;            /* [ncls * ncost] mean CV AP per cost */
	int *status;           /* [ncls] SVMP_OK ... */
	double map;            /* mean AP over the classes with one */
	size_t nfit, nmaxiter; /* fits run, fits stopped by max_iter */
} SvmpResult;

typedef struct {
	int nk, nsample;
	int k[SVMP_MAXK];
	/*
	 * [nsample][nk][ncost][ncls] test AP; NAN for a class without test
	 * positives (left out of every mean).
	 */
	double *ap;
	double *map;           /* [nk][nsample][ncost] mAP over the classes */
	int *cvcost;           /* [nsample][nk][ncls] CV-chosen cost index */
	int *npos_short;       /* [nk][ncls] positives found when < k, else -1 */
	int *status;           /* [ncls] SVMP_OK, or why the class is left out */
	/* Aggregates over the samples, per k: */
	int *test_cost;        /* [nk] cost index chosen by mean test mAP */
	double *test_stat;     /* [nk][4] mean, min, max, std at that cost */
	double *cv_stat;       /* [nk][4] the same with the CV-chosen costs */
	size_t nfit, nmaxiter;
} SvmpLowshot;

/*
 * The default options: MMSelfSup's 19 costs ([1, 10, 100] then 2^-4 ..
 * 2^-19, in that order), 2 threads, seed 0, eps 1e-4, max_iter 2000,
 * automatic solver choice with a 4 GiB kernel limit.
 */
void svmp_opt_init(SvmpOpt *o);

/*
 * Parse a comma-separated list of base costs ("1,10,100") and append
 * 0.5^4 .. 0.5^19, as MMSelfSup's parse_cost_list does. Returns 0, or -1
 * with a message (not a positive number, too many).
 */
int svmp_parse_costs(SvmpOpt *o, const char *list, char *err, size_t errlen);

/*
 * Fill d from the four arrays: features (2-D, any numeric dtype; NaN or
 * infinity rejected) are normalised row-wise in double; labels are an
 * n x C array of 1/0/-1, or a vector of n class numbers 0..C-1 made
 * one-vs-rest (1/0, nothing difficult). Checks that the row counts of
 * features and labels agree, the two feature sets have the same width and
 * the two label sets the same classes. Returns 0, or -1 with a message
 * naming the array by the given names. d is zeroed first.
 */
int svmp_data_load(SvmpData *d, const Npy *xtr, const Npy *ytr,
    const Npy *xte, const Npy *yte, const char *const names[4],
    char *err, size_t errlen);
void svmp_data_free(SvmpData *d);

/*
 * sklearn's StratifiedKFold(nsplit, shuffle=False).split(y) as a fold
 * number per row: classes are taken in order of first appearance, the
 * sorted class codes are dealt round-robin to the folds to get each
 * fold's share of each class, and within a class the rows, in data
 * order, fill fold 0's share first, then fold 1's, and so on.
 */
void svmp_folds(int *fold, const int *y, size_t n, int nsplit);

/*
 * The full protocol. Computes the kernel in d when the kernel form is
 * used. r is allocated here; free with svmp_result_free. Returns 0 (even
 * when some classes were skipped: see r->status), or -1 with a message.
 */
int svmp_full(SvmpResult *r, SvmpData *d, const SvmpOpt *o, char *err,
    size_t errlen);
void svmp_result_free(SvmpResult *r);

/*
 * One low-shot sample: lab (n x ncls) gets 1 for k positives, 0 for 19k
 * negatives (rows labelled 1 and 0 in y; never -1) and -1 elsewhere,
 * drawn per class with rng(seed, RNG_STREAM_LOWSHOT, (s, k, class)).
 * A class with fewer than k positives (or 19k negatives) gets all it has;
 * npos[c] is set to the positives used.
 */
void svmp_lowshot_sample(int *lab, size_t *npos, const int *y, size_t n,
    size_t ncls, int s, int k, uint64_t seed);

/*
 * Check a low-shot sample read from a file (MMSelfSup's
 * train_targets_sample{s}_k{k}.npy: n x ncls of 1, 0 and -1, -1 meaning
 * "not in the sample") and copy it into lab (n x ncls). Returns 0, or -1
 * with a message naming the array `name`.
 */
int svmp_sample_load(int *lab, const Npy *a, const SvmpData *d,
    const char *name, char *err, size_t errlen);

/*
 * The low-shot protocol over L->nsample samples and the L->nk values
 * L->k[]. samples, when not NULL, supplies the sample label matrices
 * ([nsample][nk], each n x ncls, as svmp_lowshot_sample makes them, e.g.
 * MMSelfSup's train_targets_sample{s}_k{k}.npy); otherwise they are drawn.
 * Fills the rest of L (free with svmp_lowshot_free). Returns 0, or -1
 * with a message.
 */
int svmp_lowshot(SvmpLowshot *L, SvmpData *d, const SvmpOpt *o,
    const int *const *samples, char *err, size_t errlen);
void svmp_lowshot_free(SvmpLowshot *L);

#endif

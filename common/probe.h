/*
 * probe: a linear classifier trained on frozen, precomputed features, the
 * linear evaluations of MMSelfSup 0.x (relloc-protocols(7), LINEAR):
 *
 *   mhead    BatchNorm (affine=False, momentum 0.1, eps 1e-5) then a
 *            linear layer; SGD lr 0.01, momentum 0.9, Nesterov, weight
 *            decay 1e-4 on weights and biases, lr x0.1 at epochs 30, 60,
 *            90 of 90 (resnet50_mhead_linear-8xb32-steplr-90e_in1k.py).
 *   avgpool  a linear layer alone; SGD lr 30, momentum 0.9, no Nesterov,
 *            no weight decay, lr x0.1 at epochs 60, 80 of 100
 *            (resnet50_linear-8xb32-steplr-100e_in1k.py).
 *
 * Both: weights Normal(0, 0.01), biases 0, softmax cross-entropy averaged
 * over a batch (256), every epoch a fresh random order, the last batch
 * short (drop_last=False). The BatchNorm normalises each of `channels`
 * channels over the batch and the `dim / channels` features of the
 * channel (BatchNorm2d on C-major flattened C x h x w features; channels
 * = dim is BatchNorm1d), with batch statistics while training and running
 * statistics at evaluation, as PyTorch (running variance unbiased).
 *
 * Randomness comes from rng (seed, RNG_STREAM_PROBE): index `head` for
 * the initial weights, index 2^32 + epoch for each epoch's order, so
 * heads trained with one seed see the same batches, as MMSelfSup's heads
 * share one sampler. Results do not depend on the thread count except
 * through the summation order of the products (blas_gemm).
 *
 * The engine's parts where they mean the same: the linear layer and the
 * softmax cross-entropy are layers.h's, the SGD step without Nesterov is
 * optim.h's. Its own are the Nesterov step (mhead's recipe; optim has no
 * Nesterov, which the training recipe does not use) and the BatchNorm:
 * layers.h normalises channels-last (rows, C) activations with a scale
 * and shift and at most 8192 channels, where the features here are
 * channel-major (C x h x w flattened, as PyTorch's), have no affine
 * parameters, and a BatchNorm1d over them has one channel per feature
 * (9216 for Feature1, 2 and 4).
 *
 * No I/O, no augmentation (the features are fixed), no backward into the
 * features: BatchNorm has no parameters here, so the gradient stops at
 * the linear layer.
 */
#ifndef RL_PROBE_H
#define RL_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_MAXSTEPS 16

typedef enum { PROBE_MHEAD, PROBE_AVGPOOL } ProbeRecipe;

typedef struct {
	int epochs;
	int nsteps;
	int steps[PROBE_MAXSTEPS];  /* epochs where lr *= gamma, ascending */
	double lr, gamma, momentum, wd;
	int nesterov;
	int batch;
	int bn;                     /* BatchNorm(affine=False) before the fc */
	int channels;               /* BN channels, dividing dim; 0 = dim */
	double bn_momentum, bn_eps;
	double init_std;
	uint64_t seed;
} ProbeConfig;

/* Fill c with recipe r's values (seed 0). */
void probe_config_recipe(ProbeConfig *c, ProbeRecipe r);

/*
 * Rescale c's schedule to `epochs` epochs for a smaller data set: each
 * milestone m becomes round(m * epochs / c->epochs), at least 1, so the
 * lr drops at the same fractions of training (mhead at 9 epochs: 3, 6, 9).
 */
void probe_config_epochs(ProbeConfig *c, int epochs);

/* The learning rate of epoch e (0-based): lr * gamma^(milestones <= e). */
double probe_lr(const ProbeConfig *c, int epoch);

typedef struct {
	ProbeConfig cfg;
	size_t dim, nclass, channels, spatial;  /* dim = channels * spatial */
	size_t nparam;                          /* nclass * dim + nclass */
	float *param, *w, *b;        /* w (nclass, dim), b (nclass): in param */
	float *grad, *dw, *db;       /* the same layout */
	float *mom;                  /* SGD momentum buffers, same layout */
	float *run_mean, *run_var;   /* (channels) */
	float *mean, *var;           /* last batch's statistics (channels) */
	float *scale;                /* 1/sqrt(var + eps) last used (channels) */
	/* workspace for one batch */
	float *xb;                   /* (batch, dim) */
	float *logit;                /* (batch, nclass), dlogits after backward */
	float *prob;                 /* (batch, nclass) softmax */
	uint32_t *order;             /* (n) of the last epoch */
	size_t norder;
} Probe;

/*
 * Set up p for dim-wide features and nclass classes: weights drawn from
 * (c->seed, RNG_STREAM_PROBE, head), biases 0, momentum 0, running mean
 * 0 and variance 1. Returns 0, or -1 with a message (channels not dividing
 * dim, a non-positive size).
 */
int probe_init(Probe *p, const ProbeConfig *c, size_t dim, size_t nclass,
    uint64_t head, char *err, size_t errlen);
void probe_free(Probe *p);

/*
 * Normalise the n rows of x (n, dim) in place: with the statistics of
 * these rows when train (stored in p->mean, p->var, biased variance; the
 * running statistics are not touched), with the running statistics
 * otherwise. Does nothing when p has no BatchNorm. n * spatial >= 2 when
 * train.
 */
void probe_normalize(Probe *p, float *x, size_t n, int train);

/*
 * Forward and backward of one training batch of n <= batch rows (x is
 * not modified): BatchNorm with batch statistics, logits, mean
 * cross-entropy. Writes p->dw, p->db (no weight decay) and returns the
 * loss. Leaves the running statistics and the parameters alone.
 */
double probe_batch_grad(Probe *p, const float *x, const int *y, size_t n);

/*
 * One epoch over the n rows of x with labels y (class indices < nclass):
 * a shuffled order, batches of cfg.batch, each a probe_batch_grad, a
 * running-statistics update and an SGD step at probe_lr(epoch). A last
 * batch of a single row with a single feature per BN channel is skipped
 * (its variance is undefined; PyTorch raises). When done is not NULL it
 * is called after each batch with ctx and the rows done. Returns the
 * mean of the batch losses weighted by their sizes.
 */
double probe_train_epoch(Probe *p, const float *x, const int *y, size_t n,
    int epoch, void (*done)(void *ctx, size_t rows), void *ctx);

/* Logits (n, nclass) of the n rows of x in evaluation mode. */
void probe_logits(Probe *p, float *logit, const float *x, size_t n);

/*
 * Evaluate on n rows: *top1 and *top5 hits (metric_topk, ties to the
 * lower class) and the mean cross-entropy in *loss. Any of the outputs
 * may be NULL.
 */
void probe_evaluate(Probe *p, const float *x, const int *y, size_t n,
    size_t *top1, size_t *top5, double *loss);

#endif

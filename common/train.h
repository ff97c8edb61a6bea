/*
 * train: one Relative-Location training run's state and step: a ResNet
 * backbone (resnet.h) shared by the patches of a grid, the neck, head and
 * loss (relloc.h), SGD with momentum and per-group weight decay
 * (optim.h) under the step schedule (sched.h), and the run directory's
 * checkpoints (ckpt.h).
 *
 * A step takes the 9 patches of B images (feed.h's layout). By default
 * each patch goes through the backbone once, as one batch of 9B, and each
 * centre's feature serves its image's 8 pairs (relloc's RELLOC_SHARED):
 * batch-norm statistics over the 9B patches, one running-statistics
 * update per step. With TrainConfig.mmselfsup the step is MMSelfSup's
 * (relloc-protocols(7), MODEL): the 8B neighbours in one backbone pass, then the
 * centres repeated 8 times (8B) in a second, each pass with its own
 * batch statistics and running-statistics update; 16B patch passes
 * instead of 9B.
 *
 * Shards (TrainConfig.shard = n < B): the step is cut into S = B/n shards
 * of n images (images n s .. n s + n - 1 for shard s), each one forward
 * and backward with batch statistics over its own patches and pairs (in
 * the backbone and the neck, in both batchings), as one GPU of the
 * recipe's 8 sees its 64 images. Each shard's loss gradient is scaled by
 * 1/S and the gradients add up, so the update is that of the mean loss
 * over all 8B pairs (DDP's averaging). Dropout draws the step's mask at
 * the shard's pairs' places (relloc_shard), so nothing depends on the
 * cut. Running statistics are those of shard 0 (its forwards update
 * them, the others' updates are undone): DDP broadcasts rank 0's buffers
 * before every forward, so the statistics it saves are the first GPU's.
 * Memory is that of one shard (activations) plus the step's parameters,
 * gradients and momentum.
 *
 * Ranks (dist.h): with P ranks, rank r computes shards r S/P .. (r+1) S/P
 * - 1, from its B/P images (x of train_step holds only those); the
 * gradients, the loss and the counts are summed over the ranks, and
 * every rank makes the same update. For fixed B and n the weights agree
 * whatever P, to float rounding: each shard's gradient is computed with
 * the same shapes on every P, only the order in which the S shard
 * gradients are added differs (in turn on one rank, then across ranks).
 *
 * Parameters of backbone, neck and head sit in one block, in that order;
 * the optimiser's groups are the backbone (wd) and neck + head (neck_wd).
 *
 * Everything random is keyed by (seed, what, index): weights by the seed,
 * dropout by the step (layers.h), the data order by the epoch (feed.h).
 * The state is therefore the parameters, running statistics, momentum
 * and the step count, all in a checkpoint, and a run resumed from one
 * repeats the uninterrupted run bit for bit (same thread count).
 *
 * Checkpoints (man rl-ckpt.5): safetensors with the backbone under
 * torchvision's names, "neck." and "head." tensors under MMSelfSup's,
 * "optim.momentum" (the momentum block, flat, in the block's internal
 * order: convolution weights (K, K, C, OC)), and metadata "format",
 * "arch", "step", "epoch", "config" (JSON, train_config_json), "rng"
 * (JSON: the seed and how each stream is keyed) and "data" (JSON given
 * by the caller: the input and the position in it). In a run directory
 * they are ckpt-<step>.safetensors, the newest K kept, and
 * last.safetensors, a symbolic link to the newest.
 *
 * Not here: reading records (feed.h), logs (trainlog.h), options.
 */
#ifndef RL_TRAIN_H
#define RL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"
#include "common/relloc.h"
#include "common/resnet.h"
#include "common/sched.h"

#define TRAIN_LAST "last.safetensors"
#define TRAIN_FORMAT "rl-train 1"

typedef struct {
	int depth;              /* 18, 34 or 50 */
	int width;              /* backbone base width (64) */
	int hidden;             /* neck width (4096) */
	int batch;              /* images per step */
	int shard;              /* images per shard (batch: one shard) */
	int patch;              /* patch side */
	int mmselfsup;          /* MMSelfSup's two-pass batching */
	uint64_t seed;
	double momentum;        /* 0.9 */
	double wd, neck_wd;     /* 1e-4 backbone, 5e-4 neck and head */
	double dropout;         /* 0.5 */
	Sched sched;            /* lr, warmup, milestones, epochs */
} TrainConfig;

/* c = the recipe for `batch` images per step of patch side `patch`, with
 * the lr scaled linearly (sched_scaled_lr) and iters_per_epoch given. */
void train_config_default(TrainConfig *c, int batch, int patch,
    uint64_t iters_per_epoch);

/* "resnet50" etc. for c->depth. */
const char *train_arch_name(const TrainConfig *c);

/* Parse "resnet18", "resnet34", "resnet50" (or "18", ...); -1 if none. */
int train_arch_parse(const char *s, int *depth);

/* c as a JSON object text (malloc'd; the caller frees it). */
char *train_config_json(const TrainConfig *c);

/* Parse a train_config_json text into c (every field required). 0, or
 * -1 with a message. */
int train_config_parse(TrainConfig *c, const char *json, char *err,
    size_t errlen);

typedef struct Trainer Trainer;

/* Build the networks for c, initialised from c->seed, for this rank of
 * dist.h's. 0, or -1 with a message (a bad arch, sizes the network cannot
 * take, a shard that does not divide the step or the step's shards that
 * do not divide among the ranks, more memory than the machine has
 * available: the message then says what the configuration needs and the
 * largest shard that fits). */
int train_create(Trainer **out, const TrainConfig *c, char *err,
    size_t errlen);
void train_free(Trainer *t);

const TrainConfig *train_config(const Trainer *t);

/* The parameter and gradient blocks (n floats each: backbone, neck,
 * head; the gradients of the last step, summed over its shards and the
 * ranks), and the two networks, for tests and tools that look inside. */
void train_blocks(Trainer *t, float **params, float **grads, size_t *n);
ResNet *train_backbone(Trainer *t);
RelLoc *train_neck(Trainer *t);

/* Steps done (the index of the next step). */
uint64_t train_step_count(const Trainer *t);

/* Bytes of activations (one shard's), of parameters, gradients and
 * momentum, and of the feed's input batches (feed.h's FEED_NSLOT of this
 * rank's images): what the configuration needs, for messages. */
size_t train_bytes(const Trainer *t);

typedef enum {
	TRAIN_OK,
	TRAIN_NONFINITE,        /* the loss was NaN or infinite */
	TRAIN_EXPLODED          /* the gradient norm was over the limit */
} TrainStatus;

typedef struct {
	TrainStatus status;
	double lr;              /* the step's learning rate */
	double loss;            /* mean cross-entropy over the pairs */
	int correct, pairs;     /* pretext predictions right, out of */
	double grad_norm;       /* global L2 norm of the loss gradient */
	double comm;            /* seconds spent summing across ranks */
} TrainStepInfo;

/*
 * One step on x (9 batch/ranks, P, P, 3) (feed.h's layout: this rank's
 * images of the step): forward, backward
 * and, unless the loss is not finite or the gradient norm is not finite
 * or over max_grad_norm (> 0), the SGD update; the step count then goes
 * up by one. Otherwise nothing is updated but the running statistics,
 * and info->status says why.
 */
void train_step(Trainer *t, const float *x, double max_grad_norm,
    TrainStepInfo *info);

/* The one-line message for a step that stopped the run (status not
 * TRAIN_OK): step = steps done before it. */
void train_status_text(const TrainStepInfo *si, uint64_t step,
    double max_grad_norm, char *buf, size_t len);

/* Remove the incomplete checkpoints (ckpt-*.safetensors.tmp*) a killed
 * run left in dir. */
void train_clean(const char *dir);

/*
 * Write a checkpoint of the current state to dir/ckpt-<step>.safetensors
 * (atomically), point dir/last.safetensors at it, and remove all but the
 * newest `keep` (>= 1) ckpt-*.safetensors. data_json: a JSON object text
 * for the "data" metadata. path (may be NULL) receives the file's path.
 * 0, or -1 with a message; on failure the older checkpoints and the link
 * are left as they were.
 */
int train_checkpoint(Trainer *t, const char *dir, int keep,
    const char *data_json, char *path, size_t pathlen, char *err,
    size_t errlen);

/* dir/ckpt-<step>.safetensors, the checkpoint train_checkpoint writes at
 * that step. */
void train_ckpt_path(char *buf, size_t len, const char *dir, uint64_t step);

/*
 * Read the "config" metadata of checkpoint c into cfg. 0, or -1 with a
 * message (not an rl-train checkpoint).
 */
int train_ckpt_config(const Ckpt *c, TrainConfig *cfg, char *err,
    size_t errlen);

/*
 * Load the state (parameters, running statistics, momentum, step) from
 * c, written by a run of the same architecture and sizes. 0, or -1 with
 * a message naming what does not match.
 */
int train_load(Trainer *t, const Ckpt *c, char *err, size_t errlen);

#endif

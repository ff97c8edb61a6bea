/*
 * extract: frozen-network feature extraction (relloc-protocols(7),
 * FEATURES and KNN): a ResNet from a checkpoint or a random initialisation, images
 * decoded and preprocessed on background threads in list order, and the
 * pooled features of each batch (pool.h) with batch norm in eval mode.
 *
 * A model (ExtractModel) comes from a safetensors file with torchvision's
 * names (rl-ckpt.5; other tensors such as neck., head., optim. are
 * ignored) or from resnet.h's initialisation with a seed. The
 * architecture is the one asked for, else the file's `arch` metadata, else
 * what its tensors show (block type, blocks per stage, width), and the
 * tensors must then match it by name, dtype and shape.
 *
 * The loader (ExtractLoader) decodes the images of a list with img.h on
 * its own threads, preprocesses them (prep.h) and hands out whole batches
 * in list order, a few batches ahead of the network. A file that cannot
 * be read or decoded stops the run: feature rows must line up with the
 * list's labels, so nothing is skipped.
 *
 * The outputs (ExtractOutputs) are rl-extract's files: one .npy per
 * feature, filled batch by batch through temp files, then the labels and
 * a JSON sidecar; all of them land together or none does (util.h's
 * rl_atomic_commit), so a failed run leaves the previous set whole.
 *
 * Not here: training.
 */
#ifndef RL_EXTRACT_H
#define RL_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/ckpt.h"
#include "common/list.h"
#include "common/npy.h"
#include "common/pool.h"
#include "common/prep.h"
#include "common/resnet.h"

/* ------------------------------------------------------------------------ */
/* model */

typedef struct {
	ResNet *net;
	ResNetConfig cfg;
	char arch[96];     /* "resnet50", or a description of another shape */
	char prefix[16];   /* tensor-name prefix read: "" or "backbone." */
} ExtractModel;

/*
 * The configuration of "resnet18", "resnet34" or "resnet50" in *cfg.
 * Returns 0, or -1 with a message in err.
 */
int extract_arch_config(ResNetConfig *cfg, const char *arch, char *err,
    size_t errlen);

/*
 * The architecture c's tensors show, under prefix: BasicBlock or
 * Bottleneck (layer1.0.conv3.weight), blocks per stage (layerS.I.conv1
 * present), width (conv1.weight's output channels). Fills *cfg and, in
 * name (namelen bytes), "resnet18/34/50" when it is one of those, else a
 * description. Returns 0, or -1 with a message in err (no conv1.weight:
 * not a ResNet backbone).
 */
int extract_infer_config(ResNetConfig *cfg, char *name, size_t namelen,
    const Ckpt *c, const char *prefix, char *err, size_t errlen);

/* m = a network arch ("resnet50", ...) initialised with seed (resnet.h).
 * Returns 0, or -1 with a message in err. */
int extract_model_random(ExtractModel *m, const char *arch, uint64_t seed,
    char *err, size_t errlen);

/*
 * m = the backbone of c. arch NULL: the `arch` metadata, else inferred.
 * The tensors are found under "" or, failing that, "backbone." (an
 * MMSelfSup state_dict). Returns 0, or -1 with one line in err naming the
 * file: a backbone of another architecture than asked ("holds a resnet18
 * backbone, not resnet50"), a missing tensor, a wrong dtype or shape.
 */
int extract_model_load(ExtractModel *m, const Ckpt *c, const char *arch,
    char *err, size_t errlen);

void extract_model_free(ExtractModel *m);

/* ------------------------------------------------------------------------ */
/* features of a batch */

/* One selected feature at a given input size. */
typedef struct {
	const PoolSpec *spec;
	int C, H, W;       /* the stage pooled */
	int oh, ow;        /* pooled side */
	size_t dim;        /* C * oh * ow */
} ExtractFeat;

/* What to compute for a network, input side and batch. */
typedef struct {
	int nfeat;
	ExtractFeat feat[POOL_NFEAT];
	int size, maxB;
	ResNetCtx *ctx;
	float *work;       /* pooling workspace */
	size_t nwork;
} ExtractPlan;

/*
 * Plan the features in mask (pool.h bits) of m's network for size x size
 * inputs, batches of up to maxB: stage sizes, pooled dims, an evaluation
 * context and the pooling workspace. Returns 0, or -1 with a message in
 * err (an input too small for a feature's kernel).
 */
int extract_plan(ExtractPlan *p, ExtractModel *m, unsigned mask, int size,
    int maxB, char *err, size_t errlen);
void extract_plan_free(ExtractPlan *p);

/*
 * Run the network in eval mode on x (B, size, size, 3), B <= maxB, and
 * write feature i of the plan to out[i] (B, feat[i].dim), flattened
 * channel-major.
 */
void extract_batch(ExtractPlan *p, ExtractModel *m, const float *x, int B,
    float *const *out);

/* ------------------------------------------------------------------------ */
/* loader */

typedef struct ExtractLoader ExtractLoader;

/*
 * Start loading the images of l (borrowed until extract_loader_stop) in
 * batches of B, with nthreads >= 1 decoding threads, preprocessed as ps
 * says. img_start must have been called. Returns 0, or -1 with a message
 * in err.
 */
int extract_loader_start(ExtractLoader **out, const List *l,
    const PrepSpec *ps, int B, int nthreads, char *err, size_t errlen);

/*
 * Wait for the next batch: *x (nb, size, size, 3), borrowed until the next
 * call; *nb 0 after the last. Returns 0, or -1 with "path: reason" (the
 * first failing image in list order that was reached) in err, and the
 * loader then only fails.
 */
int extract_loader_next(ExtractLoader *ld, const float **x, int *nb,
    char *err, size_t errlen);

/* Seconds extract_loader_next spent waiting for decoding so far. */
double extract_loader_wait(const ExtractLoader *ld);

/* Stop the threads and free everything. */
void extract_loader_stop(ExtractLoader *ld);

/*
 * The first item of l whose file is not readable (access R_OK), as its
 * index, or -1 when all are; *nbad gets how many are not. A cheap check
 * before hours of work.
 */
long extract_check_files(const List *l, size_t *nbad, int *first_errno);

/* ------------------------------------------------------------------------ */
/* labels, the sidecar, the output files */

/* The list's labels as an array. */
typedef struct {
	int nl;            /* labels a line: 0 none, 1 a vector, > 1 a matrix */
	void *data;        /* int64 (N) or int32 (N, nl); owned */
	int64_t shape[2];
} ExtractLabels;

/*
 * The labels of l's lines (name: the list's name for messages). Every
 * line must carry the same number. Returns 0, or -1 with "name:line: ..."
 * in err (a differing count, a label beyond int32 in a matrix).
 */
int extract_labels(ExtractLabels *lb, const List *l, const char *name,
    char *err, size_t errlen);

/* Where the model came from, for the sidecar. */
typedef struct {
	const char *path;      /* NULL for a random initialisation */
	uint64_t seed;
	const char *step;      /* the checkpoint's step metadata, or NULL */
	long long size, mtime;
	unsigned long crc;
} ExtractSource;

/*
 * The sidecar: the tool and version, the model (src, m), the
 * preprocessing (ps), each feature of plan with its file (files[i]) and
 * pooling, the list (its name, or "-", and n images) and the labels'
 * file, dtype and shape (labels_file NULL: none). A new JSON object.
 */
json_t *extract_sidecar(const ExtractSource *src, const ExtractModel *m,
    const PrepSpec *ps, const ExtractPlan *plan, char *const *files,
    const char *labels_file, const ExtractLabels *lb, const char *list,
    size_t n);

#define EXTRACT_MAXOUT (POOL_NFEAT + 2)

/* rl-extract's files in dir: prefix_<feature>.npy, prefix_labels.npy and
 * prefix.json. */
typedef struct {
	int n;                              /* features */
	NpyWriter w[POOL_NFEAT];
	char *path[POOL_NFEAT], *file[POOL_NFEAT]; /* file: path's name */
	float *out[POOL_NFEAT];             /* a batch of each feature */
	char *labels, *json;                /* paths; labels NULL: none */
	char *tmp[EXTRACT_MAXOUT];          /* every temp file's name */
} ExtractOutputs;

/*
 * Open a writer per feature of plan (with batch buffers of plan->maxB
 * rows), and name the labels file when labels is set. The temp names are
 * in op->tmp before any is created. Returns 0, or -1 with a message and
 * nothing left behind.
 */
int extract_outputs_open(ExtractOutputs *op, const ExtractPlan *plan,
    const char *dir, const char *prefix, int labels, char *err,
    size_t errlen);
/* Append the nb rows of each op->out[i]. 0, or -1 with "path: reason". */
int extract_outputs_append(ExtractOutputs *op, int nb, char *err,
    size_t errlen);
/*
 * Everything computed: finish the features, write the labels (lb) and the
 * sidecar text to temp files, then put all in place together. Returns 0,
 * or -1 with "path: reason", the temp files removed and every file of a
 * previous run as it was.
 */
int extract_outputs_commit(ExtractOutputs *op, const ExtractLabels *lb,
    const char *text, char *err, size_t errlen);
/* Remove the temp files (an error path). */
void extract_outputs_abort(ExtractOutputs *op);
/* The same from a signal handler: only unlink(2). */
void extract_outputs_unlink_tmp(const ExtractOutputs *op);
void extract_outputs_free(ExtractOutputs *op);

#endif

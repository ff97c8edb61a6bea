/*
 * relloc: the Relative-Location pretext task on top of a backbone's
 * per-patch features: the pairing of each neighbour with its centre, the
 * neck and the head of MMSelfSup 0.x (relloc-protocols(7), MODEL), and the loss.
 *
 *   pair k = [feat(neighbour k), feat(centre k)]          (P, 2D)
 *   neck:  fc 2D -> H (init N(0, 0.01), bias 0), BatchNorm1d(H, momentum
 *          0.003, eps 1e-5), ReLU, Dropout(0.5)            (P, H)
 *   head:  fc H -> 8 (init N(0, 0.005), bias 0)            (P, 8)
 *   loss:  cross-entropy, mean over the P pairs.
 *
 * Features come as one matrix (R, D) of backbone outputs (global average
 * pooled), and a RelLocPairs says which row is each pair's neighbour and
 * which its centre. When one centre row serves several pairs (the centre
 * computed once per image), the neck's first product is split: with
 * W = [Wn | Wc], fc(pair) = Wn feat(neighbour) + Wc feat(centre) + b, and
 * Wc feat(centre) is computed once per distinct centre row and its
 * gradients summed over the pairs that share it. The result is the same
 * function as the concatenation, at 9/16 of the product's work.
 *
 * Labels: the neighbours p = 0,1,2,3,5,6,7,8 of the row-major 3x3 grid
 * get labels 0..7 in that order (relloc-protocols(7), SAMPLING, step 7).
 *
 * Parameters, their gradients and the BN running statistics each sit in
 * one contiguous block (params, grads), in the order of relloc_tensors.
 *
 * Not here: the backbone, the optimiser (optim.h), input normalisation.
 */
#ifndef RL_RELLOC_H
#define RL_RELLOC_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"
#include "common/rng.h"

#define RELLOC_NCLASS 8
#define RELLOC_HIDDEN 4096    /* the recipe's neck width */
#define RELLOC_NTENSOR 9      /* tensors in a checkpoint (relloc_tensors) */

/* rng.h stream for the neck and head initialisation (index 0: neck fc,
 * 1: head fc). */
#define RELLOC_RNG_STREAM_INIT RNG_STREAM_NECK_INIT

/* The grid positions of the neighbours, in label order. */
extern const int relloc_neighbours[RELLOC_NCLASS];

typedef struct {
	int D;              /* backbone feature size per patch */
	int hidden;         /* neck width H (RELLOC_HIDDEN) */
	int maxpairs;       /* largest number of pairs in a step */
	int maxcentres;     /* largest number of distinct centre rows */
	float bn_momentum;  /* 0.003 */
	float bn_eps;       /* 1e-5 */
	float dropout;      /* 0.5 */
	float fc_std;       /* neck fc init std, 0.01 */
	float cls_std;      /* head fc init std, 0.005 */
} RelLocConfig;

/* c = the recipe's neck and head for D-dimensional features and up to
 * maxpairs pairs, maxcentres = maxpairs. */
void relloc_config_default(RelLocConfig *c, int D, int maxpairs);

/*
 * Which feature rows form each pair. RELLOC_SHARED: the rows are nimg
 * images of 9 patches each, image-major in grid order (row 9i + p); pair
 * 8i + k is (row 9i + relloc_neighbours[k], row 9i + 4) with label k, and
 * the nimg centre rows are shared. RELLOC_SPLIT (MMSelfSup's batching):
 * rows 0 .. 8nimg-1 are the neighbours (pair order: image-major, then
 * label), rows 8nimg .. 16nimg-1 the centre repeated for each pair; pair j
 * is (row j, row 8nimg + j), nothing shared.
 */
typedef enum { RELLOC_SHARED, RELLOC_SPLIT } RelLocMode;

typedef struct {
	RelLocMode mode;
	int nimg;
	int nrows;          /* feature rows used: 9 nimg or 16 nimg */
	int npairs;         /* 8 nimg */
	int ncentres;       /* distinct centre rows: nimg or 8 nimg */
	int *nb_row;        /* [npairs] neighbour's feature row */
	int *cen;           /* [npairs] index of its centre in cen_row */
	int *cen_row;       /* [ncentres] centre's feature row */
	int *label;         /* [npairs] 0..7 */
} RelLocPairs;

/* Fill p for nimg images in mode (arrays allocated; relloc_pairs_free). */
void relloc_pairs_make(RelLocPairs *p, RelLocMode mode, int nimg);
void relloc_pairs_free(RelLocPairs *p);

/* One named tensor of the model, for checkpoints and the optimiser. */
typedef struct {
	const char *name;   /* "neck.fc.weight", ... (MMSelfSup's names) */
	float *data;        /* NULL for num_batches_tracked (see below) */
	int ndim;
	int64_t shape[2];
	int param;          /* 1: a trained parameter (in params), 0: a buffer */
} RelLocTensor;

typedef struct {
	RelLocConfig cfg;
	/* parameters, one block: fc_w (H, 2D), fc_b H, bn_w H, bn_b H,
	 * cls_w (8, H), cls_b 8; grads the same layout */
	float *params, *grads;
	size_t nparams;
	int own;                 /* params and grads allocated here */
	float *fc_w, *fc_b, *bn_w, *bn_b, *cls_w, *cls_b;
	float *dfc_w, *dfc_b, *dbn_w, *dbn_b, *dcls_w, *dcls_b;
	float *running_mean, *running_var;   /* H each, one block */
	int64_t num_batches_tracked;
	/* the shard (relloc_shard): first pair's place in the step, and the
	 * factor of the loss gradient */
	uint64_t first_pair;
	float loss_scale;
	/* activations of the last forward, sized for maxpairs */
	const RelLocPairs *pairs;
	int train;
	float *xn, *xc;          /* (P, D), (U, D) gathered features */
	float *yc;               /* (U, H) Wc xc */
	float *hpre;             /* (P, H) fc output */
	float *hbn;              /* (P, H) after BN and ReLU */
	float *bn_mean, *bn_invstd;
	float *mask;             /* (P, H) dropout factors */
	float *hdrop;            /* (P, H) */
	float *logits, *probs;   /* (P, 8) */
	/* backward scratch */
	float *dlogits, *dh, *dyc, *dxn, *dxc, *scratch;
} RelLoc;

/* Parameter floats of a model of config c (the params/grads blocks). */
size_t relloc_nparams(const RelLocConfig *c);

/*
 * Set m up for c and initialise it as the recipe does (normal weights
 * keyed by (seed, RELLOC_RNG_STREAM_INIT), zero biases, BN weight 1 and
 * bias 0, running mean 0 and variance 1, gradients 0). params and grads
 * are blocks of relloc_nparams(c) floats the caller owns (so the neck and
 * head can sit in one block with the backbone, for one optimiser pass),
 * or both NULL for blocks m allocates. Activations are allocated here.
 */
void relloc_init(RelLoc *m, const RelLocConfig *c, float *params,
    float *grads, uint64_t seed);
void relloc_free(RelLoc *m);

/*
 * The next forwards are of a shard of a step: its pairs are pairs
 * first_pair .. of the whole step (dropout draws the step's mask at those
 * places, so the mask does not depend on how the step is cut), and the
 * backward gives scale times the gradient of the shard's mean loss (1/S
 * for S shards: the gradients summed over the shards are those of the
 * mean loss over the step). Default: 0 and 1, the whole step.
 */
void relloc_shard(RelLoc *m, uint64_t first_pair, float scale);

/* Clear the parameter gradients. */
void relloc_zero_grad(RelLoc *m);

/*
 * Forward of the pairs p over features feat (p->nrows, D), p->npairs <=
 * maxpairs and p->ncentres <= maxcentres. train: BN with batch statistics
 * (running statistics updated, num_batches_tracked incremented) and
 * dropout with the mask keyed by (seed, step) (layers.h); otherwise BN
 * with the running statistics and no dropout. Returns the mean
 * cross-entropy over the pairs; *ncorrect (may be NULL) gets the number
 * of pairs whose arg max is their label. p and feat are kept (borrowed)
 * for relloc_backward.
 */
float relloc_forward(RelLoc *m, const float *feat, const RelLocPairs *p,
    int train, uint64_t seed, uint64_t step, int *ncorrect);

/*
 * Backward of the last (training) forward: parameter gradients
 * accumulated, dfeat (p->nrows, D) WRITTEN with the gradient of the loss
 * with respect to feat (a shared centre row gets the sum over its pairs).
 */
void relloc_backward(RelLoc *m, float *dfeat);

/* Argmax predictions of the last forward, pred[npairs]. */
void relloc_predict(const RelLoc *m, int *pred);

/* The model's RELLOC_NTENSOR tensors in checkpoint order: neck.fc.weight,
 * neck.fc.bias, neck.bn.weight, neck.bn.bias, neck.bn.running_mean,
 * neck.bn.running_var, neck.bn.num_batches_tracked (I64 scalar, data
 * NULL: it is m->num_batches_tracked), head.fc_cls.weight,
 * head.fc_cls.bias. */
void relloc_tensors(const RelLoc *m, RelLocTensor t[RELLOC_NTENSOR]);

/* Add every tensor to w (borrowed: keep m unchanged until the write).
 * 0, or -1 with a message. */
int relloc_ckpt_add(const RelLoc *m, CkptWriter *w, char *err,
    size_t errlen);

/* Load every tensor from c (names and shapes must match m's config).
 * 0, or -1 with a message naming the tensor. */
int relloc_ckpt_load(RelLoc *m, const Ckpt *c, char *err, size_t errlen);

#endif

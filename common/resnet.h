/*
 * resnet: torchvision's ResNet-18/34/50 (v1.5: the stride of a bottleneck
 * is on its 3x3 conv; a downsample is a 1x1 conv of that stride plus a batch
 * norm), without the final fc, forward and backward on channels-last
 * batches, with every stage's output available.
 *
 * The network (ResNet) holds the parameters and their gradients, each in
 * one contiguous float block (resnet_params/resnet_grads) with named
 * tensors pointing into it, plus the batch-norm running statistics
 * (buffers, not trained). Parameter order is torchvision's state_dict
 * order: conv1.weight, bn1.weight, bn1.bias, layer1.0.conv1.weight, ...
 *
 * A context (ResNetCtx) holds the activations and workspace for one input
 * size and a maximum batch, allocated once: nothing is allocated by
 * forward or backward. A training context keeps everything the backward
 * needs; an evaluation context (for feature extraction, e.g. 224x224)
 * reuses its buffers and only keeps the five stage outputs. Several
 * contexts may share one network (not concurrently).
 *
 * Stages: 0 = the stem after ReLU, before the max pool (64 x H/2 x W/2 at
 * width 64), 1..4 = layer1..layer4 outputs. All tensors are (B, H, W, C)
 * channels-last; the input is (B, H, W, 3) normalised floats.
 *
 * Checkpoints go through ckpt.h with torchvision's names, dtypes (F32, and
 * I64 num_batches_tracked) and PyTorch's NCHW/OIHW shapes; convolution
 * weights are transposed from/to the internal (K, K, C, OC) layout.
 *
 * What it does not do: the fc layer, groups/width-per-group variants
 * (ResNeXt, wide ResNets), dilation, zero_init_residual, optimisation
 * (optim.h), pairing patches (relloc).
 */
#ifndef RL_RESNET_H
#define RL_RESNET_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"

typedef struct {
	int bottleneck;  /* 0: BasicBlock (18, 34); 1: Bottleneck (50) */
	int blocks[4];   /* blocks per stage: {2,2,2,2}, {3,4,6,3}, ...; may be
	                  * changed after resnet_config (e.g. {1,1,1,1}) */
	int width;       /* channels of the stem and of layer1's 3x3 convs; 64 */
	int in_channels; /* 3 */
	float bn_momentum, bn_eps;  /* 0.1, 1e-5 (PyTorch's defaults) */
} ResNetConfig;

/*
 * Fill cfg for torchvision's resnet<depth> (18, 34 or 50) at base width
 * `width` (64 as torchvision). Returns 0, or -1 with a message in err for
 * another depth or a width < 1.
 */
int resnet_config(ResNetConfig *cfg, int depth, int width, char *err,
    size_t errlen);

/* One named tensor of the network, in state_dict order. */
typedef struct {
	char name[96];       /* torchvision's, e.g. "layer1.0.downsample.1.bias" */
	CkptDtype dtype;     /* CKPT_F32, or CKPT_I64 for num_batches_tracked */
	int ndim;            /* 4 conv weight, 1 bn vectors, 0 counter */
	int64_t shape[4];    /* PyTorch's shape: (OC, C, K, K) for a conv */
	void *data;          /* into the parameter or buffer block */
	float *grad;         /* into the gradient block, NULL for buffers */
	int conv;            /* stored as (K, K, C, OC) internally */
} ResNetTensor;

typedef struct ResNet ResNet;

/* Number of parameter floats (the size of the params/grads blocks). */
size_t resnet_nparams(const ResNetConfig *cfg);

/*
 * Build a network in *out. params and grads are blocks of
 * resnet_nparams(cfg) floats the caller owns (so a caller can place the
 * trunk inside a larger block with its own head), or both NULL for
 * blocks the network allocates. Initialises as MMSelfSup: convolutions
 * Kaiming normal, mode fan_out, gain sqrt(2) (std = sqrt(2/(OC*K*K))),
 * drawn from rng.h keyed by (seed, RNG_STREAM_INIT, tensor index); batch
 * norm weight 1, bias 0, running mean 0, var 1, counters 0; gradients 0.
 * Cannot fail (allocation failure exits through emalloc).
 */
void resnet_create(ResNet **out, const ResNetConfig *cfg, float *params,
    float *grads, uint64_t seed);
void resnet_free(ResNet *net);

const ResNetConfig *resnet_cfg(const ResNet *net);
/* The parameter and gradient blocks (resnet_nparams floats each). */
float *resnet_params(ResNet *net);
float *resnet_grads(ResNet *net);
/* Channels of stage s (0..4): width, then 64/128/256/512 x 4 for
 * Bottleneck (x 1 for BasicBlock), scaled by width/64. */
int resnet_stage_channels(const ResNet *net, int s);

/* The tensors (parameters and buffers) in state_dict order; borrowed. */
size_t resnet_ntensors(const ResNet *net);
const ResNetTensor *resnet_tensor(const ResNet *net, size_t i);

/* Clear the gradient block. */
void resnet_zero_grad(ResNet *net);

/*
 * Load every tensor of the network from the open checkpoint c by name
 * (prefix + torchvision name, prefix "" or e.g. "backbone."), checking dtype
 * and shape. Tensors of c that the network lacks (an fc, a head) are
 * ignored. Returns 0, or -1 with a message in err naming the first
 * missing or mismatched tensor; on failure the network may be partly
 * loaded. A num_batches_tracked counter may have any shape of one element
 * ([] as torchvision writes it, [1] as some converters do).
 */
/*
 * Check, before any network of cfg is made, that c holds every tensor one
 * would load under prefix with the right dtype and shape (as resnet_load
 * does). So a file whose header claims a huge width is refused from its
 * header, not after allocating for it. Returns 0, or -1 with resnet_load's
 * message in err.
 */
int resnet_check(const ResNetConfig *cfg, const Ckpt *c, const char *prefix,
    char *err, size_t errlen);
int resnet_load(ResNet *net, const Ckpt *c, const char *prefix, char *err,
    size_t errlen);

/*
 * Add every tensor to the writer w as prefix + name, converted to PyTorch
 * layouts in a copy the network owns until the next resnet_add_to_writer
 * or resnet_free (write the file before either). Returns 0, or -1 with a
 * message in err.
 */
int resnet_add_to_writer(ResNet *net, CkptWriter *w, const char *prefix,
    char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* contexts, forward, backward */

typedef struct ResNetCtx ResNetCtx;

/*
 * A context for batches of up to maxB inputs of H x W (H, W >= 1; stages
 * shrink by 2 per stride, rounding as PyTorch: (H-1)/2+1). training != 0
 * keeps what resnet_backward needs. Returns 0, or -1 with a message in err
 * if the sizes are unusable. Memory: see resnet_ctx_bytes.
 */
int resnet_ctx_create(ResNetCtx **out, const ResNet *net, int maxB, int H,
    int W, int training, char *err, size_t errlen);
void resnet_ctx_free(ResNetCtx *ctx);
/* Bytes the context allocated (activations and workspace). */
size_t resnet_ctx_bytes(const ResNetCtx *ctx);
/* The bytes resnet_ctx_create would allocate for these sizes (valid
 * ones), without allocating them. */
size_t resnet_ctx_need(const ResNet *net, int maxB, int H, int W,
    int training);
/* Multiply-accumulates of the convolutions of one input's forward at the
 * context's H x W (for FLOP counts: 2 per MAC). */
double resnet_ctx_macs(const ResNetCtx *ctx);

/*
 * Run the network on inp (B, H, W, in_channels), B <= maxB. bn_train != 0:
 * batch norms use the batch statistics and update the running statistics
 * (and num_batches_tracked), as PyTorch's train(); 0: running statistics
 * (eval()). A training context must be given bn_train != 0 for a later
 * resnet_backward. inp is borrowed until resnet_backward returns.
 *
 * Threads: with n = min(omp_get_max_threads() at resnet_ctx_create, B)
 * above 1, the forward and the backward run as a team (layers.h): each
 * thread takes its run of the B inputs through every layer with
 * single-threaded kernels, and the batch norms and weight gradients are
 * reduced over the team in thread order. Results are reproducible for a
 * given thread count and differ between counts by float rounding only.
 * Called inside an OpenMP parallel region, they run on the calling thread.
 */
void resnet_forward(ResNet *net, ResNetCtx *ctx, const float *inp, int B,
    int bn_train);

/*
 * Fold every evaluation-mode batch norm into its convolution, for a
 * network that from now on only runs evaluation forwards (feature
 * extraction): the weights are scaled per output channel by
 * gamma / sqrt(running_var + eps) and the shift beta - running_mean x
 * that scale becomes a bias added, with the residual and the ReLU, as the
 * convolution writes its outputs (conv_forward_post), which spares a pass
 * over every activation. The results equal the unfolded ones up to float
 * rounding. Afterwards the parameters are the folded ones (do not train,
 * change or save the network) and a bn_train forward asserts. The first
 * forward of a context after the fold keeps the Winograd transforms of
 * the weights of its 3x3 convolutions (wino_weights, with the context),
 * and the later ones use them instead of transforming the weights per
 * batch. A second call does nothing.
 */
void resnet_fold_bn(ResNet *net);

/*
 * Stage s's output of the last forward, (B, h, w, c) with *h, *w, *c set
 * when not NULL; valid until the next forward or backward on ctx.
 */
const float *resnet_stage(const ResNetCtx *ctx, int s, int *h, int *w,
    int *c);

/*
 * feat (B, C4) = global average pool of layer4 (the trunk's feature, what
 * torchvision's fc sees).
 */
void resnet_gap(const ResNetCtx *ctx, float *feat);

/*
 * Backward of the last forward (training context, bn_train forward): the
 * loss gradient enters at the global average pool of layer4 (dgap (B, C4),
 * or NULL) and/or at any stage output (dstage[s] (B, h, w, c) of stage s,
 * or NULL; dstage itself may be NULL); the contributions add. Parameter
 * gradients are ACCUMULATED into the gradient block; dinput (B, H, W,
 * in_channels), if not NULL, receives (is overwritten with) the gradient
 * of the input. Consumes the context's activations: the next backward
 * needs a new forward.
 */
void resnet_backward(ResNet *net, ResNetCtx *ctx, const float *dgap,
    const float *const *dstage, float *dinput);

#endif

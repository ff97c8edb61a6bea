/*
 * layers: the kernels of a convolutional network, as X_forward/X_backward
 * pairs over flat float arrays (llm.c style), single precision.
 *
 * Layout. Activations are channels-last: an image batch is (B, H, W, C),
 * row-major, so a tensor is a matrix of B*H*W rows of C channels and a
 * convolution is ONE matrix product over all rows of the batch:
 *     out (B*OH*OW, OC) = im2col(inp) (B*OH*OW, K*K*C) x weight (K*K*C, OC).
 * Convolution weights are therefore (K, K, C, OC) ("HWIO"), not PyTorch's
 * (OC, C, K, K); resnet.c converts on save and load. Linear weights keep
 * PyTorch's (OC, C). A 1-D batch norm is the 2-D one with H = W = 1.
 *
 * Gradients. Every backward ACCUMULATES into the parameter gradients
 * (dweight += ..., a zero_grad clears them). The input gradient dinp is
 * accumulated (+=) by conv_backward and linear_backward, where the matrix
 * product does it for free and a residual connection needs it; every other
 * backward WRITES dinp (=), which spares a clearing pass over activations
 * that have one consumer. Each prototype repeats which. A NULL dinp means
 * "not needed" where stated (the first layer).
 *
 * Threads: loops run on the OpenMP threads, products through blas_gemm;
 * called by one thread of a team (below), whose OpenMP regions resnet.c
 * sets to one thread, they run on that thread alone. Results do not depend on the
 * thread count except through the order of float additions inside
 * blas_gemm and in the per-thread parts of a convolution's weight
 * gradient. Per-channel sums (batch norm) are
 * taken in float over blocks of 64 rows, then in double. Convolutions
 * with small weights (a ResNet's stem, layer1, layer2) build their
 * im2col columns tile by tile on each thread instead of in the
 * workspace at once, and a stride-1 one computes its input gradient as a
 * convolution of dout with the rotated weights; conv_work_floats covers
 * both. A 3x3 stride-1 convolution with padding 1 (most of a ResNet's
 * work) goes to wino.c instead: Winograd's F(4x4, 3x3) or F(2x2, 3x3),
 * 4 or 2.25 times fewer multiplications, the same sums up to float
 * rounding.
 *
 * The naive reference kernels (conv_forward_naive, conv_backward_naive)
 * exist for tests only.
 *
 * What it does not do: allocate (callers give every buffer, including the
 * workspace), groups or dilation in convolutions, biases on convolutions
 * other than conv_forward_post's (no gradient for them),
 * NCHW.
 */
#ifndef RL_LAYERS_H
#define RL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* convolution */

typedef struct {
	int B, H, W, C;   /* input (B, H, W, C) */
	int OC, K, S, P;  /* output channels, kernel side, stride, zero padding */
	int OH, OW;       /* output side: (H + 2P - K) / S + 1, set by conv_shape */
} ConvShape;

/* Fill a ConvShape (computes OH, OW). Asserts the output is not empty. */
ConvShape conv_shape(int B, int H, int W, int C, int OC, int K, int S, int P);

/*
 * Floats of workspace conv_forward/conv_backward need to process `chunk`
 * images at a time (chunk >= 1; more images per chunk make larger, faster
 * matrix products). A 1x1 stride-1 unpadded convolution needs none for its
 * forward.
 */
size_t conv_work_floats(const ConvShape *s, int chunk);

/*
 * out (B, OH, OW, OC) = conv(inp (B, H, W, C), weight (K, K, C, OC)).
 * work: nwork floats, at least conv_work_floats(s, 1); the batch is done in
 * chunks of as many images as fit.
 */
void conv_forward(float *out, const float *inp, const float *weight,
    const ConvShape *s, float *work, size_t nwork);

/*
 * What conv_forward_post adds to each output row (OC channels) while the
 * row is in cache: bias[OC] when not NULL, then res (the output's shape,
 * same row) when not NULL, then max(0, .) when relu. A batch norm in
 * evaluation mode folded into the weights (resnet_fold_bn) leaves this.
 */
typedef struct {
	const float *bias, *res;
	int relu;
} ConvPost;

/*
 * conv_forward, then post (which may be NULL: nothing added). U: NULL, or
 * the weights as wino_weights transformed them (wino.h), which a
 * convolution that goes to wino.c then uses instead of transforming them
 * again; the sums are the same.
 */
void conv_forward_post(float *out, const float *inp, const float *weight,
    const float *U, const ConvPost *post, const ConvShape *s, float *work,
    size_t nwork);

/* out[rows x OC] gets post: bias, res (rows x OC, the same rows), relu. */
void conv_post_rows(float *out, const ConvPost *post, long rows, int OC);
/* One row y[n] gets post, with e the residual's row (ignoring post->res;
 * NULL: none). */
void conv_post_vec(float *y, const ConvPost *post, const float *e, int n);

/*
 * dweight (K, K, C, OC) += gradient; dinp (B, H, W, C) += gradient, or
 * skipped when dinp is NULL. dout (B, OH, OW, OC); inp and weight as given
 * to conv_forward. Workspace as for conv_forward, plus
 * blas_gemm_scratch(K*K*C, OC) floats for the weight gradient's split.
 */
void conv_backward(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s, float *work,
    size_t nwork);

/* Direct loops, for tests: out written, dinp and dweight accumulated. */
void conv_forward_naive(float *out, const float *inp, const float *weight,
    const ConvShape *s);
void conv_backward_naive(float *dinp, float *dweight, const float *dout,
    const float *inp, const float *weight, const ConvShape *s);

/* ------------------------------------------------------------------------ */
/* batch norm (BatchNorm2d over M = B*H*W rows, BatchNorm1d over M = B) */

/*
 * Training mode: inp (M, C) is normalised with the batch mean and biased
 * variance, then scaled and shifted:
 *     out = gamma * (inp - mean) * invstd + beta  [+ res]  [then max(0, .)]
 * with res (M, C) added when non-NULL and a ReLU applied when relu != 0
 * (the fused forms a ResNet uses). mean[C] and invstd[C] = 1/sqrt(var+eps)
 * are written for the backward. The running statistics are updated as
 * PyTorch does (torch.nn.BatchNorm2d, momentum m):
 *     running_mean = (1-m) running_mean + m mean
 *     running_var  = (1-m) running_var  + m var * M/(M-1)   (unbiased)
 * (running_mean/var may be NULL to skip the update). out may equal inp.
 * M >= 2, C <= 8192 (the batch norms here keep per-channel tables on the
 * stack).
 */
void batchnorm_forward(float *out, float *mean, float *invstd,
    float *running_mean, float *running_var, const float *inp,
    const float *res, const float *gamma, const float *beta, int M, int C,
    float momentum, float eps, int relu);

/*
 * Evaluation mode: the same with the running statistics in place of the
 * batch's; nothing is updated. out may equal inp.
 */
void batchnorm_forward_eval(float *out, const float *inp, const float *res,
    const float *gamma, const float *beta, const float *running_mean,
    const float *running_var, int M, int C, float eps, int relu);

/*
 * Backward of the training-mode batch norm: dinp (M, C) WRITTEN; dgamma[C],
 * dbeta[C] accumulated. dout (M, C) is the gradient at the batch norm's
 * output, or, when relu != 0, at the output of a fused ReLU (forward with
 * relu and no res); the mask is then recomputed from inp, bit for bit as
 * the forward computed it (hence beta). A residual added before a ReLU is
 * the caller's: mask with relu_backward first, then pass relu = 0. inp,
 * mean, invstd, gamma, beta as in the forward. dinp may equal dout, or inp
 * (the gradient then replaces the input in place).
 */
void batchnorm_backward(float *dinp, float *dgamma, float *dbeta,
    const float *dout, const float *inp, const float *mean,
    const float *invstd, const float *gamma, const float *beta, int M,
    int C, int relu);

/*
 * Teams: the threads of one `omp parallel` region sharing a batch. Each
 * thread takes its own rows (images) of every tensor through the layers
 * with single-threaded kernels, and the team meets only where a layer
 * needs the whole batch: the batch norms below (and the weight gradients,
 * in resnet.c). Every thread of the team makes the same calls in the same
 * order; each call holds an `omp barrier`. A thread's rows are r0..r1-1
 * (at least one) of M; the tensors are the whole batch's, of which a
 * thread reads and writes its own rows only. The sums are taken as
 * batchnorm_forward's, per thread, then added in thread order: the
 * results depend on the team's size, not on the timing. Thread 0 alone
 * writes mean, invstd, the running statistics, dgamma and dbeta; the
 * others see them after a barrier (a backward that follows a forward in
 * the same region needs one between).
 */
typedef struct {
	int t, n;          /* this thread, the team's size */
	int cmax;          /* channels, at most, of the team's batch norms */
	double *sums;      /* shared: TEAM_SUMS(n, cmax) doubles */
	unsigned round;    /* this thread's reductions so far */
} Team;

#define TEAM_SUMS(n, cmax) ((size_t)2 * (n) * (3 * (size_t)(cmax) + 8))

void batchnorm_forward_team(Team *tm, float *out, float *mean,
    float *invstd, float *running_mean, float *running_var, const float *inp,
    const float *res, const float *gamma, const float *beta, long r0,
    long r1, long M, int C, float momentum, float eps, int relu);
void batchnorm_backward_team(Team *tm, float *dinp, float *dgamma,
    float *dbeta, const float *dout, const float *inp, const float *mean,
    const float *invstd, const float *gamma, const float *beta, long r0,
    long r1, long M, int C, int relu);

/* ------------------------------------------------------------------------ */
/* element-wise and pooling */

/* out[N] = max(0, inp). out may equal inp. */
void relu_forward(float *out, const float *inp, size_t N);

/* dinp[N] WRITTEN = dout * (out > 0), out being relu_forward's output;
 * dinp may equal dout. */
void relu_backward(float *dinp, const float *dout, const float *out,
    size_t N);

/*
 * Max pooling, kernel 3, stride 2, padding 1 (ResNet's stem; padded cells
 * never win): inp (B, H, W, C) -> out (B, OH, OW, C), OH = (H - 1) / 2 + 1.
 * Ties go to the first cell in row-major window order, as PyTorch's CPU
 * kernel. The forward records each output's winner in arg (B, OH, OW, C
 * bytes: the cell's index 0..8 in its 3x3 window; arg may be NULL when no
 * backward follows). The backward routes dout through arg and WRITES dinp
 * (B, H, W, C).
 */
void maxpool_forward(float *out, uint8_t *arg, const float *inp, int B,
    int H, int W, int C);
void maxpool_backward(float *dinp, const float *dout, const uint8_t *arg,
    int B, int H, int W, int C);

/* Global average pooling: inp (B, H, W, C) -> out (B, C); dinp WRITTEN. */
void gap_forward(float *out, const float *inp, int B, int H, int W, int C);
void gap_backward(float *dinp, const float *dout, int B, int H, int W,
    int C);

/*
 * Average pooling, torch.nn.AvgPool2d(K, S, P) with ceil_mode=False and
 * count_include_pad=True: every window divides by K*K, padded zeros
 * included. inp (B, H, W, C) -> out (B, OH, OW, C), OH = (H + 2P - K)/S + 1.
 * dinp WRITTEN. P <= K/2 as PyTorch requires.
 */
void avgpool_forward(float *out, const float *inp, int B, int H, int W,
    int C, int K, int S, int P);
void avgpool_backward(float *dinp, const float *dout, int B, int H, int W,
    int C, int K, int S, int P);

/* ------------------------------------------------------------------------ */
/* linear, dropout, loss */

/*
 * out (B, OC) = inp (B, C) x weight^T + bias, weight (OC, C) as PyTorch's
 * nn.Linear, bias[OC] or NULL.
 */
void linear_forward(float *out, const float *inp, const float *weight,
    const float *bias, int B, int C, int OC);

/*
 * dweight (OC, C) and dbias[OC] (unless NULL) accumulated; dinp (B, C)
 * ACCUMULATED (+=) unless NULL. scratch: blas_gemm_scratch(OC, C) floats
 * or NULL.
 */
void linear_backward(float *dinp, float *dweight, float *dbias,
    const float *dout, const float *inp, const float *weight, int B, int C,
    int OC, float *scratch);

/*
 * Inverted dropout (torch.nn.Dropout, training mode): each of the N
 * elements is kept with probability 1 - p and then scaled by 1/(1-p), or
 * zeroed. The choices come from rng.h keyed by (seed, RNG_STREAM_DROPOUT,
 * step << 24 | chunk), one generator per chunk of 4096 elements, so a
 * step's mask is reproducible whatever the thread count (N < 2^36). mask[N]
 * receives the factor
 * (0 or 1/(1-p)) for the backward. out may equal inp. 0 <= p < 1.
 */
void dropout_forward(float *out, float *mask, const float *inp, size_t N,
    float p, uint64_t seed, uint64_t step);
/* The same for elements first .. first+N-1 of a step's mask (a shard of
 * the step): out, mask and inp hold those N elements, and each gets the
 * draw it gets in dropout_forward over the whole step. */
void dropout_forward_at(float *out, float *mask, const float *inp, size_t N,
    size_t first, float p, uint64_t seed, uint64_t step);
/* dinp[N] WRITTEN = dout * mask; dinp may equal dout. */
void dropout_backward(float *dinp, const float *dout, const float *mask,
    size_t N);

/*
 * Softmax cross-entropy, mean over the batch (torch.nn.CrossEntropyLoss):
 * logits (B, V), labels[B] in [0, V). probs (B, V) receives the softmax
 * (kept for the backward). Returns the mean loss; if ncorrect is not NULL
 * it receives how many rows have their label as the arg max (first index
 * on ties).
 */
float crossentropy_forward(float *probs, int *ncorrect, const float *logits,
    const int *labels, int B, int V);
/*
 * dlogits (B, V) WRITTEN = dloss * (probs - onehot(labels)) / B, the
 * gradient of dloss * loss.
 */
void crossentropy_backward(float *dlogits, const float *probs,
    const int *labels, int B, int V, float dloss);

#endif

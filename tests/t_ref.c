/*
 * t_ref: the whole network against PyTorch (tests/ref, made by
 * tests/ref/gen_ref.py; see tests/ref/README). For a small BasicBlock and a
 * small Bottleneck ResNet: load the weights by torchvision's names, run a
 * train-mode forward and backward (GAP, a linear head, cross-entropy) and an
 * eval-mode forward, and compare every stage output, the GAP, logits, loss,
 * every parameter gradient, the input gradient and the updated running
 * statistics; for the Bottleneck net also Feature1-5 of a 224x224 image
 * (relloc-protocols(7), FEATURES). Each tensor passes when
 *     max |ours - ref| <= tol * max |ref|,
 * tol = 1e-4 for forward values, the loss and running statistics, 1e-3 for
 * gradients (the reference is float64; PyTorch's own float32 lands within
 * 2e-5, tests/ref/README); a parameter gradient's max |ref| is floored at
 * 1e-2 of the network's largest; num_batches_tracked must be exact. The maxdiff
 * of every tensor is printed. Also: the tensor names, dtypes and shapes of
 * our ResNet-18/34/50 equal torchvision's state_dict
 * (tests/ref/resnet*_keys.txt, less fc.weight and fc.bias), and a
 * save/load round trip keeps every tensor.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/ckpt.h"
#include "common/layers.h"
#include "common/resnet.h"
#include "common/util.h"
#include "tests/check.h"

#define TOL_FWD  1e-4
#define TOL_GRAD 1e-3

static char err[CKPT_ERRLEN];

/*
 * max |a - b| / max(max |b|, floor), printed; CHECKed against tol. The
 * floor (0 but for parameter gradients) keeps a gradient that cancels to
 * rounding noise in the reference (the stem's batch-norm bias of the
 * Bottleneck net: 1e-6 against 1 elsewhere) from demanding digits float32
 * does not have.
 */
static double floor_scale;
static int nthreads;  /* OpenMP's default, restored after each file */

static void
compare(const char *what, const float *ours, const float *ref, size_t n,
    double tol)
{
	double d = 0, m = 0, rel;

	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)ours[i] - ref[i]));
		m = fmax(m, fabs((double)ref[i]));
	}
	m = fmax(m, floor_scale);
	rel = m > 0 ? d / m : d;
	printf("  %-36s n=%-7zu maxdiff %.3g\n", what, n, rel);
	CHECK(rel <= tol, "%s: maxdiff %g > %g", what, rel, tol);
}

/* A tensor of the reference file, with its element count. */
static const float *
ref_f32(const Ckpt *c, const char *name, size_t *n)
{
	const CkptTensor *t = ckpt_find(c, name);

	CHECK(t != NULL && t->dtype == CKPT_F32, "%s: missing or not F32",
	    name);
	if (t == NULL || t->dtype != CKPT_F32)
		return NULL;
	if (n != NULL)
		*n = t->count;
	return t->data;
}

/* (N, C, H, W) <-> (N, H, W, C) */
static void
nchw_to_nhwc(float *dst, const float *src, int N, int C, int H, int W)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++)
			for (int i = 0; i < H * W; i++)
				dst[((size_t)n * H * W + i) * C + c] =
				    src[((size_t)n * C + c) * H * W + i];
}

static void
nhwc_to_nchw(float *dst, const float *src, int N, int C, int H, int W)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++)
			for (int i = 0; i < H * W; i++)
				dst[((size_t)n * C + c) * H * W + i] =
				    src[((size_t)n * H * W + i) * C + c];
}

/* Compare stage s of ctx (NHWC) with the NCHW reference tensor name. */
static void
compare_stage(const Ckpt *c, const ResNetCtx *ctx, int s, int B,
    const char *name)
{
	int h, w, ch;
	const float *ours = resnet_stage(ctx, s, &h, &w, &ch);
	size_t n = (size_t)B * h * w * ch, nref;
	const float *ref = ref_f32(c, name, &nref);
	float *tmp;

	if (ref == NULL)
		return;
	CHECK(nref == n, "%s: %zu values, %zu expected", name, nref, n);
	if (nref != n)
		return;
	tmp = emalloc(n * sizeof *tmp);
	nhwc_to_nchw(tmp, ours, B, ch, h, w);
	compare(name, tmp, ref, n, TOL_FWD);
	free(tmp);
}

static const char *stage_names[5] = { "stem", "layer1", "layer2", "layer3",
    "layer4" };

/* Every stage output against <prefix>.<stage>. */
static void
compare_stages(const Ckpt *c, const ResNetCtx *ctx, int B, const char *prefix)
{
	char name[40];

	for (int s = 0; s < 5; s++) {
		snprintf(name, sizeof name, "%s.%s", prefix, stage_names[s]);
		compare_stage(c, ctx, s, B, name);
	}
}

/* GAP and logits of the last forward against <prefix>.gap/.logits. */
static void
compare_head(const Ckpt *c, const ResNetCtx *ctx, const char *prefix,
    float *feat, float *logits, const float *hw, const float *hb, int N,
    int C4, int K)
{
	char name[40];

	resnet_gap(ctx, feat);
	snprintf(name, sizeof name, "%s.gap", prefix);
	compare(name, feat, ref_f32(c, name, NULL), (size_t)N * C4, TOL_FWD);
	linear_forward(logits, feat, hw, hb, N, C4, K);
	snprintf(name, sizeof name, "%s.logits", prefix);
	compare(name, logits, ref_f32(c, name, NULL), (size_t)N * K, TOL_FWD);
}

/*
 * The gradient of every parameter, in PyTorch's layout, with a floor of
 * 1e-2 of the largest reference gradient of the network.
 */
static void
compare_grads(const Ckpt *c, ResNet *net)
{
	char name[160];
	double gmax = 0;

	for (size_t i = 0; i < ckpt_ntensors(c); i++) {
		const CkptTensor *t = ckpt_tensor(c, i);

		if (strncmp(t->name, "grad.", 5) != 0 || t->dtype != CKPT_F32)
			continue;
		for (size_t j = 0; j < t->count; j++)
			gmax = fmax(gmax, fabs(((const float *)t->data)[j]));
	}
	floor_scale = 1e-2 * gmax;

	for (size_t i = 0; i < resnet_ntensors(net); i++) {
		const ResNetTensor *t = resnet_tensor(net, i);
		const float *ref;
		size_t n = 1, nref;
		float *tmp;

		if (t->grad == NULL)
			continue;
		for (int d = 0; d < t->ndim; d++)
			n *= (size_t)t->shape[d];
		snprintf(name, sizeof name, "grad.%s", t->name);
		if ((ref = ref_f32(c, name, &nref)) == NULL || nref != n) {
			CHECK(0, "%s: missing or wrong size", name);
			continue;
		}
		tmp = emalloc(n * sizeof *tmp);
		if (t->conv) {
			/* internal (K, K, C, OC) -> (OC, C, K, K) */
			int OC = (int)t->shape[0], C = (int)t->shape[1];
			int KK = (int)(t->shape[2] * t->shape[3]);

			for (int o = 0; o < OC; o++)
				for (int ci = 0; ci < C; ci++)
					for (int k = 0; k < KK; k++)
						tmp[((size_t)o * C + ci) * KK + k] =
						    t->grad[((size_t)k * C + ci) *
						    OC + o];
		} else
			memcpy(tmp, t->grad, n * sizeof *tmp);
		compare(name, tmp, ref, n, TOL_GRAD);
		free(tmp);
	}
	floor_scale = 0;
}

/* The running statistics after the train-mode forward. */
static void
compare_updated(const Ckpt *c, ResNet *net)
{
	char name[160];

	for (size_t i = 0; i < resnet_ntensors(net); i++) {
		const ResNetTensor *t = resnet_tensor(net, i);
		const CkptTensor *r;

		if (t->grad != NULL)
			continue;
		snprintf(name, sizeof name, "updated.%s", t->name);
		r = ckpt_find(c, name);
		CHECK(r != NULL, "%s missing", name);
		if (r == NULL)
			continue;
		if (t->dtype == CKPT_I64) {
			CHECK(r->dtype == CKPT_I64 &&
			    *(const int64_t *)r->data == *(int64_t *)t->data,
			    "%s: %lld", name, (long long)*(int64_t *)t->data);
			continue;
		}
		compare(name, t->data, r->data, r->count, TOL_FWD);
	}
}

static int
meta_int(const Ckpt *c, const char *key)
{
	const char *v = ckpt_meta(c, key);

	CHECK(v != NULL, "metadata %s missing", key);
	return v != NULL ? atoi(v) : 0;
}

/*
 * Feature1-5 of relloc-protocols(7), FEATURES, on the 224x224 image pool.input_u8,
 * eval mode, with the running statistics the train step left.
 */
static void
check_pool(const Ckpt *c, ResNet *net)
{
	static const int spec[5][3] = { { 10, 10, 4 }, { 16, 8, 0 },
	    { 13, 5, 0 }, { 8, 3, 0 }, { 6, 1, 0 } };
	static const float mean[3] = { 0.485f, 0.456f, 0.406f };
	static const float std[3] = { 0.229f, 0.224f, 0.225f };
	const CkptTensor *img = ckpt_find(c, "pool.input_u8");
	ResNetCtx *ctx;
	float *x;
	const uint8_t *u;

	CHECK(img != NULL && img->dtype == CKPT_U8 && img->count ==
	    3 * 224 * 224, "pool.input_u8");
	if (img == NULL || img->count != 3 * 224 * 224)
		return;
	u = img->data;
	x = emalloc(3 * 224 * 224 * sizeof *x);
	/* ToTensor then Normalize, each in float32; NCHW -> NHWC */
	for (int ch = 0; ch < 3; ch++)
		for (int i = 0; i < 224 * 224; i++) {
			float v = (float)u[ch * 224 * 224 + i] / 255.0f;

			x[i * 3 + ch] = (v - mean[ch]) / std[ch];
		}
	CHECK(resnet_ctx_create(&ctx, net, 1, 224, 224, 0, err, sizeof err) ==
	    0, "%s", err);
	resnet_forward(net, ctx, x, 1, 0);
	for (int s = 0; s < 5; s++) {
		int h, w, ch, K = spec[s][0], S = spec[s][1], P = spec[s][2];
		const float *st = resnet_stage(ctx, s, &h, &w, &ch);
		int oh = (h + 2 * P - K) / S + 1, ow = (w + 2 * P - K) / S + 1;
		size_t n = (size_t)oh * ow * ch, nref;
		float *p = emalloc(n * sizeof *p), *q = emalloc(n * sizeof *q);
		char name[32];
		const float *ref;

		avgpool_forward(p, st, 1, h, w, ch, K, S, P);
		nhwc_to_nchw(q, p, 1, ch, oh, ow);
		snprintf(name, sizeof name, "pool.feat%d", s + 1);
		if ((ref = ref_f32(c, name, &nref)) != NULL) {
			CHECK(nref == n, "%s: %zu values, %zu expected", name,
			    nref, n);
			if (nref == n)
				compare(name, q, ref, n, TOL_FWD);
		}
		free(p), free(q);
	}
	resnet_ctx_free(ctx);
	free(x);
}

/*
 * A train forward and backward on ctx from the reference input x: the
 * head's logits and loss gradient, then resnet_backward into the
 * gradient block (zeroed first) and dx.
 */
static void
train_step(ResNet *net, ResNetCtx *ctx, const float *x, const float *hw,
    const float *hb, const int *labels, float *feat, float *logits,
    float *probs, float *dlogits, float *dfeat, float *dhw, float *dhb,
    float *dx, int N, int C4, int K)
{
	int ncorrect;

	resnet_zero_grad(net);
	resnet_forward(net, ctx, x, N, 1);
	resnet_gap(ctx, feat);
	linear_forward(logits, feat, hw, hb, N, C4, K);
	crossentropy_forward(probs, &ncorrect, logits, labels, N, K);
	crossentropy_backward(dlogits, probs, labels, N, K, 1.0f);
	memset(dfeat, 0, (size_t)N * C4 * sizeof *dfeat);
	linear_backward(dfeat, dhw, dhb, dlogits, feat, hw, N, C4, K, NULL);
	resnet_backward(net, ctx, dfeat, NULL, dx);
}

/*
 * The reference file at path, with nt threads (a team of min(nt, N):
 * resnet.h). Ends with a check that the train step repeats bit for bit:
 * the team's threads share buffers whose layouts change from layer to
 * layer, and a missing barrier shows as results that vary from run to
 * run.
 */
static void
check_file(const char *path, int nt)
{
	Ckpt *c;
	ResNetConfig cfg;
	ResNet *net;
	ResNetCtx *ctx;
	const CkptTensor *in, *lab;
	const char *block;
	int N, H, W, K, C4, ncorrect;
	float *x, *dx, *dxn, *feat, *logits, *probs, *dlogits, *dfeat;
	float *dhw, *dhb, loss;
	const float *hw, *hb, *ref;
	int *labels;
	size_t n = 0;

	printf("  %d thread%s:\n", nt, nt > 1 ? "s" : "");
	omp_set_num_threads(nt);
	if (ckpt_open(&c, path, err, sizeof err) != 0) {
		CHECK(0, "%s", err);
		return;
	}
	block = ckpt_meta(c, "block");
	CHECK(block != NULL, "metadata block missing");
	if (resnet_config(&cfg, block != NULL && strcmp(block, "Bottleneck") ==
	    0 ? 50 : 18, meta_int(c, "width"), err, sizeof err) != 0) {
		CHECK(0, "%s", err);
		ckpt_close(c);
		return;
	}
	sscanf(ckpt_meta(c, "layers"), "%d,%d,%d,%d", &cfg.blocks[0],
	    &cfg.blocks[1], &cfg.blocks[2], &cfg.blocks[3]);
	K = meta_int(c, "classes");
	resnet_create(&net, &cfg, NULL, NULL, 1);
	CHECK(resnet_load(net, c, "", err, sizeof err) == 0, "%s", err);

	in = ckpt_find(c, "input");
	lab = ckpt_find(c, "labels");
	CHECK(in != NULL && in->ndim == 4 && lab != NULL && lab->dtype ==
	    CKPT_I64, "input/labels");
	N = (int)in->shape[0], H = (int)in->shape[2], W = (int)in->shape[3];
	C4 = resnet_stage_channels(net, 4);
	x = emalloc(in->count * sizeof *x);
	dx = emalloc(in->count * sizeof *x);
	dxn = emalloc(in->count * sizeof *x);
	nchw_to_nhwc(x, in->data, N, 3, H, W);
	labels = emalloc(N * sizeof *labels);
	for (int i = 0; i < N; i++)
		labels[i] = (int)((const int64_t *)lab->data)[i];
	hw = ref_f32(c, "head.fc.weight", NULL);
	hb = ref_f32(c, "head.fc.bias", NULL);
	feat = emalloc((size_t)N * C4 * sizeof *feat);
	dfeat = ecalloc((size_t)N * C4, sizeof *dfeat);
	logits = emalloc((size_t)N * K * sizeof *logits);
	probs = emalloc((size_t)N * K * sizeof *probs);
	dlogits = emalloc((size_t)N * K * sizeof *dlogits);
	dhw = ecalloc((size_t)K * C4, sizeof *dhw);
	dhb = ecalloc(K, sizeof *dhb);

	/* train mode: forward, loss, backward */
	CHECK(resnet_ctx_create(&ctx, net, N, H, W, 1, err, sizeof err) == 0,
	    "%s", err);
	resnet_forward(net, ctx, x, N, 1);
	compare_stages(c, ctx, N, "train");
	compare_head(c, ctx, "train", feat, logits, hw, hb, N, C4, K);
	loss = crossentropy_forward(probs, &ncorrect, logits, labels, N, K);
	compare("train.loss", &loss, ref_f32(c, "train.loss", NULL), 1,
	    TOL_FWD);
	crossentropy_backward(dlogits, probs, labels, N, K, 1.0f);
	linear_backward(dfeat, dhw, dhb, dlogits, feat, hw, N, C4, K, NULL);
	compare("grad.head.fc.weight", dhw, ref_f32(c, "grad.head.fc.weight",
	    NULL), (size_t)K * C4, TOL_GRAD);
	compare("grad.head.fc.bias", dhb, ref_f32(c, "grad.head.fc.bias",
	    NULL), K, TOL_GRAD);
	resnet_backward(net, ctx, dfeat, NULL, dx);
	compare_grads(c, net);
	nhwc_to_nchw(dxn, dx, N, 3, H, W);
	ref = ref_f32(c, "grad.input", &n);
	compare("grad.input", dxn, ref, n, TOL_GRAD);
	compare_updated(c, net);

	/* eval mode, with the updated running statistics */
	resnet_forward(net, ctx, x, N, 0);
	compare_stages(c, ctx, N, "eval");
	compare_head(c, ctx, "eval", feat, logits, hw, hb, N, C4, K);
	resnet_ctx_free(ctx);

	/* the same in an evaluation context (buffers reused), then with the
	 * batch norms folded into the convolutions (rl-extract's way), both
	 * against the same eval references */
	for (int fold = 0; fold < 2; fold++) {
		if (fold) {
			printf("  batch norms folded:\n");
			resnet_fold_bn(net);
		}
		CHECK(resnet_ctx_create(&ctx, net, N, H, W, 0, err,
		    sizeof err) == 0, "%s", err);
		resnet_forward(net, ctx, x, N, 0);
		compare_stages(c, ctx, N, "eval");
		compare_head(c, ctx, "eval", feat, logits, hw, hb, N, C4, K);
		resnet_ctx_free(ctx);
		if (ckpt_find(c, "pool.input_u8") != NULL)
			check_pool(c, net);
	}

	resnet_free(net);

	/* the train step again, three times: bit for bit the same */
	resnet_create(&net, &cfg, NULL, NULL, 1);
	CHECK(resnet_load(net, c, "", err, sizeof err) == 0, "%s", err);
	CHECK(resnet_ctx_create(&ctx, net, N, H, W, 1, err, sizeof err) == 0,
	    "%s", err);
	{
		size_t np = resnet_nparams(&cfg);
		float *g0 = emalloc(np * sizeof *g0);

		for (int rep = 0; rep < 3; rep++) {
			train_step(net, ctx, x, hw, hb, labels, feat, logits,
			    probs, dlogits, dfeat, dhw, dhb, rep ? dxn : dx, N,
			    C4, K);
			if (rep == 0) {
				memcpy(g0, resnet_grads(net), np * sizeof *g0);
				continue;
			}
			CHECK(memcmp(g0, resnet_grads(net), np * sizeof *g0) ==
			    0 && memcmp(dx, dxn, in->count * sizeof *dx) == 0,
			    "%d threads: train step %d differs from step 0",
			    nt, rep);
		}
		free(g0);
	}
	resnet_ctx_free(ctx);
	resnet_free(net);
	ckpt_close(c);
	omp_set_num_threads(nthreads);
	free(x), free(dx), free(dxn), free(labels), free(feat), free(dfeat);
	free(logits), free(probs), free(dlogits), free(dhw), free(dhb);
}

/* On 1, 2 and 3 threads (3: an uneven team of 3 over 4 inputs, and a team
 * of 2 over the bottleneck file's 2). */
TEST(basic)
{
	for (int nt = 1; nt <= 3; nt++)
		check_file("tests/ref/basic.safetensors", nt);
}

TEST(bottleneck)
{
	for (int nt = 1; nt <= 3; nt++)
		check_file("tests/ref/bottleneck.safetensors", nt);
}

/*
 * Gradients entering at stage outputs (resnet_backward's dstage): one
 * entering at layer1 reaches layer1 and the stem and nothing above; the
 * GAP gradient equals the same gradient spread over layer4 (dstage[4]);
 * and contributions add (the gradient block accumulates). Also a batch
 * smaller than the context's maximum gives the same outputs.
 */
TEST(stage_gradients)
{
	ResNetConfig cfg;
	ResNet *net;
	ResNetCtx *ctx, *big;
	int B = 3, H = 24, W = 20, h1, w1, c1, h4, w4, c4;
	size_t nx = (size_t)B * H * W * 3, np, n1, n4;
	float *x, *g1, *g4, *dgap, *ga, *gb, *gsum;
	const float *dst[5] = { NULL, NULL, NULL, NULL, NULL };
	double d = 0, m = 0;
	int above = 0, below = 0;

	CHECK(resnet_config(&cfg, 50, 4, err, sizeof err) == 0, "%s", err);
	resnet_create(&net, &cfg, NULL, NULL, 3);
	np = resnet_nparams(&cfg);
	CHECK(resnet_ctx_create(&ctx, net, B, H, W, 1, err, sizeof err) == 0,
	    "%s", err);
	x = emalloc(nx * sizeof *x);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((i * 37) % 101) / 50 - 1;
	resnet_forward(net, ctx, x, B, 1);
	resnet_stage(ctx, 1, &h1, &w1, &c1);
	resnet_stage(ctx, 4, &h4, &w4, &c4);
	n1 = (size_t)B * h1 * w1 * c1, n4 = (size_t)B * h4 * w4 * c4;
	g1 = emalloc(n1 * sizeof *g1), g4 = emalloc(n4 * sizeof *g4);
	dgap = emalloc((size_t)B * c4 * sizeof *dgap);
	for (size_t i = 0; i < n1; i++)
		g1[i] = (float)((i * 13) % 7) - 3;
	for (int i = 0; i < B * c4; i++)
		dgap[i] = (float)((i * 5) % 9) - 4;
	gap_backward(g4, dgap, B, h4, w4, c4);
	ga = emalloc(np * sizeof *ga), gb = emalloc(np * sizeof *gb);
	gsum = emalloc(np * sizeof *gsum);

	/* layer1 only */
	resnet_zero_grad(net);
	dst[1] = g1;
	resnet_backward(net, ctx, NULL, dst, NULL);
	for (size_t i = 0; i < resnet_ntensors(net); i++) {
		const ResNetTensor *t = resnet_tensor(net, i);
		size_t n = 1;
		int nz = 0;

		if (t->grad == NULL)
			continue;
		for (int k = 0; k < t->ndim; k++)
			n *= (size_t)t->shape[k];
		for (size_t j = 0; j < n; j++)
			nz |= t->grad[j] != 0;
		if (strncmp(t->name, "layer", 5) == 0 && t->name[5] > '1')
			above += nz;
		else
			below += !nz;
	}
	CHECK(above == 0, "%d tensors above layer1 got a gradient", above);
	CHECK(below == 0, "%d tensors of the stem/layer1 got none", below);
	memcpy(ga, resnet_grads(net), np * sizeof *ga);

	/* the GAP gradient, then the same spread over layer4 */
	resnet_zero_grad(net);
	resnet_forward(net, ctx, x, B, 1);
	resnet_backward(net, ctx, dgap, NULL, NULL);
	memcpy(gb, resnet_grads(net), np * sizeof *gb);
	resnet_zero_grad(net);
	resnet_forward(net, ctx, x, B, 1);
	dst[1] = NULL, dst[4] = g4;
	resnet_backward(net, ctx, NULL, dst, NULL);
	for (size_t i = 0; i < np; i++) {
		d = fmax(d, fabs(resnet_grads(net)[i] - gb[i]));
		m = fmax(m, fabs(gb[i]));
	}
	CHECK(d <= 1e-6 * m, "dgap vs dstage[4]: %g of %g", d, m);

	/* both at once: the sum (running statistics move, outputs do not) */
	resnet_zero_grad(net);
	resnet_forward(net, ctx, x, B, 1);
	dst[1] = g1, dst[4] = NULL;
	resnet_backward(net, ctx, dgap, dst, NULL);
	d = m = 0;
	for (size_t i = 0; i < np; i++) {
		gsum[i] = ga[i] + gb[i];
		d = fmax(d, fabs(resnet_grads(net)[i] - gsum[i]));
		m = fmax(m, fabs(gsum[i]));
	}
	CHECK(d <= 1e-4 * m, "dgap + dstage[1]: %g of %g", d, m);
	printf("  stage gradients: joint vs separate maxdiff %.3g\n", d / m);

	/* a batch below the context's maximum */
	CHECK(resnet_ctx_create(&big, net, B + 3, H, W, 0, err, sizeof err) ==
	    0, "%s", err);
	resnet_forward(net, ctx, x, B, 0);
	resnet_forward(net, big, x, B, 0);
	d = 0;
	for (int s = 0; s < 5; s++) {
		int h, w, c;
		const float *p = resnet_stage(ctx, s, &h, &w, &c);
		const float *q = resnet_stage(big, s, NULL, NULL, NULL);

		for (size_t i = 0; i < (size_t)B * h * w * c; i++)
			d = fmax(d, fabs(p[i] - q[i]));
	}
	CHECK(d <= 1e-5, "B < maxB: stages differ by %g", d);
	resnet_ctx_free(big);
	resnet_ctx_free(ctx);
	resnet_free(net);
	free(x), free(g1), free(g4), free(dgap), free(ga), free(gb), free(gsum);
}

/* Our full-width ResNets have torchvision's state_dict, less the fc. */
static void
check_keys(int depth)
{
	char path[64], line[256], want[256], err1[128];
	ResNetConfig cfg;
	ResNet *net;
	FILE *fp;
	size_t i = 0;
	int ok = 1;

	snprintf(path, sizeof path, "tests/ref/resnet%d_keys.txt", depth);
	if ((fp = fopen(path, "r")) == NULL) {
		CHECK(0, "%s: cannot open", path);
		return;
	}
	CHECK(resnet_config(&cfg, depth, 64, err1, sizeof err1) == 0, "%s",
	    err1);
	resnet_create(&net, &cfg, NULL, NULL, 1);
	while (fgets(line, sizeof line, fp) != NULL) {
		const ResNetTensor *t;
		int len;

		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "fc.", 3) == 0)
			continue;
		if (i >= resnet_ntensors(net)) {
			CHECK(0, "resnet%d: %s missing", depth, line);
			ok = 0;
			break;
		}
		t = resnet_tensor(net, i++);
		len = snprintf(want, sizeof want, "%s %s", t->name,
		    ckpt_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			len += snprintf(want + len, sizeof want - len, " %lld",
			    (long long)t->shape[d]);
		if (strcmp(line, want) != 0) {
			CHECK(0, "resnet%d entry %zu: ours \"%s\", torchvision "
			    "\"%s\"", depth, i - 1, want, line);
			ok = 0;
			break;
		}
	}
	fclose(fp);
	CHECK(!ok || i == resnet_ntensors(net), "resnet%d: %zu tensors, %zu in "
	    "torchvision's list", depth, resnet_ntensors(net), i);
	printf("  resnet%d: %zu tensors match torchvision (fc excluded)\n",
	    depth, i);
	resnet_free(net);
}

TEST(torchvision_keys)
{
	check_keys(18);
	check_keys(34);
	check_keys(50);
}

/* Save with ckpt.h and load into a fresh network: every tensor equal. */
TEST(save_load)
{
	ResNetConfig cfg;
	ResNet *a, *b;
	CkptWriter *w;
	Ckpt *c;
	char path[4096];
	const char *tmp = getenv("TMP");

	snprintf(path, sizeof path, "%s/t_ref.safetensors", tmp != NULL ? tmp :
	    "/tmp");
	CHECK(resnet_config(&cfg, 50, 4, err, sizeof err) == 0, "%s", err);
	resnet_create(&a, &cfg, NULL, NULL, 7);
	resnet_create(&b, &cfg, NULL, NULL, 8);
	for (size_t i = 0; i < resnet_ntensors(a); i++) {
		const ResNetTensor *t = resnet_tensor(a, i);

		if (t->dtype == CKPT_I64)
			*(int64_t *)t->data = (int64_t)i;
		else if (t->grad == NULL)
			((float *)t->data)[0] = (float)i;
	}
	ckpt_writer_create(&w);
	CHECK(resnet_add_to_writer(a, w, "backbone.", err, sizeof err) == 0,
	    "%s", err);
	CHECK(ckpt_writer_write(w, path, err, sizeof err) == 0, "%s", err);
	ckpt_writer_free(w);
	CHECK(ckpt_open(&c, path, err, sizeof err) == 0, "%s", err);
	CHECK(resnet_load(b, c, "backbone.", err, sizeof err) == 0, "%s", err);
	/* a conv weight in PyTorch order in the file */
	{
		const CkptTensor *t = ckpt_find(c, "backbone.conv1.weight");
		const float *wf = t->data;
		const float *wi = resnet_tensor(a, 0)->data;
		int OC = 4, C = 3, Kk = 7;

		/* file (o, c, kh, kw) = internal (kh, kw, c, o) */
		CHECK(wf[((1 * C + 2) * Kk + 3) * Kk + 5] ==
		    wi[((3 * Kk + 5) * C + 2) * OC + 1], "conv1 layout");
	}
	for (size_t i = 0; i < resnet_ntensors(a); i++) {
		const ResNetTensor *ta = resnet_tensor(a, i);
		const ResNetTensor *tb = resnet_tensor(b, i);
		size_t n = ckpt_dtype_size(ta->dtype);

		for (int d = 0; d < ta->ndim; d++)
			n *= (size_t)ta->shape[d];
		CHECK(memcmp(ta->data, tb->data, n) == 0, "%s differs after "
		    "save and load", ta->name);
	}
	/* a missing tensor is named */
	CHECK(resnet_load(b, c, "", err, sizeof err) != 0 &&
	    strstr(err, "conv1.weight") != NULL, "missing tensor: %s", err);
	ckpt_close(c);
	resnet_free(a);
	resnet_free(b);
}

int
main(int argc, char **argv)
{
	(void)argc;
	blas_init(argv);
	nthreads = omp_get_max_threads();
	RUN(basic);
	RUN(bottleneck);
	RUN(stage_gradients);
	RUN(torchvision_keys);
	RUN(save_load);
	return check_summary();
}

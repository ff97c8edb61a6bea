/*
 * t_shard: a step cut into shards (train.h) against the engine itself:
 * `-b 8 --shard 2` must give the gradients of four separate forward and
 * backward passes of 2 images through resnet.h and relloc.h, added and
 * divided by 4 (the mean loss over the 64 pairs), with each pass's own
 * batch statistics; the running statistics must be those of the first
 * shard alone; and dropout's mask must not depend on the cut.
 */
#include <string.h>

#include "common/ckpt.h"
#include "common/layers.h"
#include "common/npy.h"
#include "common/relloc.h"
#include "common/resnet.h"
#include "common/rng.h"
#include "common/train.h"
#include "common/util.h"
#include "tests/check.h"

#define B 8
#define N 2
#define PS 16           /* patch side */
#define HID 32

static void
fill(float *x, size_t n, uint64_t seed)
{
	Rng g;

	rng_init(&g, seed, 99, 0);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)rng_normal(&g);
}

static void
config(TrainConfig *c, int shard, int mmselfsup)
{
	train_config_default(c, B, PS, 10);
	c->depth = 18;
	c->width = 8;
	c->hidden = HID;
	c->shard = shard;
	c->mmselfsup = mmselfsup;
	c->seed = 7;
}

/* Largest |a - b| relative to the largest |b|, or to least if that is
 * larger. */
static double
reldiff(const float *a, const float *b, size_t n, double least)
{
	double d = 0, m = least;

	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return m > 0 ? d / m : d;
}

/*
 * The reference: the engine's networks built as train_create builds
 * them, each shard of N images in a pass of its own (dropout at the
 * shard's place in the step), gradients summed then divided by the
 * shards. ref_grads gets them; ref_buf the running statistics after
 * shard 0 only.
 */
static void
reference(const TrainConfig *c, const float *x, float *ref_grads,
    size_t nparams, float *rmean, float *rvar, float *nmean)
{
	ResNetConfig rc;
	ResNet *net;
	ResNetCtx *ctx[2] = { NULL, NULL };
	RelLoc rl;
	RelLocConfig nc;
	RelLocPairs pairs;
	char err[256];
	size_t per = PS * PS * 3, nback;
	float *params = emalloc_aligned(nparams * sizeof(float));
	float *grads = emalloc_aligned(nparams * sizeof(float));
	float *xa = emalloc(8 * N * per * sizeof(float));
	float *xb = emalloc(8 * N * per * sizeof(float));
	float *feat = emalloc(16 * N * 64 * sizeof(float));
	float *dfeat = emalloc(16 * N * 64 * sizeof(float));
	int D, mm = c->mmselfsup;

	resnet_config(&rc, 18, 8, err, sizeof(err));
	nback = resnet_nparams(&rc);
	resnet_create(&net, &rc, params, grads, c->seed);
	D = resnet_stage_channels(net, 4);
	relloc_config_default(&nc, D, 8 * N);
	nc.hidden = HID;
	nc.maxcentres = mm ? 8 * N : N;
	relloc_init(&rl, &nc, params + nback, grads + nback, c->seed);
	relloc_pairs_make(&pairs, mm ? RELLOC_SPLIT : RELLOC_SHARED, N);
	resnet_ctx_create(&ctx[0], net, mm ? 8 * N : 9 * N, PS, PS, 1, err,
	    sizeof(err));
	if (mm)
		resnet_ctx_create(&ctx[1], net, 8 * N, PS, PS, 1, err,
		    sizeof(err));
	memset(ref_grads, 0, nparams * sizeof(float));
	for (int s = 0; s < B / N; s++) {
		const float *xs = x + (size_t)s * 9 * N * per;

		memset(grads, 0, nparams * sizeof(float));
		if (!mm) {
			resnet_forward(net, ctx[0], xs, 9 * N, 1);
			resnet_gap(ctx[0], feat);
		} else {
			for (int i = 0; i < N; i++)
				for (int k = 0; k < 8; k++) {
					memcpy(xa + (8 * i + k) * per, xs + (9 * i +
					    relloc_neighbours[k]) * per,
					    per * sizeof(float));
					memcpy(xb + (8 * i + k) * per, xs +
					    (9 * i + 4) * per, per * sizeof(float));
				}
			resnet_forward(net, ctx[0], xa, 8 * N, 1);
			resnet_gap(ctx[0], feat);
			resnet_forward(net, ctx[1], xb, 8 * N, 1);
			resnet_gap(ctx[1], feat + 8 * N * D);
		}
		relloc_shard(&rl, (uint64_t)s * 8 * N, 1.0f);
		relloc_forward(&rl, feat, &pairs, 1, c->seed, 0, NULL);
		if (s == 0) {
			/* the running statistics after shard 0 alone */
			const ResNetTensor *t = resnet_tensor(net, 3);

			memcpy(rmean, t->data, 8 * sizeof(float));
			memcpy(rvar, resnet_tensor(net, 4)->data,
			    8 * sizeof(float));
			memcpy(nmean, rl.running_mean, HID * sizeof(float));
		}
		relloc_backward(&rl, dfeat);
		if (mm)
			resnet_backward(net, ctx[1], dfeat + 8 * N * D, NULL,
			    NULL);
		resnet_backward(net, ctx[0], dfeat, NULL, NULL);
		for (size_t i = 0; i < nparams; i++)
			ref_grads[i] += grads[i];
	}
	for (size_t i = 0; i < nparams; i++)
		ref_grads[i] /= B / N;
	resnet_ctx_free(ctx[0]);
	resnet_ctx_free(ctx[1]);
	relloc_pairs_free(&pairs);
	relloc_free(&rl);
	resnet_free(net);
	free(params);
	free(grads);
	free(xa);
	free(xb);
	free(feat);
	free(dfeat);
}

static void
shards_vs_engine(int mm)
{
	TrainConfig c;
	Trainer *t, *whole;
	TrainStepInfo si;
	char err[256];
	float *x = emalloc((size_t)9 * B * PS * PS * 3 * sizeof(float));
	float *p, *g, *gw, *ref, rmean[8], rvar[8], nmean[HID];
	size_t n, nw;
	ResNet *net;
	double d, dw;

	fill(x, (size_t)9 * B * PS * PS * 3, 1);
	config(&c, N, mm);
	CHECK(train_create(&t, &c, err, sizeof(err)) == 0, "%s", err);
	train_step(t, x, 0, &si);
	CHECK(si.status == TRAIN_OK && si.pairs == 8 * B, "step");
	train_blocks(t, &p, &g, &n);
	ref = emalloc(n * sizeof(float));
	reference(&c, x, ref, n, rmean, rvar, nmean);
	d = reldiff(g, ref, n, 0);
	CHECK(d < 1e-5, "batching %d: shard gradients differ from the "
	    "engine's by %g", mm, d);
	/* the whole step in one pass is another function (batch statistics
	 * over 8 images), so the test can tell */
	config(&c, B, mm);
	CHECK(train_create(&whole, &c, err, sizeof(err)) == 0, "%s", err);
	train_step(whole, x, 0, &si);
	train_blocks(whole, &p, &gw, &nw);
	dw = reldiff(gw, ref, n, 0);
	CHECK(nw == n && dw > 1e-3, "one pass of 8 differs by only %g", dw);
	/* running statistics: shard 0's; conv1's bn is tensor 1..4 */
	net = train_backbone(t);
	CHECK(!strcmp(resnet_tensor(net, 3)->name, "bn1.running_mean"),
	    "%s", resnet_tensor(net, 3)->name);
	CHECK(memcmp(resnet_tensor(net, 3)->data, rmean, sizeof(rmean)) == 0
	    && memcmp(resnet_tensor(net, 4)->data, rvar, sizeof(rvar)) == 0,
	    "backbone running statistics are not shard 0's");
	CHECK(memcmp(train_neck(t)->running_mean, nmean, sizeof(nmean)) == 0,
	    "neck running mean is not shard 0's");
	CHECK(*(int64_t *)resnet_tensor(net, 5)->data == (mm ? 2 : 1) &&
	    train_neck(t)->num_batches_tracked == 1, "counters");
	CHECK(memcmp(train_neck(whole)->running_mean, nmean,
	    sizeof(nmean)) != 0, "the whole step's statistics equal shard 0's");
	free(ref);
	free(x);
	train_free(t);
	train_free(whole);
}

TEST(shards_shared)
{
	shards_vs_engine(0);
}

TEST(shards_mmselfsup)
{
	shards_vs_engine(1);
}

/* A shard's dropout mask is the slice of the step's, at any offset. */
TEST(dropout_slice)
{
	size_t n = 3 * 4096 + 123, first = 4096 + 1000, len = 5000;
	float *in = emalloc(n * sizeof(float)), *out = emalloc(n * 4);
	float *mask = emalloc(n * 4), *o2 = emalloc(len * 4);
	float *m2 = emalloc(len * 4);

	fill(in, n, 3);
	dropout_forward(out, mask, in, n, 0.5f, 11, 5);
	dropout_forward_at(o2, m2, in + first, len, first, 0.5f, 11, 5);
	CHECK(memcmp(m2, mask + first, len * 4) == 0 &&
	    memcmp(o2, out + first, len * 4) == 0, "slice differs");
	free(in);
	free(out);
	free(mask);
	free(o2);
	free(m2);
}

/* Shards that do not divide the step are refused with a message. */
TEST(bad_shard)
{
	TrainConfig c;
	Trainer *t = NULL;
	char err[256] = "";

	config(&c, 3, 0);
	CHECK(train_create(&t, &c, err, sizeof(err)) < 0 && !t &&
	    strstr(err, "divide"), "%s", err);
}

/* A step too large for the machine is refused before allocating, with
 * what it needs and what lowers it: a shard that fits or, where even the
 * step's input batches (7 GB here) do not, a smaller -b (ResNet-50 at
 * 32 px on 65536 images: about 1 TB of activations in one pass). */
TEST(too_big)
{
	TrainConfig c;
	Trainer *t = NULL;
	char err[512] = "";

	train_config_default(&c, 1 << 16, 32, 10);
	CHECK(train_create(&t, &c, err, sizeof(err)) < 0 && !t &&
	    strstr(err, "needs") && strstr(err, "MiB available") &&
	    (strstr(err, "--shard ") || strstr(err, "smaller -b")), "%s",
	    err);
	fprintf(stderr, "%s\n", err);
}

/*
 * t_shard ckptdiff A B: for the CLI tests (tests/cli/t_mpi.sh), the
 * largest difference between the F32 tensors of two checkpoints of the
 * same names and shapes, relative to the tensor's largest magnitude or
 * 1e-3 if that is smaller (neck.fc.bias, before a batch norm, has a zero
 * gradient and holds only rounding noise); printed, exit 0; exit 1 when the tensors do not match by name, shape
 * or count, or a file cannot be read.
 */
static int
ckptdiff(const char *a, const char *b)
{
	Ckpt *ca, *cb;
	char err[CKPT_ERRLEN];
	double worst = 0;
	const char *where = "";

	if (ckpt_open(&ca, a, err, sizeof(err)) < 0 ||
	    ckpt_open(&cb, b, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (ckpt_ntensors(ca) != ckpt_ntensors(cb))
		return 1;
	for (size_t i = 0; i < ckpt_ntensors(ca); i++) {
		const CkptTensor *x = ckpt_tensor(ca, i);
		const CkptTensor *y = ckpt_find(cb, x->name);
		double d;

		if (!y || y->nbytes != x->nbytes || y->dtype != x->dtype)
			return 1;
		if (x->dtype != CKPT_F32)
			continue;
		d = reldiff(x->data, y->data, x->count, 1e-3);
		if (getenv("CKPTDIFF_ALL"))
			printf("%s %.3g\n", x->name, d);
		if (d > worst)
			worst = d, where = x->name;
	}
	printf("%.3g %s\n", worst, where);
	ckpt_close(ca);
	ckpt_close(cb);
	return 0;
}

/* t_shard npydiff A B: the same for two .npy files (rl-extract's). */
static int
npydiff(const char *a, const char *b)
{
	Npy x, y;
	char err[512];
	double d;

	if (npy_read(a, &x, err, sizeof(err)) < 0 ||
	    npy_read(b, &y, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (x.type != y.type || x.count != y.count || x.ndim != y.ndim ||
	    memcmp(x.shape, y.shape, sizeof(x.shape)))
		return 1;
	if (x.type == NPY_F32)
		d = reldiff(x.data, y.data, x.count, 1e-3);
	else
		d = memcmp(x.data, y.data, x.count * npy_elsize(x.type)) != 0;
	printf("%.3g\n", d);
	npy_free(&x);
	npy_free(&y);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "ckptdiff"))
		return ckptdiff(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "npydiff"))
		return npydiff(argv[2], argv[3]);
	RUN(shards_shared);
	RUN(shards_mmselfsup);
	RUN(dropout_slice);
	RUN(bad_shard);
	RUN(too_big);
	return check_summary();
}

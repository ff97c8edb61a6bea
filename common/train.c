/*
 * train: the Relative-Location training state, step and checkpoints.
 * See train.h.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/dist.h"
#include "common/feed.h"
#include "common/optim.h"
#include "common/relloc.h"
#include "common/resnet.h"
#include "common/train.h"
#include "common/util.h"

struct Trainer {
	TrainConfig c;
	ResNet *net;
	ResNetCtx *ctx[2];        /* [1]: the centre pass of mmselfsup */
	RelLoc rl;
	RelLocPairs pairs;
	size_t nparams, nback;    /* whole block, backbone part */
	float *params, *grads, *mom;
	OptimGroup groups[2];
	int D;                    /* backbone feature size */
	float *xa, *xb;           /* mmselfsup: neighbour and centre inputs */
	float *feat, *dfeat;      /* (rows, D) of a shard */
	int n, nsh;               /* images per shard, shards per step */
	int lo, nloc;             /* this rank's first shard, its count */
	/* the running statistics (buffers): regions, and a copy */
	void **buf;
	size_t *buflen, nbuf, bufbytes;
	char *bufcopy;
	uint64_t step;
};

// ----------------------------------------------------------------------------
// configuration

void
train_config_default(TrainConfig *c, int batch, int patch,
    uint64_t iters_per_epoch)
{
	memset(c, 0, sizeof(*c));
	c->depth = 50;
	c->width = 64;
	c->hidden = RELLOC_HIDDEN;
	c->batch = batch;
	c->shard = batch;
	c->patch = patch;
	c->momentum = 0.9;
	c->wd = 1e-4;
	c->neck_wd = 5e-4;
	c->dropout = 0.5;
	sched_recipe(&c->sched, iters_per_epoch);
	c->sched.lr = sched_scaled_lr(batch);
}

const char *
train_arch_name(const TrainConfig *c)
{
	switch (c->depth) {
	case 18: return "resnet18";
	case 34: return "resnet34";
	case 50: return "resnet50";
	}
	return "resnet?";
}

int
train_arch_parse(const char *s, int *depth)
{
	if (!strncmp(s, "resnet", 6))
		s += 6;
	if (!strcmp(s, "18") || !strcmp(s, "34") || !strcmp(s, "50")) {
		*depth = atoi(s);
		return 0;
	}
	return -1;
}

char *
train_config_json(const TrainConfig *c)
{
	const Sched *s = &c->sched;
	json_t *o, *ms = json_array();
	char *txt;

	for (int i = 0; i < s->nsteps; i++)
		json_array_append_new(ms, json_integer(s->steps[i]));
	o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:I, s:f, s:f, "
	    "s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:o, s:I}",
	    "arch", train_arch_name(c),
	    "width", c->width,
	    "hidden", c->hidden,
	    "batch", c->batch,
	    "shard", c->shard,
	    "patch", c->patch,
	    "batching", c->mmselfsup ? "mmselfsup" : "shared",
	    "seed", (json_int_t)c->seed,
	    "lr", s->lr,
	    "momentum", c->momentum,
	    "wd", c->wd,
	    "neck_wd", c->neck_wd,
	    "dropout", c->dropout,
	    "gamma", s->gamma,
	    "warmup_ratio", s->warmup_ratio,
	    "warmup_epochs", s->warmup_epochs,
	    "epochs", s->epochs,
	    "milestones", ms,
	    "iters_per_epoch", (json_int_t)s->iters_per_epoch);
	if (!o)
		emalloc(SIZE_MAX);      /* out of memory */
	txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!txt)
		emalloc(SIZE_MAX);
	return txt;
}

int
train_config_parse(TrainConfig *c, const char *json, char *err,
    size_t errlen)
{
	json_error_t je;
	json_t *o = json_loads(json, 0, &je), *ms = NULL;
	const char *arch = NULL, *batching = NULL;
	json_int_t seed = 0, ipe = 0;
	Sched *s = &c->sched;

	memset(c, 0, sizeof(*c));
	if (!o || json_unpack_ex(o, &je, JSON_STRICT,
	    "{s:s, s:i, s:i, s:i, s?i, s:i, s:s, s:I, s:F, s:F, s:F, s:F, "
	    "s:F, s:F, s:F, s:i, s:i, s:o, s:I}",
	    "arch", &arch, "width", &c->width, "hidden", &c->hidden,
	    "batch", &c->batch, "shard", &c->shard, "patch", &c->patch,
	    "batching", &batching,
	    "seed", &seed, "lr", &s->lr, "momentum", &c->momentum,
	    "wd", &c->wd, "neck_wd", &c->neck_wd, "dropout", &c->dropout,
	    "gamma", &s->gamma, "warmup_ratio", &s->warmup_ratio,
	    "warmup_epochs", &s->warmup_epochs, "epochs", &s->epochs,
	    "milestones", &ms, "iters_per_epoch", &ipe) < 0) {
		snprintf(err, errlen, "config: %s", je.text);
		json_decref(o);
		return -1;
	}
	c->seed = (uint64_t)seed;
	if (!c->shard)          /* written before shards: the whole step */
		c->shard = c->batch;
	s->iters_per_epoch = (uint64_t)ipe;
	c->mmselfsup = !strcmp(batching, "mmselfsup");
	if (train_arch_parse(arch, &c->depth) < 0 || !json_is_array(ms) ||
	    json_array_size(ms) > SCHED_MAXSTEPS || ipe < 1 ||
	    (!c->mmselfsup && strcmp(batching, "shared"))) {
		snprintf(err, errlen, "config: bad arch, batching, milestones "
		    "or iters_per_epoch");
		json_decref(o);
		return -1;
	}
	s->nsteps = (int)json_array_size(ms);
	for (int i = 0; i < s->nsteps; i++)
		s->steps[i] = (int)json_integer_value(json_array_get(ms, i));
	json_decref(o);
	return sched_check(s, err, errlen);
}

// ----------------------------------------------------------------------------
// building

/* Shard size n, shards per step, this rank's share; 0, or -1 with a
 * message. */
static int
shard_plan(const TrainConfig *c, int *n, int *nsh, int *lo, int *nloc,
    char *err, size_t errlen)
{
	int P = dist_size();

	*n = c->shard ? c->shard : c->batch;
	if (*n < 2 || c->batch % *n) {
		snprintf(err, errlen, "shards of %d images: must be at least 2 "
		    "and divide the %d images of a step", *n, c->batch);
		return -1;
	}
	*nsh = c->batch / *n;
	if (*nsh % P) {
		snprintf(err, errlen, "%d shards of %d images per step cannot "
		    "be shared by %d ranks: the shards per step must be a "
		    "multiple of the ranks", *nsh, *n, P);
		return -1;
	}
	*nloc = *nsh / P;
	*lo = dist_rank() * *nloc;
	return 0;
}

/* The neck for shards of n images of D-dimensional features. */
static void
neck_config(RelLocConfig *nc, const TrainConfig *c, int D, int n)
{
	relloc_config_default(nc, D, 8 * n);
	nc->hidden = c->hidden;
	nc->maxcentres = c->mmselfsup ? 8 * n : n;
	nc->dropout = (float)c->dropout;
}

/* Activations (backbone contexts, neck, features) for shards of n
 * images; parameters, gradients and momentum of the step; the input
 * batches the feed prepares. */
static size_t
need_bytes(const ResNet *net, const TrainConfig *c, int D, size_t nparams,
    int n)
{
	RelLocConfig nc;
	size_t per = (size_t)c->patch * c->patch * 3 * sizeof(float);
	size_t b, rows = c->mmselfsup ? 16 * (size_t)n : 9 * (size_t)n;
	size_t P = 8 * (size_t)n, H = c->hidden, U;

	neck_config(&nc, c, D, n);
	U = nc.maxcentres;
	b = 3 * nparams * sizeof(float);
	if (!c->mmselfsup)
		b += resnet_ctx_need(net, 9 * n, c->patch, c->patch, 1);
	else
		b += 2 * resnet_ctx_need(net, 8 * n, c->patch, c->patch, 1) +
		    16 * (size_t)n * per;
	b += 2 * rows * D * sizeof(float);
	/* the feed's batches of this rank's images (feed.h) */
	b += FEED_NSLOT * (size_t)(c->batch / dist_size()) * 9 * per;
	/* relloc_init's activations */
	b += (2 * P * D + 2 * U * D + 2 * U * H + 5 * P * H +
	    3 * P * RELLOC_NCLASS) * sizeof(float);
	return b;
}

/* Bytes the system can give, from /proc/meminfo (0 if unknown). */
static size_t
mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb = 0, v;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
			kb += v;
		else if (sscanf(line, "SwapFree: %llu kB", &v) == 1)
			kb += v;
	fclose(f);
	return (size_t)kb * 1024;
}

/* The networks of c without their activations: t->net, the parameter
 * blocks, D and the sizes. */
static void
build_networks(Trainer *t, const TrainConfig *c, const ResNetConfig *rc)
{
	RelLocConfig nc;

	t->c = *c;
	t->nback = resnet_nparams(rc);
	// layer4's channels (resnet.h): 512 (x 4 for a bottleneck) x width/64
	t->D = 8 * c->width * (rc->bottleneck ? 4 : 1);
	neck_config(&nc, c, t->D, t->n);
	t->nparams = t->nback + relloc_nparams(&nc);
	t->params = emalloc_aligned(t->nparams * sizeof(float));
	t->grads = emalloc_aligned(t->nparams * sizeof(float));
	t->mom = emalloc_aligned(t->nparams * sizeof(float));
	memset(t->mom, 0, t->nparams * sizeof(float));
	resnet_create(&t->net, rc, t->params, t->grads, c->seed);
	assert(resnet_stage_channels(t->net, 4) == t->D);
}

/* The regions of the running statistics, for shard 0's to be kept. */
static void
collect_buffers(Trainer *t)
{
	size_t nt = resnet_ntensors(t->net), k = 0;

	t->buf = emalloc((nt + 2) * sizeof(*t->buf));
	t->buflen = emalloc((nt + 2) * sizeof(*t->buflen));
	for (size_t i = 0; i < nt; i++) {
		const ResNetTensor *r = resnet_tensor(t->net, i);
		size_t e = 1;

		if (r->grad)
			continue;
		for (int d = 0; d < r->ndim; d++)
			e *= (size_t)r->shape[d];
		t->buf[k] = r->data;
		t->buflen[k++] = e * (r->dtype == CKPT_I64 ? 8 : 4);
	}
	t->buf[k] = t->rl.running_mean;
	t->buflen[k++] = 2 * (size_t)t->rl.cfg.hidden * sizeof(float);
	t->buf[k] = &t->rl.num_batches_tracked;
	t->buflen[k++] = sizeof(int64_t);
	t->nbuf = k;
	for (size_t i = 0; i < k; i++)
		t->bufbytes += t->buflen[i];
	t->bufcopy = emalloc(t->bufbytes);
}

static void
buffers_copy(Trainer *t, int save)
{
	char *p = t->bufcopy;

	for (size_t i = 0; i < t->nbuf; i++) {
		if (save)
			memcpy(p, t->buf[i], t->buflen[i]);
		else
			memcpy(t->buf[i], p, t->buflen[i]);
		p += t->buflen[i];
	}
}

/* -1 with a message saying what c needs and the largest shard that fits,
 * when the need is over what the system has available. */
static int
check_fits(const Trainer *t, const TrainConfig *c, char *err, size_t errlen)
{
	size_t need = need_bytes(t->net, c, t->D, t->nparams, t->n);
	size_t avail = mem_available();
	int fit = 0;

	if (!avail || need <= avail)
		return 0;
	for (int m = t->n - 1; m >= 2; m--)
		if (c->batch % m == 0 && (c->batch / m) % dist_size() == 0 &&
		    need_bytes(t->net, c, t->D, t->nparams, m) <= avail) {
			fit = m;
			break;
		}
	if (fit)
		snprintf(err, errlen, "%s, %d images per step in shards of %d: "
		    "needs %.0f MiB, %.0f MiB available; --shard %d needs "
		    "%.0f MiB", train_arch_name(c), c->batch, t->n,
		    need / 1048576.0, avail / 1048576.0, fit,
		    need_bytes(t->net, c, t->D, t->nparams, fit) / 1048576.0);
	else
		snprintf(err, errlen, "%s, %d images per step in shards of %d: "
		    "needs %.0f MiB, %.0f MiB available, and no shard of this "
		    "step fits (its input batches alone take %.0f MiB): a "
		    "smaller -b, -a, --width or --neck-dim lowers it",
		    train_arch_name(c), c->batch, t->n, need / 1048576.0,
		    avail / 1048576.0, FEED_NSLOT * (double)(c->batch /
		    dist_size()) * 9 * c->patch * c->patch * 3 * 4 / 1048576.0);
	return -1;
}

int
train_create(Trainer **out, const TrainConfig *c, char *err, size_t errlen)
{
	Trainer *t;
	ResNetConfig rc;
	RelLocConfig nc;
	int B = c->batch, P = c->patch, rows, n;
	size_t per = (size_t)P * P * 3;

	*out = NULL;
	if (resnet_config(&rc, c->depth, c->width, err, errlen) < 0)
		return -1;
	if (B < 1 || P < 1 || c->hidden < 1 || sched_check(&c->sched, err,
	    errlen) < 0) {
		if (B < 1 || P < 1 || c->hidden < 1)
			snprintf(err, errlen, "batch %d, patch %d, neck width "
			    "%d: must be positive", B, P, c->hidden);
		return -1;
	}
	t = ecalloc(1, sizeof(*t));
	if (shard_plan(c, &t->n, &t->nsh, &t->lo, &t->nloc, err, errlen) < 0) {
		free(t);
		return -1;
	}
	n = t->n;
	build_networks(t, c, &rc);
	if (check_fits(t, c, err, errlen) < 0) {
		train_free(t);
		return -1;
	}
	relloc_pairs_make(&t->pairs, c->mmselfsup ? RELLOC_SPLIT :
	    RELLOC_SHARED, n);
	rows = t->pairs.nrows;
	neck_config(&nc, c, t->D, n);
	relloc_init(&t->rl, &nc, t->params + t->nback, t->grads + t->nback,
	    c->seed);
	t->groups[0] = (OptimGroup){ 0, t->nback, (float)c->wd };
	t->groups[1] = (OptimGroup){ t->nback, t->nparams - t->nback,
	    (float)c->neck_wd };
	collect_buffers(t);

	if (resnet_ctx_create(&t->ctx[0], t->net, c->mmselfsup ? 8 * n :
	    9 * n, P, P, 1, err, errlen) < 0 || (c->mmselfsup &&
	    resnet_ctx_create(&t->ctx[1], t->net, 8 * n, P, P, 1, err,
	    errlen) < 0)) {
		train_free(t);
		return -1;
	}
	if (c->mmselfsup) {
		t->xa = emalloc_aligned(8 * (size_t)n * per * sizeof(float));
		t->xb = emalloc_aligned(8 * (size_t)n * per * sizeof(float));
	}
	t->feat = emalloc_aligned((size_t)rows * t->D * sizeof(float));
	t->dfeat = emalloc_aligned((size_t)rows * t->D * sizeof(float));
	*out = t;
	return 0;
}

void
train_free(Trainer *t)
{
	if (!t)
		return;
	resnet_ctx_free(t->ctx[0]);
	resnet_ctx_free(t->ctx[1]);
	resnet_free(t->net);
	if (t->rl.params)
		relloc_free(&t->rl);
	if (t->pairs.nb_row)
		relloc_pairs_free(&t->pairs);
	free(t->params);
	free(t->grads);
	free(t->mom);
	free(t->xa);
	free(t->xb);
	free(t->feat);
	free(t->dfeat);
	free(t->buf);
	free(t->buflen);
	free(t->bufcopy);
	free(t);
}

const TrainConfig *
train_config(const Trainer *t)
{
	return &t->c;
}

void
train_blocks(Trainer *t, float **params, float **grads, size_t *n)
{
	*params = t->params;
	*grads = t->grads;
	*n = t->nparams;
}

ResNet *
train_backbone(Trainer *t)
{
	return t->net;
}

RelLoc *
train_neck(Trainer *t)
{
	return &t->rl;
}

uint64_t
train_step_count(const Trainer *t)
{
	return t->step;
}

size_t
train_bytes(const Trainer *t)
{
	return need_bytes(t->net, &t->c, t->D, t->nparams, t->n);
}

// ----------------------------------------------------------------------------
// the step

/* x[n] = 0 on every thread (a block of 40M floats is memory-bound). */
static void
zero(float *x, size_t n)
{
	size_t blk = 1 << 16;

#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i += blk)
		memset(x + i, 0, RL_MIN(blk, n - i) * sizeof(float));
}

static double
grad_norm(const float *g, size_t n)
{
	double s = 0;

#pragma omp parallel for reduction(+:s) schedule(static)
	for (size_t i = 0; i < n; i++)
		s += (double)g[i] * g[i];
	return sqrt(s);
}

/* MMSelfSup's inputs for the shard's images x: xa = the neighbours in
 * pair order, xb = each pair's centre (relloc-protocols(7), MODEL). */
static void
split_inputs(Trainer *t, const float *x)
{
	size_t per = (size_t)t->c.patch * t->c.patch * 3;

	for (int i = 0; i < t->n; i++)
		for (int k = 0; k < RELLOC_NCLASS; k++) {
			size_t j = (size_t)RELLOC_NCLASS * i + k;

			memcpy(t->xa + j * per, x + (9 * (size_t)i +
			    relloc_neighbours[k]) * per, per * sizeof(float));
			memcpy(t->xb + j * per, x + (9 * (size_t)i + 4) * per,
			    per * sizeof(float));
		}
}

/* Forward and backward of global shard g on its images x; gradients
 * added to the block. Returns the shard's mean loss (not finite: no
 * backward). */
static double
shard_step(Trainer *t, const float *x, int g, int *correct)
{
	int n8 = 8 * t->n;
	size_t half = (size_t)n8 * t->D;
	double loss;

	if (!t->c.mmselfsup) {
		resnet_forward(t->net, t->ctx[0], x, 9 * t->n, 1);
		resnet_gap(t->ctx[0], t->feat);
	} else {
		split_inputs(t, x);
		resnet_forward(t->net, t->ctx[0], t->xa, n8, 1);
		resnet_gap(t->ctx[0], t->feat);
		resnet_forward(t->net, t->ctx[1], t->xb, n8, 1);
		resnet_gap(t->ctx[1], t->feat + half);
	}
	relloc_shard(&t->rl, (uint64_t)g * n8, 1.0f / t->nsh);
	loss = relloc_forward(&t->rl, t->feat, &t->pairs, 1, t->c.seed,
	    t->step, correct);
	/* running statistics: shard 0's (DDP's rank 0 buffers) */
	buffers_copy(t, g == 0);
	if (!isfinite(loss))
		return loss;
	relloc_backward(&t->rl, t->dfeat);
	if (!t->c.mmselfsup)
		resnet_backward(t->net, t->ctx[0], t->dfeat, NULL, NULL);
	else {
		resnet_backward(t->net, t->ctx[1], t->dfeat + half, NULL,
		    NULL);
		resnet_backward(t->net, t->ctx[0], t->dfeat, NULL, NULL);
	}
	return loss;
}

void
train_step(Trainer *t, const float *x, double max_grad_norm,
    TrainStepInfo *info)
{
	size_t per = (size_t)t->c.patch * t->c.patch * 3;
	double sums[3] = { 0, 0, 0 };   /* loss, correct, non-finite */
	double c0 = dist_comm_seconds();

	memset(info, 0, sizeof(*info));
	info->lr = sched_lr(&t->c.sched, t->step);
	info->pairs = 8 * t->c.batch;
	zero(t->grads, t->nparams);
	buffers_copy(t, 1);
	for (int j = 0; j < t->nloc; j++) {
		int correct = 0;
		double l = shard_step(t, x + (size_t)j * 9 * t->n * per,
		    t->lo + j, &correct);

		sums[0] += l;
		sums[1] += correct;
		sums[2] += !isfinite(l);
	}
	dist_sum_doubles(sums, 3);
	info->loss = sums[2] > 0 ? NAN : sums[0] / t->nsh;
	info->correct = (int)sums[1];
	if (sums[2] > 0) {
		info->comm = dist_comm_seconds() - c0;
		info->status = TRAIN_NONFINITE;
		return;
	}
	dist_sum_floats(t->grads, t->nparams);
	info->comm = dist_comm_seconds() - c0;
	info->grad_norm = grad_norm(t->grads, t->nparams);
	if (!isfinite(info->grad_norm) ||
	    (max_grad_norm > 0 && info->grad_norm > max_grad_norm)) {
		info->status = TRAIN_EXPLODED;
		return;
	}
	sgd_step(t->params, t->grads, t->mom, t->groups, 2, (float)info->lr,
	    (float)t->c.momentum);
	t->step++;
}

void
train_status_text(const TrainStepInfo *si, uint64_t step,
    double max_grad_norm, char *buf, size_t len)
{
	unsigned long long k = (unsigned long long)step + 1;

	if (si->status == TRAIN_NONFINITE)
		snprintf(buf, len, "step %llu: the loss is %g (lr %g): "
		    "training diverged; stopped without a checkpoint", k,
		    si->loss, si->lr);
	else if (!isfinite(si->grad_norm))
		snprintf(buf, len, "step %llu: the gradient norm is %g (lr %g, "
		    "loss %g): training diverged; stopped without a "
		    "checkpoint", k, si->grad_norm, si->lr, si->loss);
	else
		snprintf(buf, len, "step %llu: gradient norm %g exceeds "
		    "--max-grad-norm %g (lr %g, loss %g): training diverged; "
		    "stopped without a checkpoint", k, si->grad_norm,
		    max_grad_norm, si->lr, si->loss);
}

// ----------------------------------------------------------------------------
// checkpoints

static void
ckpt_name(char *buf, size_t len, uint64_t step)
{
	snprintf(buf, len, "ckpt-%08llu.safetensors", (unsigned long long)step);
}

void
train_ckpt_path(char *buf, size_t len, const char *dir, uint64_t step)
{
	char name[64];

	ckpt_name(name, sizeof(name), step);
	snprintf(buf, len, "%s/%s", dir, name);
}

/* The step of a file name "ckpt-<digits>.safetensors", or -1. */
static long long
ckpt_name_step(const char *name)
{
	const char *p = name + 5, *suffix = ".safetensors";
	long long v = 0;

	if (strncmp(name, "ckpt-", 5) || !*p)
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (*p - '0');
	if (p == name + 5 || strcmp(p, suffix))
		return -1;
	return v;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Remove all but the newest keep checkpoints of dir. */
static void
prune(const char *dir, int keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long long *steps = NULL;
	size_t n = 0, cap = 0;

	if (!d)
		return;
	while ((e = readdir(d))) {
		long long s = ckpt_name_step(e->d_name);

		if (s < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			steps = erealloc(steps, cap * sizeof(*steps));
		}
		steps[n++] = s;
	}
	closedir(d);
	if (n > (size_t)keep) {
		qsort(steps, n, sizeof(*steps), cmp_ll);
		for (size_t i = 0; i + keep < n; i++) {
			char name[64], path[4200];

			ckpt_name(name, sizeof(name), (uint64_t)steps[i]);
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			unlink(path);
		}
	}
	free(steps);
}

void
train_clean(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "ckpt-", 5) &&
		    strstr(e->d_name, ".safetensors.tmp")) {
			char path[4200];

			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
}

/* Point dir/last.safetensors at name: a new link renamed over the old. */
static int
link_last(const char *dir, const char *name, char *err, size_t errlen)
{
	char tmp[4200], last[4200];

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, TRAIN_LAST);
	snprintf(last, sizeof(last), "%s/%s", dir, TRAIN_LAST);
	unlink(tmp);
	if (symlink(name, tmp) || rename(tmp, last)) {
		snprintf(err, errlen, "%s: %s", last, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static char *
rng_json(const Trainer *t)
{
	char *s;
	json_t *o = json_pack("{s:I, s:s, s:{s:i, s:i, s:i, s:i}, s:s}",
	    "seed", (json_int_t)t->c.seed,
	    "generator", "splitmix64 keyed by (seed, stream, index) (rng.h)",
	    "streams", "init", RNG_STREAM_INIT, "neck_init",
	    RELLOC_RNG_STREAM_INIT, "dropout", RNG_STREAM_DROPOUT,
	    "shuffle", RNG_STREAM_SHUFFLE,
	    "indices", "init: tensor; dropout: step; shuffle: epoch (LMDB) "
	    "or record (stream buffer)");

	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!s)
		emalloc(SIZE_MAX);
	return s;
}

int
train_checkpoint(Trainer *t, const char *dir, int keep, const char *data_json,
    char *path, size_t pathlen, char *err, size_t errlen)
{
	CkptWriter *w;
	char name[64], full[4200], num[32];
	char *cfg = train_config_json(&t->c), *rng = rng_json(t);
	int64_t shape[1] = { (int64_t)t->nparams };
	int rc = -1;

	assert(keep >= 1);
	ckpt_name(name, sizeof(name), t->step);
	snprintf(full, sizeof(full), "%s/%s", dir, name);
	ckpt_writer_create(&w);
	if (resnet_add_to_writer(t->net, w, "", err, errlen) < 0 ||
	    relloc_ckpt_add(&t->rl, w, err, errlen) < 0 ||
	    ckpt_writer_add(w, "optim.momentum", CKPT_F32, 1, shape, t->mom,
	    err, errlen) < 0 ||
	    ckpt_writer_meta(w, "format", TRAIN_FORMAT, err, errlen) < 0 ||
	    ckpt_writer_meta(w, "arch", train_arch_name(&t->c), err,
	    errlen) < 0)
		goto out;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)t->step);
	if (ckpt_writer_meta(w, "step", num, err, errlen) < 0)
		goto out;
	snprintf(num, sizeof(num), "%llu",
	    (unsigned long long)sched_epoch(&t->c.sched, t->step));
	if (ckpt_writer_meta(w, "epoch", num, err, errlen) < 0 ||
	    ckpt_writer_meta(w, "config", cfg, err, errlen) < 0 ||
	    ckpt_writer_meta(w, "rng", rng, err, errlen) < 0 ||
	    ckpt_writer_meta(w, "data", data_json ? data_json : "{}", err,
	    errlen) < 0 ||
	    ckpt_writer_write(w, full, err, errlen) < 0 ||
	    link_last(dir, name, err, errlen) < 0)
		goto out;
	prune(dir, keep);
	if (path)
		snprintf(path, pathlen, "%s", full);
	rc = 0;
out:
	ckpt_writer_free(w);
	free(cfg);
	free(rng);
	return rc;
}

int
train_ckpt_config(const Ckpt *c, TrainConfig *cfg, char *err, size_t errlen)
{
	const char *fmt = ckpt_meta(c, "format"), *js = ckpt_meta(c, "config");
	char e[512];

	if (!fmt || strcmp(fmt, TRAIN_FORMAT) || !js) {
		snprintf(err, errlen, "%s: not an rl-train checkpoint (no "
		    "\"%s\" format metadata)", ckpt_path(c), TRAIN_FORMAT);
		return -1;
	}
	if (train_config_parse(cfg, js, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "%s: %s", ckpt_path(c), e);
		return -1;
	}
	return 0;
}

int
train_load(Trainer *t, const Ckpt *c, char *err, size_t errlen)
{
	TrainConfig cc;
	const char *step = ckpt_meta(c, "step");
	int64_t shape[1] = { (int64_t)t->nparams };
	const void *m;
	char e[CKPT_ERRLEN];
	long long s;
	const char *es;

	if (train_ckpt_config(c, &cc, err, errlen) < 0)
		return -1;
	if (cc.depth != t->c.depth || cc.width != t->c.width ||
	    cc.hidden != t->c.hidden || cc.batch != t->c.batch ||
	    cc.shard != t->c.shard ||
	    cc.patch != t->c.patch || cc.mmselfsup != t->c.mmselfsup) {
		snprintf(err, errlen, "%s: a %s (width %d, neck %d, batch %d, "
		    "shard %d, patch %d) run, not this one's", ckpt_path(c),
		    train_arch_name(&cc), cc.width, cc.hidden, cc.batch,
		    cc.shard, cc.patch);
		return -1;
	}
	if (!step || parse_ll(step, 0, LLONG_MAX, &s, &es) < 0) {
		snprintf(err, errlen, "%s: bad \"step\" metadata",
		    ckpt_path(c));
		return -1;
	}
	if (resnet_load(t->net, c, "", e, sizeof(e)) < 0 ||
	    relloc_ckpt_load(&t->rl, c, e, sizeof(e)) < 0 ||
	    !(m = ckpt_expect(c, "optim.momentum", CKPT_F32, 1, shape, e,
	    sizeof(e)))) {
		snprintf(err, errlen, "%s", e);
		return -1;
	}
	memcpy(t->mom, m, t->nparams * sizeof(float));
	t->step = (uint64_t)s;
	return 0;
}

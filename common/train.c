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
	float *feat, *dfeat;      /* (rows, D) */
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
	o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:s, s:I, s:f, s:f, s:f, "
	    "s:f, s:f, s:f, s:f, s:i, s:i, s:o, s:I}",
	    "arch", train_arch_name(c),
	    "width", c->width,
	    "hidden", c->hidden,
	    "batch", c->batch,
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
	    "{s:s, s:i, s:i, s:i, s:i, s:s, s:I, s:F, s:F, s:F, s:F, s:F, "
	    "s:F, s:F, s:i, s:i, s:o, s:I}",
	    "arch", &arch, "width", &c->width, "hidden", &c->hidden,
	    "batch", &c->batch, "patch", &c->patch, "batching", &batching,
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

int
train_create(Trainer **out, const TrainConfig *c, char *err, size_t errlen)
{
	Trainer *t;
	ResNetConfig rc;
	RelLocConfig nc;
	int B = c->batch, P = c->patch, rows;
	size_t nneck, per = (size_t)P * P * 3;

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
	t->c = *c;
	t->nback = resnet_nparams(&rc);
	relloc_pairs_make(&t->pairs, c->mmselfsup ? RELLOC_SPLIT :
	    RELLOC_SHARED, B);
	rows = t->pairs.nrows;
	// layer4's channels (resnet.h): 512 (x 4 for a bottleneck) x width/64
	t->D = 8 * c->width * (rc.bottleneck ? 4 : 1);
	relloc_config_default(&nc, t->D, t->pairs.npairs);
	nc.hidden = c->hidden;
	nc.maxcentres = t->pairs.ncentres;
	nc.dropout = (float)c->dropout;
	nneck = relloc_nparams(&nc);
	t->nparams = t->nback + nneck;
	t->params = emalloc_aligned(t->nparams * sizeof(float));
	t->grads = emalloc_aligned(t->nparams * sizeof(float));
	t->mom = emalloc_aligned(t->nparams * sizeof(float));
	memset(t->mom, 0, t->nparams * sizeof(float));
	resnet_create(&t->net, &rc, t->params, t->grads, c->seed);
	assert(resnet_stage_channels(t->net, 4) == t->D);
	relloc_init(&t->rl, &nc, t->params + t->nback, t->grads + t->nback,
	    c->seed);
	t->groups[0] = (OptimGroup){ 0, t->nback, (float)c->wd };
	t->groups[1] = (OptimGroup){ t->nback, nneck, (float)c->neck_wd };

	if (resnet_ctx_create(&t->ctx[0], t->net, c->mmselfsup ? 8 * B :
	    9 * B, P, P, 1, err, errlen) < 0 || (c->mmselfsup &&
	    resnet_ctx_create(&t->ctx[1], t->net, 8 * B, P, P, 1, err,
	    errlen) < 0)) {
		train_free(t);
		return -1;
	}
	if (c->mmselfsup) {
		t->xa = emalloc_aligned(8 * (size_t)B * per * sizeof(float));
		t->xb = emalloc_aligned(8 * (size_t)B * per * sizeof(float));
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
	relloc_free(&t->rl);
	relloc_pairs_free(&t->pairs);
	free(t->params);
	free(t->grads);
	free(t->mom);
	free(t->xa);
	free(t->xb);
	free(t->feat);
	free(t->dfeat);
	free(t);
}

const TrainConfig *
train_config(const Trainer *t)
{
	return &t->c;
}

uint64_t
train_step_count(const Trainer *t)
{
	return t->step;
}

size_t
train_bytes(const Trainer *t)
{
	return resnet_ctx_bytes(t->ctx[0]) +
	    (t->ctx[1] ? resnet_ctx_bytes(t->ctx[1]) : 0) +
	    3 * t->nparams * sizeof(float);
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

/* MMSelfSup's inputs: xa = the neighbours in pair order, xb = each
 * pair's centre (relloc-protocols(7), MODEL). */
static void
split_inputs(Trainer *t, const float *x)
{
	size_t per = (size_t)t->c.patch * t->c.patch * 3;

	for (int i = 0; i < t->c.batch; i++)
		for (int k = 0; k < RELLOC_NCLASS; k++) {
			size_t j = (size_t)RELLOC_NCLASS * i + k;

			memcpy(t->xa + j * per, x + (9 * (size_t)i +
			    relloc_neighbours[k]) * per, per * sizeof(float));
			memcpy(t->xb + j * per, x + (9 * (size_t)i + 4) * per,
			    per * sizeof(float));
		}
}

void
train_step(Trainer *t, const float *x, double max_grad_norm,
    TrainStepInfo *info)
{
	int B = t->c.batch, n8 = 8 * B;
	size_t half = (size_t)n8 * t->D;
	double loss;

	memset(info, 0, sizeof(*info));
	info->lr = sched_lr(&t->c.sched, t->step);
	info->pairs = t->pairs.npairs;
	zero(t->grads, t->nparams);

	if (!t->c.mmselfsup) {
		resnet_forward(t->net, t->ctx[0], x, 9 * B, 1);
		resnet_gap(t->ctx[0], t->feat);
	} else {
		split_inputs(t, x);
		resnet_forward(t->net, t->ctx[0], t->xa, n8, 1);
		resnet_gap(t->ctx[0], t->feat);
		resnet_forward(t->net, t->ctx[1], t->xb, n8, 1);
		resnet_gap(t->ctx[1], t->feat + half);
	}
	loss = relloc_forward(&t->rl, t->feat, &t->pairs, 1, t->c.seed,
	    t->step, &info->correct);
	info->loss = loss;
	if (!isfinite(loss)) {
		info->status = TRAIN_NONFINITE;
		return;
	}
	relloc_backward(&t->rl, t->dfeat);
	if (!t->c.mmselfsup)
		resnet_backward(t->net, t->ctx[0], t->dfeat, NULL, NULL);
	else {
		resnet_backward(t->net, t->ctx[1], t->dfeat + half, NULL,
		    NULL);
		resnet_backward(t->net, t->ctx[0], t->dfeat, NULL, NULL);
	}
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
	    cc.patch != t->c.patch || cc.mmselfsup != t->c.mmselfsup) {
		snprintf(err, errlen, "%s: a %s (width %d, neck %d, batch %d, "
		    "patch %d) run, not this one's", ckpt_path(c),
		    train_arch_name(&cc), cc.width, cc.hidden, cc.batch,
		    cc.patch);
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

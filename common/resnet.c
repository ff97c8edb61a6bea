/*
 * resnet: torchvision ResNets over the layers.h kernels. See resnet.h.
 *
 * A network is a list of units (a convolution and its batch norm) and a
 * list of blocks (2 or 3 units, plus a downsample unit or none). The stem
 * is unit 0. Tensors are named and ordered as torchvision's state_dict.
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layers.h"
#include "common/resnet.h"
#include "common/rng.h"
#include "common/util.h"
#include "common/wino.h"

/* Columns of one im2col chunk, at most (floats); a chunk is at least one
 * image. Large enough for products that run near the BLAS peak (thousands
 * of rows); 4M to 16M measured the same, the smaller saves memory. */
#define CHUNK_FLOATS ((size_t)4 << 20)

typedef struct {
	int cin, cout, k, s, p;
	char conv[48], bn[48];   /* module paths: "layer1.0.conv1", "...bn1" */
	float *w, *dw;           /* (K, K, cin, cout) */
	float *gamma, *beta, *dgamma, *dbeta;  /* [cout] */
	float *rmean, *rvar;     /* [cout], buffers */
	int64_t *tracked;        /* num_batches_tracked */
	float *fbias;            /* [cout] after resnet_fold_bn, or NULL */
} Unit;

typedef struct {
	int n;        /* units on the main path: 2 (basic) or 3 (bottleneck) */
	int u[3];     /* their indices */
	int down;     /* downsample unit, or -1 */
	int stage;    /* 1..4 */
	int last;     /* the last block of its stage */
} Block;

struct ResNet {
	ResNetConfig cfg;
	size_t nparams, nbuffers;
	float *params, *grads, *buffers, *save;
	int own;                 /* params and grads allocated here */
	int64_t *tracked;
	int nunits, nblocks;
	Unit *units;
	Block *blocks;
	size_t ntensors;
	ResNetTensor *tensors;
	int stage_c[5];
	float *fold;             /* the units' fbias, after resnet_fold_bn */
};

/* memset on the threads: these clear tensors of up to 40 MB. */
static void
zero(float *p, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++)
		p[i] = 0;
}

/* ------------------------------------------------------------------------ */
/* configuration and layout */

int
resnet_config(ResNetConfig *cfg, int depth, int width, char *err,
    size_t errlen)
{
	static const int b18[4] = { 2, 2, 2, 2 }, b34[4] = { 3, 4, 6, 3 };
	const int *b;

	if (depth == 18)
		b = b18;
	else if (depth == 34 || depth == 50)
		b = b34;
	else {
		snprintf(err, errlen, "resnet depth %d: 18, 34 or 50 expected",
		    depth);
		return -1;
	}
	if (width < 1) {
		snprintf(err, errlen, "resnet width %d: positive expected",
		    width);
		return -1;
	}
	memset(cfg, 0, sizeof *cfg);
	cfg->bottleneck = depth == 50;
	memcpy(cfg->blocks, b, sizeof cfg->blocks);
	cfg->width = width;
	cfg->in_channels = 3;
	cfg->bn_momentum = 0.1f;
	cfg->bn_eps = 1e-5f;
	return 0;
}

static void
unit_set(Unit *u, const char *conv, const char *bn, int cin, int cout,
    int k, int s, int p)
{
	memset(u, 0, sizeof *u);
	snprintf(u->conv, sizeof u->conv, "%s", conv);
	snprintf(u->bn, sizeof u->bn, "%s", bn);
	u->cin = cin, u->cout = cout, u->k = k, u->s = s, u->p = p;
}

/*
 * The units and blocks of cfg in state_dict order (units/blocks NULL:
 * count only). Returns the number of units; *nblocks gets the blocks.
 */
static int
layout(const ResNetConfig *cfg, Unit *units, Block *blocks, int *nblocks,
    int stage_c[5])
{
	int nu = 0, nb = 0, exp = cfg->bottleneck ? 4 : 1;
	int inplanes = cfg->width;
	char a[48], b[48];

	if (units != NULL)
		unit_set(&units[0], "conv1", "bn1", cfg->in_channels,
		    cfg->width, 7, 2, 3);
	nu = 1;
	stage_c[0] = cfg->width;
	for (int st = 1; st <= 4; st++) {
		int planes = cfg->width << (st - 1);

		for (int i = 0; i < cfg->blocks[st - 1]; i++) {
			int stride = st > 1 && i == 0 ? 2 : 1;
			Block *bl = blocks != NULL ? &blocks[nb] : NULL;
			char pre[32];

			snprintf(pre, sizeof pre, "layer%d.%d", st, i);
			if (bl != NULL) {
				bl->stage = st;
				bl->last = i == cfg->blocks[st - 1] - 1;
				bl->n = cfg->bottleneck ? 3 : 2;
				bl->down = -1;
			}
			for (int j = 0; j < (cfg->bottleneck ? 3 : 2); j++) {
				int cin, cout, k, s;

				if (cfg->bottleneck) {
					cin = j == 0 ? inplanes : planes;
					cout = j == 2 ? planes * exp : planes;
					k = j == 1 ? 3 : 1;
					s = j == 1 ? stride : 1;
				} else {
					cin = j == 0 ? inplanes : planes;
					cout = planes;
					k = 3;
					s = j == 0 ? stride : 1;
				}
				if (units != NULL) {
					snprintf(a, sizeof a, "%s.conv%d", pre,
					    j + 1);
					snprintf(b, sizeof b, "%s.bn%d", pre,
					    j + 1);
					unit_set(&units[nu], a, b, cin, cout,
					    k, s, k / 2);
				}
				if (bl != NULL)
					bl->u[j] = nu;
				nu++;
			}
			if (stride != 1 || inplanes != planes * exp) {
				if (units != NULL) {
					snprintf(a, sizeof a,
					    "%s.downsample.0", pre);
					snprintf(b, sizeof b,
					    "%s.downsample.1", pre);
					unit_set(&units[nu], a, b, inplanes,
					    planes * exp, 1, stride, 0);
				}
				if (bl != NULL)
					bl->down = nu;
				nu++;
			}
			inplanes = planes * exp;
			nb++;
		}
		stage_c[st] = planes * exp;
	}
	*nblocks = nb;
	return nu;
}

size_t
resnet_nparams(const ResNetConfig *cfg)
{
	int nb, nu, c[5];
	Unit *u;
	size_t n = 0;

	nu = layout(cfg, NULL, NULL, &nb, c);
	u = emalloc(nu * sizeof *u);
	layout(cfg, u, NULL, &nb, c);
	for (int i = 0; i < nu; i++)
		n += (size_t)u[i].k * u[i].k * u[i].cin * u[i].cout +
		    2 * (size_t)u[i].cout;
	free(u);
	return n;
}

static ResNetTensor *
tensor_add(ResNet *net, const char *path, const char *leaf, CkptDtype dt,
    int ndim, const int64_t *shape, void *data, float *grad)
{
	ResNetTensor *t = &net->tensors[net->ntensors++];

	snprintf(t->name, sizeof t->name, "%s.%s", path, leaf);
	t->dtype = dt;
	t->ndim = ndim;
	memset(t->shape, 0, sizeof t->shape);
	memcpy(t->shape, shape, ndim * sizeof *shape);
	t->data = data;
	t->grad = grad;
	t->conv = 0;
	return t;
}

void
resnet_create(ResNet **out, const ResNetConfig *cfg, float *params,
    float *grads, uint64_t seed)
{
	ResNet *net = ecalloc(1, sizeof *net);
	size_t np = 0, nbuf = 0;

	net->cfg = *cfg;
	net->nunits = layout(cfg, NULL, NULL, &net->nblocks, net->stage_c);
	net->units = ecalloc(net->nunits, sizeof *net->units);
	net->blocks = ecalloc(net->nblocks, sizeof *net->blocks);
	layout(cfg, net->units, net->blocks, &net->nblocks, net->stage_c);
	net->nparams = resnet_nparams(cfg);
	for (int i = 0; i < net->nunits; i++)
		nbuf += 2 * (size_t)net->units[i].cout;
	net->nbuffers = nbuf;
	assert((params == NULL) == (grads == NULL));
	net->own = params == NULL;
	net->params = params != NULL ? params :
	    emalloc_aligned(net->nparams * sizeof(float));
	net->grads = grads != NULL ? grads :
	    emalloc_aligned(net->nparams * sizeof(float));
	net->buffers = emalloc_aligned(nbuf * sizeof(float));
	net->tracked = ecalloc(net->nunits, sizeof *net->tracked);
	net->tensors = ecalloc((size_t)net->nunits * 6,
	    sizeof *net->tensors);
	nbuf = 0;
	for (int i = 0; i < net->nunits; i++) {
		Unit *u = &net->units[i];
		size_t nw = (size_t)u->k * u->k * u->cin * u->cout;
		int64_t ws[4] = { u->cout, u->cin, u->k, u->k }, cs[1] = { u->cout };

		u->w = net->params + np, u->dw = net->grads + np;
		np += nw;
		u->gamma = net->params + np, u->dgamma = net->grads + np;
		np += u->cout;
		u->beta = net->params + np, u->dbeta = net->grads + np;
		np += u->cout;
		u->rmean = net->buffers + nbuf;
		nbuf += u->cout;
		u->rvar = net->buffers + nbuf;
		nbuf += u->cout;
		u->tracked = &net->tracked[i];
		tensor_add(net, u->conv, "weight", CKPT_F32, 4, ws, u->w,
		    u->dw)->conv = 1;
		tensor_add(net, u->bn, "weight", CKPT_F32, 1, cs, u->gamma,
		    u->dgamma);
		tensor_add(net, u->bn, "bias", CKPT_F32, 1, cs, u->beta,
		    u->dbeta);
		tensor_add(net, u->bn, "running_mean", CKPT_F32, 1, cs,
		    u->rmean, NULL);
		tensor_add(net, u->bn, "running_var", CKPT_F32, 1, cs, u->rvar,
		    NULL);
		tensor_add(net, u->bn, "num_batches_tracked", CKPT_I64, 0, cs,
		    u->tracked, NULL);
	}
	assert(np == net->nparams && nbuf == net->nbuffers);

	/* MMSelfSup's init: Kaiming normal (fan_out, relu) on convs, BN 1/0 */
	for (int i = 0; i < net->nunits; i++) {
		Unit *u = &net->units[i];
		size_t nw = (size_t)u->k * u->k * u->cin * u->cout;
		double std = sqrt(2.0 / ((double)u->cout * u->k * u->k));
		Rng g;

		rng_init(&g, seed, RNG_STREAM_INIT, (uint64_t)i * 6);
		for (size_t j = 0; j < nw; j++)
			u->w[j] = (float)(std * rng_normal(&g));
		for (int c = 0; c < u->cout; c++) {
			u->gamma[c] = 1, u->beta[c] = 0;
			u->rmean[c] = 0, u->rvar[c] = 1;
		}
	}
	resnet_zero_grad(net);
	*out = net;
}

void
resnet_free(ResNet *net)
{
	if (net == NULL)
		return;
	if (net->own) {
		free(net->params);
		free(net->grads);
	}
	free(net->buffers);
	free(net->tracked);
	free(net->units);
	free(net->blocks);
	free(net->tensors);
	free(net->save);
	free(net->fold);
	free(net);
}

const ResNetConfig *
resnet_cfg(const ResNet *net)
{
	return &net->cfg;
}

float *
resnet_params(ResNet *net)
{
	return net->params;
}

float *
resnet_grads(ResNet *net)
{
	return net->grads;
}

int
resnet_stage_channels(const ResNet *net, int s)
{
	assert(s >= 0 && s <= 4);
	return net->stage_c[s];
}

size_t
resnet_ntensors(const ResNet *net)
{
	return net->ntensors;
}

const ResNetTensor *
resnet_tensor(const ResNet *net, size_t i)
{
	assert(i < net->ntensors);
	return &net->tensors[i];
}

void
resnet_zero_grad(ResNet *net)
{
	zero(net->grads, net->nparams);
}

/* ------------------------------------------------------------------------ */
/* checkpoints */

/* (OC, C, K, K) <-> (K, K, C, OC) */
static void
oihw_to_hwio(float *dst, const float *src, int OC, int C, int K)
{
	for (int o = 0; o < OC; o++)
		for (int c = 0; c < C; c++)
			for (int k = 0; k < K * K; k++)
				dst[((size_t)k * C + c) * OC + o] =
				    src[((size_t)o * C + c) * K * K + k];
}

static void
hwio_to_oihw(float *dst, const float *src, int OC, int C, int K)
{
	for (int o = 0; o < OC; o++)
		for (int c = 0; c < C; c++)
			for (int k = 0; k < K * K; k++)
				dst[((size_t)o * C + c) * K * K + k] =
				    src[((size_t)k * C + c) * OC + o];
}

static size_t
tensor_count(const ResNetTensor *t)
{
	size_t n = 1;

	for (int d = 0; d < t->ndim; d++)
		n *= (size_t)t->shape[d];
	return n;
}

/*
 * The data of tensor prefix + path.leaf in c if it has dtype and shape,
 * else NULL with ckpt_expect's message. A scalar I64 counter
 * (num_batches_tracked) may come in any one-element shape.
 */
static const void *
expect_tensor(const Ckpt *c, const char *prefix, const char *name,
    CkptDtype dt, int ndim, const int64_t *shape, char *err, size_t errlen)
{
	const CkptTensor *f;
	char full[160];

	snprintf(full, sizeof full, "%s%s", prefix, name);
	if (ndim == 0 && dt == CKPT_I64 && (f = ckpt_find(c, full)) != NULL &&
	    f->dtype == CKPT_I64 && f->count == 1)
		return f->data;
	return ckpt_expect(c, full, dt, ndim, shape, err, errlen);
}

int
resnet_check(const ResNetConfig *cfg, const Ckpt *c, const char *prefix,
    char *err, size_t errlen)
{
	static const char *bn[] = { "weight", "bias", "running_mean",
	    "running_var" };
	int nb, nu, sc[5], ok = 1;
	char name[96];
	Unit *u;

	nu = layout(cfg, NULL, NULL, &nb, sc);
	u = emalloc(nu * sizeof *u);
	layout(cfg, u, NULL, &nb, sc);
	for (int i = 0; ok && i < nu; i++) {
		int64_t ws[4] = { u[i].cout, u[i].cin, u[i].k, u[i].k };
		int64_t cs[1] = { u[i].cout };

		snprintf(name, sizeof name, "%s.weight", u[i].conv);
		ok = expect_tensor(c, prefix, name, CKPT_F32, 4, ws, err,
		    errlen) != NULL;
		for (size_t j = 0; ok && j < RL_NELEM(bn); j++) {
			snprintf(name, sizeof name, "%s.%s", u[i].bn, bn[j]);
			ok = expect_tensor(c, prefix, name, CKPT_F32, 1, cs,
			    err, errlen) != NULL;
		}
		snprintf(name, sizeof name, "%s.num_batches_tracked", u[i].bn);
		ok = ok && expect_tensor(c, prefix, name, CKPT_I64, 0, NULL,
		    err, errlen) != NULL;
	}
	free(u);
	return ok ? 0 : -1;
}

int
resnet_load(ResNet *net, const Ckpt *c, const char *prefix, char *err,
    size_t errlen)
{
	for (size_t i = 0; i < net->ntensors; i++) {
		ResNetTensor *t = &net->tensors[i];
		const void *src;

		src = expect_tensor(c, prefix, t->name, t->dtype, t->ndim,
		    t->shape, err, errlen);
		if (src == NULL)
			return -1;
		if (t->conv)
			oihw_to_hwio(t->data, src, (int)t->shape[0],
			    (int)t->shape[1], (int)t->shape[2]);
		else
			memcpy(t->data, src, tensor_count(t) *
			    ckpt_dtype_size(t->dtype));
	}
	return 0;
}

int
resnet_add_to_writer(ResNet *net, CkptWriter *w, const char *prefix,
    char *err, size_t errlen)
{
	char name[160];
	size_t off = 0;

	if (net->save == NULL)
		net->save = emalloc(net->nparams * sizeof(float));
	for (size_t i = 0; i < net->ntensors; i++) {
		ResNetTensor *t = &net->tensors[i];
		const void *data = t->data;

		if (t->conv) {
			float *dst = net->save + off;

			hwio_to_oihw(dst, t->data, (int)t->shape[0],
			    (int)t->shape[1], (int)t->shape[2]);
			off += tensor_count(t);
			data = dst;
		}
		snprintf(name, sizeof name, "%s%s", prefix, t->name);
		if (ckpt_writer_add(w, name, t->dtype, t->ndim, t->shape, data,
		    err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* contexts */

typedef struct {
	float *z, *a;           /* conv output; batch-norm output */
	float *mean, *invstd;   /* batch statistics [cout] */
	ConvShape s;            /* at maxB */
	const float *wU;        /* folded weights as wino_weights transformed
	                         * them, or NULL (see ctx_wino_weights) */
} UnitCtx;

struct ResNetCtx {
	const ResNet *net;
	int maxB, H, W, training;
	int B, bn_train, fresh;  /* the last forward */
	const float *inp;
	const float *dgap;       /* resnet_backward's arguments */
	const float *const *dstage;
	float *dinput;
	int h[5], w[5];          /* stage output sides */
	int mph, mpw;            /* max-pool output */
	UnitCtx *uc;
	float **bout;            /* block outputs */
	float *mp, *stage[5];
	uint8_t *mparg;      /* max-pool winners (training only) */
	float *g0, *g1, *da;     /* backward: ping-pong gradients, d(a) */
	float *work;
	size_t nwork;
	int team;                /* threads of a team (1: none; see Mate) */
	int cmax;                /* channels of the widest batch norm */
	double *tsums;           /* the team's batch-norm sums */
	float *dwpart[2];        /* weight gradients of threads 1.., 2 rounds */
	size_t maxw;             /* floats of the largest convolution weight */
	float *mem;
	size_t bytes;
	float *wino;             /* the units' wU */
};

/* Two passes over the same plan: count (base NULL), then hand out. */
typedef struct {
	float *base;
	size_t used;
} Arena;

static float *
take(Arena *a, size_t n)
{
	float *p = a->base != NULL ? a->base + a->used : NULL;

	a->used += (n + 15) / 16 * 16;  /* 64-byte aligned pieces */
	return p;
}

static int
side(int h, int k, int s, int p)
{
	return (h + 2 * p - k) / s + 1;
}

/* Images per im2col chunk for a batch of B (see CHUNK_FLOATS). */
static int
plan_chunk(const ConvShape *s, int B)
{
	size_t per = (size_t)s->OH * s->OW * s->K * s->K * s->C;
	size_t chunk = RL_MAX((size_t)1, CHUNK_FLOATS / per);

	return (int)RL_MIN(chunk, (size_t)B);
}

/* conv_work_floats as a team's thread sees it: its kernels alone on it. */
static size_t
work_alone(const ConvShape *s, int chunk)
{
	size_t n = 0;

#pragma omp parallel num_threads(1)
	{
		omp_set_num_threads(1);
		n = conv_work_floats(s, chunk);
	}
	return n;
}

/* Lay out every buffer of ctx in a (pass 1 counts, pass 2 assigns). */
static void
ctx_plan(ResNetCtx *ctx, Arena *ar)
{
	const ResNet *net = ctx->net;
	int B = ctx->maxB, tr = ctx->training;
	size_t tmax[3] = { 0, 0, 0 }, tdown = 0, pmax = 0, dmax = 0;
	size_t nwork_t = 0;  /* a team thread's workspace */
	float *t[3], *td, *p[2];
	int h = ctx->H, w = ctx->W, pp = 0;

	/* geometry, and the largest tensor at each temporary's use */
	{
		const Unit *u = &net->units[0];

		ctx->uc[0].s = conv_shape(B, h, w, u->cin, u->cout, u->k, u->s,
		    u->p);
		ctx->h[0] = ctx->uc[0].s.OH, ctx->w[0] = ctx->uc[0].s.OW;
		ctx->mph = side(ctx->h[0], 3, 2, 1);
		ctx->mpw = side(ctx->w[0], 3, 2, 1);
		h = ctx->mph, w = ctx->mpw;
		pmax = (size_t)B * ctx->h[0] * ctx->w[0] * u->cout;
	}
	for (int bi = 0; bi < net->nblocks; bi++) {
		const Block *bl = &net->blocks[bi];
		int hh = h, ww = w;

		for (int j = 0; j < bl->n; j++) {
			const Unit *u = &net->units[bl->u[j]];
			UnitCtx *c = &ctx->uc[bl->u[j]];
			size_t n;

			c->s = conv_shape(B, hh, ww, u->cin, u->cout, u->k,
			    u->s, u->p);
			hh = c->s.OH, ww = c->s.OW;
			n = (size_t)B * hh * ww * u->cout;
			tmax[j == bl->n - 1 ? 2 : j] =
			    RL_MAX(tmax[j == bl->n - 1 ? 2 : j], n);
			if (j > 0)  /* d(a) of the unit before */
				dmax = RL_MAX(dmax, (size_t)B * c->s.H *
				    c->s.W * c->s.C);
		}
		if (bl->down >= 0) {
			const Unit *u = &net->units[bl->down];

			ctx->uc[bl->down].s = conv_shape(B, h, w, u->cin,
			    u->cout, 1, u->s, 0);
			tdown = RL_MAX(tdown, (size_t)B * hh * ww * u->cout);
		}
		pmax = RL_MAX(pmax, (size_t)B * h * w *
		    net->units[bl->u[0]].cin);
		pmax = RL_MAX(pmax, (size_t)B * hh * ww *
		    net->units[bl->u[bl->n - 1]].cout);
		h = hh, w = ww;
		if (bl->last)
			ctx->h[bl->stage] = h, ctx->w[bl->stage] = w;
	}

	/* shared temporaries */
	for (int j = 0; j < 3; j++)
		t[j] = take(ar, tr ? 0 : tmax[j]);
	td = take(ar, tdown);
	p[0] = take(ar, tr ? 0 : pmax);
	p[1] = take(ar, tr ? 0 : pmax);

	/* the stem */
	{
		UnitCtx *c = &ctx->uc[0];
		size_t n = (size_t)B * ctx->h[0] * ctx->w[0] * c->s.OC;

		ctx->stage[0] = take(ar, n);
		c->a = ctx->stage[0];
		c->z = tr ? take(ar, n) : c->a;
		c->mean = take(ar, c->s.OC);
		c->invstd = take(ar, c->s.OC);
		ctx->mp = take(ar, (size_t)B * ctx->mph * ctx->mpw * c->s.OC);
		ctx->mparg = (uint8_t *)take(ar, tr ? ((size_t)B * ctx->mph *
		    ctx->mpw * c->s.OC + 3) / 4 : 0);
	}
	for (int bi = 0; bi < net->nblocks; bi++) {
		const Block *bl = &net->blocks[bi];
		const UnitCtx *lc = &ctx->uc[bl->u[bl->n - 1]];
		size_t nout = (size_t)B * lc->s.OH * lc->s.OW * lc->s.OC;

		if (tr || bl->last)
			ctx->bout[bi] = take(ar, nout);
		else {
			ctx->bout[bi] = p[pp];
			pp ^= 1;
		}
		if (bl->last)
			ctx->stage[bl->stage] = ctx->bout[bi];
		for (int j = 0; j < bl->n; j++) {
			UnitCtx *c = &ctx->uc[bl->u[j]];
			size_t n = (size_t)B * c->s.OH * c->s.OW * c->s.OC;
			int last = j == bl->n - 1;

			if (tr) {
				c->z = take(ar, n);
				c->a = last ? ctx->bout[bi] : take(ar, n);
			} else {
				c->z = t[last ? 2 : j];
				c->a = last ? ctx->bout[bi] : c->z;
			}
			c->mean = take(ar, c->s.OC);
			c->invstd = take(ar, c->s.OC);
		}
		if (bl->down >= 0) {
			UnitCtx *c = &ctx->uc[bl->down];
			size_t n = (size_t)B * c->s.OH * c->s.OW * c->s.OC;

			c->z = tr ? take(ar, n) : td;
			c->a = td;
			c->mean = take(ar, c->s.OC);
			c->invstd = take(ar, c->s.OC);
		}
	}
	if (tr) {
		ctx->g0 = take(ar, pmax);
		ctx->g1 = take(ar, pmax);
		ctx->da = take(ar, dmax);
	}

	/* the im2col workspace (and the weight-gradient split's scratch):
	 * the whole batch's on all threads, or, in a team, n parts of a
	 * thread's with its share of the images on that thread alone */
	ctx->team = RL_MAX(1, RL_MIN(omp_get_max_threads(), B));
	ctx->nwork = ctx->maxw = 0;
	ctx->cmax = 1;
	for (int i = 0; i < net->nunits; i++) {
		const ConvShape *s = &ctx->uc[i].s;
		ConvShape st = *s;

		ctx->nwork = RL_MAX(ctx->nwork, conv_work_floats(s,
		    plan_chunk(s, B)));
		st.B = (B + ctx->team - 1) / ctx->team;
		if (ctx->team > 1)
			nwork_t = RL_MAX(nwork_t, work_alone(&st,
			    plan_chunk(&st, st.B)));
		ctx->maxw = RL_MAX(ctx->maxw, (size_t)s->K * s->K * s->C *
		    s->OC);
		ctx->cmax = RL_MAX(ctx->cmax, s->OC);
	}
	ctx->nwork = RL_MAX(ctx->nwork, ctx->team * nwork_t);
	ctx->work = take(ar, ctx->nwork);
	if (ctx->team > 1) {
		size_t nd = tr ? (ctx->team - 1) * ctx->maxw : 0;

		ctx->tsums = (double *)(void *)take(ar, 2 * TEAM_SUMS(
		    ctx->team, ctx->cmax));
		ctx->dwpart[0] = take(ar, nd);
		ctx->dwpart[1] = take(ar, nd);
	}
}

int
resnet_ctx_create(ResNetCtx **out, const ResNet *net, int maxB, int H,
    int W, int training, char *err, size_t errlen)
{
	ResNetCtx *ctx;
	Arena ar = { NULL, 0 };

	*out = NULL;
	if (maxB < 1 || H < 1 || W < 1) {
		snprintf(err, errlen, "resnet context: batch %d of %dx%d: "
		    "positive sizes expected", maxB, H, W);
		return -1;
	}
	if (training && maxB < 2) {
		snprintf(err, errlen, "resnet context: a training batch needs "
		    "at least 2 inputs for batch statistics");
		return -1;
	}
	ctx = ecalloc(1, sizeof *ctx);
	ctx->net = net;
	ctx->maxB = maxB, ctx->H = H, ctx->W = W, ctx->training = training;
	ctx->uc = ecalloc(net->nunits, sizeof *ctx->uc);
	ctx->bout = ecalloc(net->nblocks, sizeof *ctx->bout);
	ctx_plan(ctx, &ar);
	ctx->bytes = ar.used * sizeof(float);
	ctx->mem = emalloc_aligned(ctx->bytes);
	ar.base = ctx->mem;
	ar.used = 0;
	ctx_plan(ctx, &ar);
	if (ctx->team > 1 && training) {  /* see unit_conv_backward */
		size_t nd = (ctx->team - 1) * ctx->maxw;

		memset(ctx->dwpart[0], 0, nd * sizeof(float));
		memset(ctx->dwpart[1], 0, nd * sizeof(float));
	}
	*out = ctx;
	return 0;
}

size_t
resnet_ctx_need(const ResNet *net, int maxB, int H, int W, int training)
{
	ResNetCtx ctx = { 0 };
	Arena ar = { NULL, 0 };

	ctx.net = net;
	ctx.maxB = maxB, ctx.H = H, ctx.W = W, ctx.training = training;
	ctx.uc = ecalloc(net->nunits, sizeof *ctx.uc);
	ctx.bout = ecalloc(net->nblocks, sizeof *ctx.bout);
	ctx_plan(&ctx, &ar);
	free(ctx.uc);
	free(ctx.bout);
	return ar.used * sizeof(float);
}

void
resnet_ctx_free(ResNetCtx *ctx)
{
	if (ctx == NULL)
		return;
	free(ctx->mem);
	free(ctx->wino);
	free(ctx->uc);
	free(ctx->bout);
	free(ctx);
}

size_t
resnet_ctx_bytes(const ResNetCtx *ctx)
{
	return ctx->bytes;
}

double
resnet_ctx_macs(const ResNetCtx *ctx)
{
	double macs = 0;

	for (int i = 0; i < ctx->net->nunits; i++) {
		const ConvShape *s = &ctx->uc[i].s;

		macs += (double)s->OH * s->OW * s->K * s->K * s->C * s->OC;
	}
	return macs;
}

/* ------------------------------------------------------------------------ */
/* forward */

/*
 * A thread's part of a forward or backward. With several threads (the
 * context's team, when the batch has an image for each), the threads run
 * as a team (layers.h): each takes images b0..b1-1 through every layer
 * with single-threaded kernels and its own part of the workspace, and the
 * team meets at the training batch norms and at each weight gradient
 * (unit_conv_backward). Alone (t = 0, n = 1), a thread has the batch and
 * the kernels share out their own loops. A team spares the hundreds of
 * fork-joins of a step and the splitting of every product: on 2 cores
 * (Zen 4), with blas_init's spin count, a ResNet-50 training step of 144
 * patches ran 1.05-1.25 times faster than with the kernels' own splits
 * (median 1.11, interleaved runs), and one MPI rank of 2 threads as fast
 * as 2 ranks of one. Evaluation at 224 px gained nothing measurable: its
 * products are large enough to split well.
 */
typedef struct {
	Team tm;
	int b0, b1;        /* images */
	float *work;
	size_t nwork;
	unsigned dwround;  /* weight gradients so far (dwpart's round) */
} Mate;

static Mate
mate(const ResNetCtx *ctx, int t, int n, int B)
{
	Mate m;

	m.tm.t = t, m.tm.n = n, m.tm.cmax = ctx->cmax;
	m.tm.sums = ctx->tsums, m.tm.round = 0;
	m.b0 = (int)((long)B * t / n), m.b1 = (int)((long)B * (t + 1) / n);
	m.work = ctx->work + (n > 1 ? (size_t)t * (ctx->nwork / n) : 0);
	m.nwork = n > 1 ? ctx->nwork / n : ctx->nwork;
	m.dwround = 0;
	return m;
}

/* Run f(net, ctx, m) as a team when B allows it, else on one thread. */
static void
run(void (*f)(ResNet *, ResNetCtx *, Mate *), ResNet *net, ResNetCtx *ctx)
{
	int n = RL_MIN(ctx->team, ctx->B);

	if (n > 1) {
#pragma omp parallel num_threads(n)
		{
			int nn = omp_get_num_threads();
			Mate m = mate(ctx, omp_get_thread_num(), nn, ctx->B);

			omp_set_num_threads(1);  /* nested kernels: this thread */
			f(net, ctx, &m);
		}
		return;
	}
	{
		Mate m = mate(ctx, 0, 1, ctx->B);

		f(net, ctx, &m);
	}
}

/*
 * Wait for the team. The buffers a network reuses (the ping-pong block
 * outputs and the temporaries of evaluation, d(a) and the gradients of
 * the backward) change their layout from one stage, or one unit, to the
 * next: a thread's images then sit at other offsets, and a thread ahead
 * would overwrite what one behind still reads. Every block starts with
 * this, and so does each reuse of d(a) within a block.
 */
static void
team_wait(const Mate *m)
{
	if (m->tm.n > 1) {
#pragma omp barrier
	}
}

/* Floats per image of a unit's input and output. */
static size_t
per_in(const ConvShape *s)
{
	return (size_t)s->H * s->W * s->C;
}

static size_t
per_out(const ConvShape *s)
{
	return (size_t)s->OH * s->OW * s->OC;
}

/* z = conv(x); a = bn(z) [+ res] [relu], for m's images; x and res are
 * the whole batch's. */
static void
unit_forward(ResNet *net, ResNetCtx *ctx, Mate *m, int i, const float *x,
    const float *res, int relu)
{
	Unit *u = &net->units[i];
	UnitCtx *c = &ctx->uc[i];
	ConvShape s = c->s;
	size_t in = per_in(&s), on = per_out(&s);
	long per = (long)s.OH * s.OW, M = ctx->B * per;
	long r0 = m->b0 * per, r1 = m->b1 * per;
	const float *mres = res != NULL ? res + m->b0 * on : NULL;

	s.B = m->b1 - m->b0;
	x += m->b0 * in;
	if (u->fbias != NULL) {
		ConvPost post = { u->fbias, mres, relu };

		assert(!ctx->bn_train);
		conv_forward_post(c->a + m->b0 * on, x, u->w, c->wU, &post,
		    &s, m->work, m->nwork);
		return;
	}
	conv_forward(c->z + m->b0 * on, x, u->w, &s, m->work, m->nwork);
	if (!ctx->bn_train)
		batchnorm_forward_eval(c->a + m->b0 * on, c->z + m->b0 * on,
		    mres, u->gamma, u->beta, u->rmean, u->rvar, (int)(r1 - r0),
		    u->cout, net->cfg.bn_eps, relu);
	else if (m->tm.n > 1)
		batchnorm_forward_team(&m->tm, c->a, c->mean, c->invstd,
		    u->rmean, u->rvar, c->z, res, u->gamma, u->beta, r0, r1, M,
		    u->cout, net->cfg.bn_momentum, net->cfg.bn_eps, relu);
	else
		batchnorm_forward(c->a, c->mean, c->invstd, u->rmean, u->rvar,
		    c->z, res, u->gamma, u->beta, (int)M, u->cout,
		    net->cfg.bn_momentum, net->cfg.bn_eps, relu);
	if (ctx->bn_train && m->tm.t == 0)
		(*u->tracked)++;
}

static void
forward_run(ResNet *net, ResNetCtx *ctx, Mate *m)
{
	const Unit *stem = &net->units[0];
	size_t mpi = (size_t)ctx->mph * ctx->mpw * stem->cout;
	const float *x;

	unit_forward(net, ctx, m, 0, ctx->inp, NULL, 1);
	maxpool_forward(ctx->mp + m->b0 * mpi, ctx->training ? ctx->mparg +
	    m->b0 * mpi : NULL, ctx->stage[0] + m->b0 * per_out(
	    &ctx->uc[0].s), m->b1 - m->b0, ctx->h[0], ctx->w[0], stem->cout);
	x = ctx->mp;
	for (int bi = 0; bi < net->nblocks; bi++) {
		const Block *bl = &net->blocks[bi];
		const float *res = x, *in = x;

		team_wait(m);
		if (bl->down >= 0) {
			unit_forward(net, ctx, m, bl->down, x, NULL, 0);
			res = ctx->uc[bl->down].a;
		}
		for (int j = 0; j < bl->n; j++) {
			int last = j == bl->n - 1;

			unit_forward(net, ctx, m, bl->u[j], in, last ? res :
			    NULL, 1);
			in = ctx->uc[bl->u[j]].a;
		}
		x = ctx->bout[bi];
	}
}

/*
 * The Winograd transforms of the folded weights of every unit wino
 * computes, for ctx's sides: a folded network's weights no longer change
 * (resnet_fold_bn), so its forwards skip transforming them every batch.
 */
static void
ctx_wino_weights(const ResNet *net, ResNetCtx *ctx)
{
	size_t n = 0;
	float *U;

	for (int i = 0; i < net->nunits; i++)
		if (wino_applies(&ctx->uc[i].s))
			n += wino_weight_floats(&ctx->uc[i].s);
	ctx->wino = U = emalloc_aligned(RL_MAX(n, 1) * sizeof *U);
	for (int i = 0; i < net->nunits; i++) {
		UnitCtx *c = &ctx->uc[i];

		if (!wino_applies(&c->s))
			continue;
		wino_weights(U, net->units[i].w, &c->s);
		c->wU = U;
		U += wino_weight_floats(&c->s);
	}
}

void
resnet_forward(ResNet *net, ResNetCtx *ctx, const float *inp, int B,
    int bn_train)
{
	assert(ctx->net == net && B >= 1 && B <= ctx->maxB);
	assert(!bn_train || B >= 2);
	if (net->fold != NULL && ctx->wino == NULL)
		ctx_wino_weights(net, ctx);
	ctx->B = B, ctx->bn_train = bn_train, ctx->inp = inp, ctx->fresh = 1;
	run(forward_run, net, ctx);
}

void
resnet_fold_bn(ResNet *net)
{
	size_t n = 0;
	float eps = net->cfg.bn_eps, *sc;
	int cmax = 1;

	if (net->fold != NULL)
		return;
	for (int i = 0; i < net->nunits; i++) {
		n += net->units[i].cout;
		cmax = RL_MAX(cmax, net->units[i].cout);
	}
	net->fold = emalloc(n * sizeof *net->fold);
	sc = emalloc((size_t)cmax * sizeof *sc);  /* one unit's at a time */
	n = 0;
	for (int i = 0; i < net->nunits; i++) {
		Unit *u = &net->units[i];
		size_t nin = (size_t)u->k * u->k * u->cin;

		u->fbias = net->fold + n;
		n += u->cout;
		/* scale and shift as batchnorm_forward_eval computes them */
		for (int o = 0; o < u->cout; o++) {
			float is = (float)(1.0 / sqrt((double)u->rvar[o] + eps));

			sc[o] = u->gamma[o] * is;
			u->fbias[o] = u->beta[o] - u->rmean[o] * sc[o];
		}
		for (size_t j = 0; j < nin; j++)
			for (int o = 0; o < u->cout; o++)
				u->w[j * u->cout + o] *= sc[o];
	}
	free(sc);
}

const float *
resnet_stage(const ResNetCtx *ctx, int s, int *h, int *w, int *c)
{
	assert(s >= 0 && s <= 4);
	if (h != NULL)
		*h = ctx->h[s];
	if (w != NULL)
		*w = ctx->w[s];
	if (c != NULL)
		*c = ctx->net->stage_c[s];
	return ctx->stage[s];
}

void
resnet_gap(const ResNetCtx *ctx, float *feat)
{
	gap_forward(feat, ctx->stage[4], ctx->B, ctx->h[4], ctx->w[4],
	    ctx->net->stage_c[4]);
}

/* ------------------------------------------------------------------------ */
/* backward */

/* The batch norm of unit i backward for m's images, in place into its z
 * (which then holds the gradient of the conv output); relu: g (the whole
 * batch's) is the gradient after the unit's fused ReLU. */
static void
unit_bn_backward(ResNet *net, ResNetCtx *ctx, Mate *m, int i,
    const float *g, int relu)
{
	Unit *u = &net->units[i];
	UnitCtx *c = &ctx->uc[i];
	long per = (long)c->s.OH * c->s.OW, M = ctx->B * per;

	if (m->tm.n > 1)
		batchnorm_backward_team(&m->tm, c->z, u->dgamma, u->dbeta, g,
		    c->z, c->mean, c->invstd, u->gamma, u->beta, m->b0 * per,
		    m->b1 * per, M, u->cout, relu);
	else
		batchnorm_backward(c->z, u->dgamma, u->dbeta, g, c->z, c->mean,
		    c->invstd, u->gamma, u->beta, (int)M, u->cout, relu);
}

/*
 * The conv of unit i backward for m's images from the gradient in its z;
 * dx (the whole batch's) += d(input) unless NULL. In a team, thread 0
 * adds its part of the weight gradient to dw, the others add theirs to
 * their slots of dwpart, and after a barrier each thread adds its share
 * of the elements to dw in thread order and clears them in the slots:
 * the slots are zero whenever no unit uses them (zeroed when the context
 * is made), which spares a clearing pass on threads 1.. alone. Two rounds
 * alternate: a round's slots are used again only after the next round's
 * barrier, when every thread has finished adding them.
 */
static void
unit_conv_backward(ResNet *net, ResNetCtx *ctx, Mate *m, int i, float *dx,
    const float *x)
{
	Unit *u = &net->units[i];
	UnitCtx *c = &ctx->uc[i];
	ConvShape s = c->s;
	size_t nw = (size_t)s.K * s.K * s.C * s.OC, in = per_in(&s);
	int t = m->tm.t, n = m->tm.n;
	float *part = ctx->dwpart[m->dwround & 1], *dw = u->dw;

	s.B = m->b1 - m->b0;
	if (t > 0)
		dw = part + (size_t)(t - 1) * ctx->maxw;
	conv_backward(dx != NULL ? dx + m->b0 * in : NULL, dw, c->z + m->b0 *
	    per_out(&s), x + m->b0 * in, u->w, &s, m->work, m->nwork);
	if (n > 1) {
		size_t j0 = nw * t / n, j1 = nw * (t + 1) / n;

		m->dwround++;
#pragma omp barrier
		for (size_t j = j0; j < j1; j++) {
			float sum = u->dw[j];

			for (int v = 1; v < n; v++) {
				float *p = part + (size_t)(v - 1) * ctx->maxw + j;

				sum += *p;
				*p = 0;
			}
			u->dw[j] = sum;
		}
	}
}

static void
add_into(float *dst, const float *src, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

/*
 * Block bi backward for m's images: g holds d(block output) and may be
 * overwritten; the gradient of the block input is left in g (identity
 * shortcut) or in spare. Returns where. (Tensors are the whole batch's.)
 */
static float *
block_backward(ResNet *net, ResNetCtx *ctx, Mate *m, int bi, float *g,
    float *spare)
{
	const Block *bl = &net->blocks[bi];
	const float *x = bi == 0 ? ctx->mp : ctx->bout[bi - 1];
	const ConvShape *ls = &ctx->uc[bl->u[bl->n - 1]].s;
	const ConvShape *fs = &ctx->uc[bl->u[0]].s;
	size_t on = per_out(ls), in = per_in(fs);
	int nb = m->b1 - m->b0;
	float *dx = g;

	team_wait(m);
	relu_backward(g + m->b0 * on, g + m->b0 * on, ctx->bout[bi] + m->b0 *
	    on, nb * on);
	unit_bn_backward(net, ctx, m, bl->u[bl->n - 1], g, 0);
	if (bl->down >= 0) {
		unit_bn_backward(net, ctx, m, bl->down, g, 0);
		dx = spare;
		zero(dx + m->b0 * in, nb * in);
		unit_conv_backward(net, ctx, m, bl->down, dx, x);
	}
	for (int j = bl->n - 1; j >= 0; j--) {
		const ConvShape *s = &ctx->uc[bl->u[j]].s;

		if (j == 0) {
			unit_conv_backward(net, ctx, m, bl->u[0], dx, x);
			break;
		}
		if (j < bl->n - 1)
			team_wait(m);  /* d(a) of unit j + 1 read */
		zero(ctx->da + m->b0 * per_in(s), nb * per_in(s));
		unit_conv_backward(net, ctx, m, bl->u[j], ctx->da,
		    ctx->uc[bl->u[j - 1]].a);
		unit_bn_backward(net, ctx, m, bl->u[j - 1], ctx->da, 1);
	}
	return dx;
}

static void
backward_run(ResNet *net, ResNetCtx *ctx, Mate *m)
{
	int C4 = net->stage_c[4], nb = m->b1 - m->b0;
	size_t p4 = (size_t)ctx->h[4] * ctx->w[4] * C4;
	size_t p0 = (size_t)ctx->h[0] * ctx->w[0] * net->stage_c[0];
	size_t pm = (size_t)ctx->mph * ctx->mpw * net->stage_c[0];
	float *g = ctx->g0, *spare = ctx->g1, *dx;

	if (ctx->dgap != NULL)
		gap_backward(g + m->b0 * p4, ctx->dgap + (size_t)m->b0 * C4, nb,
		    ctx->h[4], ctx->w[4], C4);
	else
		zero(g + m->b0 * p4, nb * p4);
	for (int bi = net->nblocks - 1; bi >= 0; bi--) {
		const Block *bl = &net->blocks[bi];

		if (bl->last && ctx->dstage != NULL &&
		    ctx->dstage[bl->stage] != NULL) {
			int st = bl->stage;
			size_t ps = (size_t)ctx->h[st] * ctx->w[st] *
			    net->stage_c[st];

			add_into(g + m->b0 * ps, ctx->dstage[st] + m->b0 * ps,
			    nb * ps);
		}
		dx = block_backward(net, ctx, m, bi, g, spare);
		if (dx != g) {
			spare = g;
			g = dx;
		}
	}
	/* the stem: g = d(max-pool output) */
	team_wait(m);
	maxpool_backward(spare + m->b0 * p0, g + m->b0 * pm, ctx->mparg +
	    m->b0 * pm, nb, ctx->h[0], ctx->w[0], net->stage_c[0]);
	if (ctx->dstage != NULL && ctx->dstage[0] != NULL)
		add_into(spare + m->b0 * p0, ctx->dstage[0] + m->b0 * p0,
		    nb * p0);
	unit_bn_backward(net, ctx, m, 0, spare, 1);
	if (ctx->dinput != NULL) {
		size_t pi = per_in(&ctx->uc[0].s);

		zero(ctx->dinput + m->b0 * pi, nb * pi);
	}
	unit_conv_backward(net, ctx, m, 0, ctx->dinput, ctx->inp);
}

void
resnet_backward(ResNet *net, ResNetCtx *ctx, const float *dgap,
    const float *const *dstage, float *dinput)
{
	assert(ctx->training && ctx->bn_train && ctx->fresh);
	ctx->fresh = 0;
	ctx->dgap = dgap, ctx->dstage = dstage, ctx->dinput = dinput;
	run(backward_run, net, ctx);
}

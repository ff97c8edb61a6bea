/*
 * resnet: torchvision ResNets over the layers.h kernels. See resnet.h.
 *
 * A network is a list of units (a convolution and its batch norm) and a
 * list of blocks (2 or 3 units, plus a downsample unit or none). The stem
 * is unit 0. Tensors are named and ordered as torchvision's state_dict.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layers.h"
#include "common/resnet.h"
#include "common/rng.h"
#include "common/util.h"

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
} UnitCtx;

struct ResNetCtx {
	const ResNet *net;
	int maxB, H, W, training;
	int B, bn_train, fresh;  /* the last forward */
	const float *inp;
	int h[5], w[5];          /* stage output sides */
	int mph, mpw;            /* max-pool output */
	UnitCtx *uc;
	float **bout;            /* block outputs */
	float *mp, *stage[5];
	uint8_t *mparg;      /* max-pool winners (training only) */
	float *g0, *g1, *da;     /* backward: ping-pong gradients, d(a) */
	float *work;
	size_t nwork;
	float *mem;
	size_t bytes;
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

/* Lay out every buffer of ctx in a (pass 1 counts, pass 2 assigns). */
static void
ctx_plan(ResNetCtx *ctx, Arena *ar)
{
	const ResNet *net = ctx->net;
	int B = ctx->maxB, tr = ctx->training;
	size_t tmax[3] = { 0, 0, 0 }, tdown = 0, pmax = 0, dmax = 0;
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

	/* the im2col workspace (and the weight-gradient split's scratch) */
	ctx->nwork = 0;
	for (int i = 0; i < net->nunits; i++) {
		const ConvShape *s = &ctx->uc[i].s;
		size_t per = (size_t)s->OH * s->OW * s->K * s->K * s->C;
		size_t chunk = RL_MAX((size_t)1, CHUNK_FLOATS / per);

		if (chunk > (size_t)B)
			chunk = B;
		ctx->nwork = RL_MAX(ctx->nwork, conv_work_floats(s,
		    (int)chunk));
	}
	ctx->work = take(ar, ctx->nwork);
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

/* z = conv(x); a = bn(z) [+ res] [relu], for a batch of B. */
static void
unit_forward(ResNet *net, ResNetCtx *ctx, int i, const float *x, int B,
    const float *res, int relu)
{
	Unit *u = &net->units[i];
	UnitCtx *c = &ctx->uc[i];
	ConvShape s = c->s;
	int M;

	s.B = B;
	M = B * s.OH * s.OW;
	if (u->fbias != NULL) {
		ConvPost post = { u->fbias, res, relu };

		assert(!ctx->bn_train);
		conv_forward_post(c->a, x, u->w, &post, &s, ctx->work,
		    ctx->nwork);
		return;
	}
	conv_forward(c->z, x, u->w, &s, ctx->work, ctx->nwork);
	if (ctx->bn_train) {
		batchnorm_forward(c->a, c->mean, c->invstd, u->rmean, u->rvar,
		    c->z, res, u->gamma, u->beta, M, u->cout,
		    net->cfg.bn_momentum, net->cfg.bn_eps, relu);
		(*u->tracked)++;
	} else
		batchnorm_forward_eval(c->a, c->z, res, u->gamma, u->beta,
		    u->rmean, u->rvar, M, u->cout, net->cfg.bn_eps, relu);
}

void
resnet_forward(ResNet *net, ResNetCtx *ctx, const float *inp, int B,
    int bn_train)
{
	const float *x;

	assert(ctx->net == net && B >= 1 && B <= ctx->maxB);
	assert(!bn_train || B >= 2);
	ctx->B = B, ctx->bn_train = bn_train, ctx->inp = inp, ctx->fresh = 1;
	unit_forward(net, ctx, 0, inp, B, NULL, 1);
	maxpool_forward(ctx->mp, ctx->training ? ctx->mparg : NULL,
	    ctx->stage[0], B, ctx->h[0], ctx->w[0], net->units[0].cout);
	x = ctx->mp;
	for (int bi = 0; bi < net->nblocks; bi++) {
		const Block *bl = &net->blocks[bi];
		const float *res = x, *in = x;

		if (bl->down >= 0) {
			unit_forward(net, ctx, bl->down, x, B, NULL, 0);
			res = ctx->uc[bl->down].a;
		}
		for (int j = 0; j < bl->n; j++) {
			int last = j == bl->n - 1;

			unit_forward(net, ctx, bl->u[j], in, B, last ? res :
			    NULL, 1);
			in = ctx->uc[bl->u[j]].a;
		}
		x = ctx->bout[bi];
	}
}

void
resnet_fold_bn(ResNet *net)
{
	size_t n = 0;
	float eps = net->cfg.bn_eps;

	if (net->fold != NULL)
		return;
	for (int i = 0; i < net->nunits; i++)
		n += net->units[i].cout;
	net->fold = emalloc(n * sizeof *net->fold);
	n = 0;
	for (int i = 0; i < net->nunits; i++) {
		Unit *u = &net->units[i];
		size_t nin = (size_t)u->k * u->k * u->cin;

		u->fbias = net->fold + n;
		n += u->cout;
		/* scale and shift as batchnorm_forward_eval computes them */
		for (int o = 0; o < u->cout; o++) {
			float is = (float)(1.0 / sqrt((double)u->rvar[o] + eps));
			float sc = u->gamma[o] * is;

			u->fbias[o] = u->beta[o] - u->rmean[o] * sc;
			for (size_t j = 0; j < nin; j++)
				u->w[j * u->cout + o] *= sc;
		}
	}
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

/* The batch norm of unit i backward, in place into its z (which then holds
 * the gradient of the conv output); relu: g is the gradient after the
 * unit's fused ReLU. */
static void
unit_bn_backward(ResNet *net, ResNetCtx *ctx, int i, const float *g,
    int relu)
{
	Unit *u = &net->units[i];
	UnitCtx *c = &ctx->uc[i];
	int M = ctx->B * c->s.OH * c->s.OW;

	batchnorm_backward(c->z, u->dgamma, u->dbeta, g, c->z, c->mean,
	    c->invstd, u->gamma, u->beta, M, u->cout, relu);
}

/* The conv of unit i backward from the gradient in its z; dx += d(input)
 * unless NULL. */
static void
unit_conv_backward(ResNet *net, ResNetCtx *ctx, int i, float *dx,
    const float *x)
{
	Unit *u = &net->units[i];
	UnitCtx *c = &ctx->uc[i];
	ConvShape s = c->s;

	s.B = ctx->B;
	conv_backward(dx, u->dw, c->z, x, u->w, &s, ctx->work, ctx->nwork);
}

static void
add_into(float *dst, const float *src, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

/*
 * Block bi backward: g holds d(block output) and may be overwritten; the
 * gradient of the block input is left in g (identity shortcut) or in
 * spare. Returns where.
 */
static float *
block_backward(ResNet *net, ResNetCtx *ctx, int bi, float *g, float *spare)
{
	const Block *bl = &net->blocks[bi];
	const float *x = bi == 0 ? ctx->mp : ctx->bout[bi - 1];
	const UnitCtx *lc = &ctx->uc[bl->u[bl->n - 1]];
	const UnitCtx *fc = &ctx->uc[bl->u[0]];
	int B = ctx->B;
	size_t nout = (size_t)B * lc->s.OH * lc->s.OW * lc->s.OC;
	size_t nin = (size_t)B * fc->s.H * fc->s.W * fc->s.C;
	float *dx = g;

	relu_backward(g, g, ctx->bout[bi], nout);
	unit_bn_backward(net, ctx, bl->u[bl->n - 1], g, 0);
	if (bl->down >= 0) {
		unit_bn_backward(net, ctx, bl->down, g, 0);
		dx = spare;
		zero(dx, nin);
		unit_conv_backward(net, ctx, bl->down, dx, x);
	}
	for (int j = bl->n - 1; j >= 0; j--) {
		const UnitCtx *c = &ctx->uc[bl->u[j]];

		if (j == 0) {
			unit_conv_backward(net, ctx, bl->u[0], dx, x);
			break;
		}
		zero(ctx->da, (size_t)B * c->s.H * c->s.W * c->s.C);
		unit_conv_backward(net, ctx, bl->u[j], ctx->da,
		    ctx->uc[bl->u[j - 1]].a);
		unit_bn_backward(net, ctx, bl->u[j - 1], ctx->da, 1);
	}
	return dx;
}

void
resnet_backward(ResNet *net, ResNetCtx *ctx, const float *dgap,
    const float *const *dstage, float *dinput)
{
	int B = ctx->B, C4 = net->stage_c[4];
	size_t n4 = (size_t)B * ctx->h[4] * ctx->w[4] * C4;
	float *g = ctx->g0, *spare = ctx->g1, *dx;
	size_t n0 = (size_t)B * ctx->h[0] * ctx->w[0] * net->stage_c[0];

	assert(ctx->training && ctx->bn_train && ctx->fresh);
	ctx->fresh = 0;
	if (dgap != NULL)
		gap_backward(g, dgap, B, ctx->h[4], ctx->w[4], C4);
	else
		zero(g, n4);
	for (int bi = net->nblocks - 1; bi >= 0; bi--) {
		const Block *bl = &net->blocks[bi];

		if (bl->last && dstage != NULL && dstage[bl->stage] != NULL) {
			int s = bl->stage;

			add_into(g, dstage[s], (size_t)B * ctx->h[s] *
			    ctx->w[s] * net->stage_c[s]);
		}
		dx = block_backward(net, ctx, bi, g, spare);
		if (dx != g) {
			spare = g;
			g = dx;
		}
	}
	/* the stem: g = d(max-pool output) */
	maxpool_backward(spare, g, ctx->mparg, B, ctx->h[0], ctx->w[0],
	    net->stage_c[0]);
	if (dstage != NULL && dstage[0] != NULL)
		add_into(spare, dstage[0], n0);
	unit_bn_backward(net, ctx, 0, spare, 1);
	if (dinput != NULL)
		zero(dinput, (size_t)B * ctx->H * ctx->W *
		    net->cfg.in_channels);
	unit_conv_backward(net, ctx, 0, dinput, ctx->inp);
}

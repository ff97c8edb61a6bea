/* extract: models, batches of pooled features, the image loader, the
 * output files. See extract.h. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>

#include "common/extract.h"
#include "common/img.h"
#include "common/util.h"
#include "common/workers.h"

/* ------------------------------------------------------------------------ */
/* model */

static const struct {
	const char *name;
	int depth;
} archs[] = {
	{"resnet18", 18}, {"resnet34", 34}, {"resnet50", 50},
};

int
extract_arch_config(ResNetConfig *cfg, const char *arch, char *err,
    size_t errlen)
{
	for (size_t i = 0; i < RL_NELEM(archs); i++)
		if (strcmp(arch, archs[i].name) == 0)
			return resnet_config(cfg, archs[i].depth, 64, err,
			    errlen);
	snprintf(err, errlen, "arch '%s': resnet18, resnet34 or resnet50 "
	    "expected", arch);
	return -1;
}

static int
same_shape(const ResNetConfig *a, const ResNetConfig *b)
{
	return a->bottleneck == b->bottleneck && a->width == b->width &&
	    memcmp(a->blocks, b->blocks, sizeof a->blocks) == 0;
}

/* The standard name of cfg, or a description, into name. */
static void
config_name(char *name, size_t namelen, const ResNetConfig *cfg)
{
	ResNetConfig std;
	char e[128];

	for (size_t i = 0; i < RL_NELEM(archs); i++)
		if (resnet_config(&std, archs[i].depth, 64, e, sizeof e) == 0 &&
		    same_shape(&std, cfg)) {
			snprintf(name, namelen, "%s", archs[i].name);
			return;
		}
	snprintf(name, namelen, "resnet(%s, blocks %d-%d-%d-%d, width %d)",
	    cfg->bottleneck ? "bottleneck" : "basic", cfg->blocks[0],
	    cfg->blocks[1], cfg->blocks[2], cfg->blocks[3], cfg->width);
}

int
extract_infer_config(ResNetConfig *cfg, char *name, size_t namelen,
    const Ckpt *c, const char *prefix, char *err, size_t errlen)
{
	const CkptTensor *t;
	char key[128], e[128];

	snprintf(key, sizeof key, "%sconv1.weight", prefix);
	if (!(t = ckpt_find(c, key)) || t->ndim != 4 || t->shape[0] < 1 ||
	    t->shape[0] > 4096) {
		snprintf(err, errlen, "%s: no usable %s: not a ResNet backbone",
		    ckpt_path(c), key);
		return -1;
	}
	resnet_config(cfg, 18, (int)t->shape[0], e, sizeof e);
	snprintf(key, sizeof key, "%slayer1.0.conv3.weight", prefix);
	cfg->bottleneck = ckpt_find(c, key) != NULL;
	for (int s = 0; s < 4; s++) {
		int n = 0;

		for (;; n++) {
			snprintf(key, sizeof key, "%slayer%d.%d.conv1.weight",
			    prefix, s + 1, n);
			if (!ckpt_find(c, key))
				break;
		}
		if (n == 0) {
			snprintf(err, errlen, "%s: no %s: not a ResNet "
			    "backbone", ckpt_path(c), key);
			return -1;
		}
		cfg->blocks[s] = n;
	}
	config_name(name, namelen, cfg);
	return 0;
}

int
extract_model_random(ExtractModel *m, const char *arch, uint64_t seed,
    char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (extract_arch_config(&m->cfg, arch, err, errlen))
		return -1;
	snprintf(m->arch, sizeof m->arch, "%s", arch);
	resnet_create(&m->net, &m->cfg, NULL, NULL, seed);
	return 0;
}

int
extract_model_load(ExtractModel *m, const Ckpt *c, const char *arch,
    char *err, size_t errlen)
{
	const char *path = ckpt_path(c), *why = "asked for";
	ResNetConfig seen;
	char seen_name[96], e[CKPT_ERRLEN];

	memset(m, 0, sizeof *m);
	if (!ckpt_find(c, "conv1.weight") &&
	    ckpt_find(c, "backbone.conv1.weight"))
		snprintf(m->prefix, sizeof m->prefix, "backbone.");
	if (extract_infer_config(&seen, seen_name, sizeof seen_name, c,
	    m->prefix, err, errlen))
		return -1;
	if (arch == NULL && (arch = ckpt_meta(c, "arch")) != NULL)
		why = "named by its arch metadata";
	if (arch != NULL) {
		if (extract_arch_config(&m->cfg, arch, e, sizeof e)) {
			snprintf(err, errlen, "%s: %s", path, e);
			return -1;
		}
		// the arch names the depth; the width is the file's (as
		// rl-train --width writes it)
		m->cfg.width = seen.width;
		if (!same_shape(&m->cfg, &seen)) {
			snprintf(err, errlen, "%s: holds a %s backbone, not the "
			    "%s %s", path, seen_name, arch, why);
			return -1;
		}
		if (seen.width == 64)
			snprintf(m->arch, sizeof m->arch, "%s", arch);
		else
			snprintf(m->arch, sizeof m->arch, "%s (width %d)",
			    arch, seen.width);
	} else {
		m->cfg = seen;
		snprintf(m->arch, sizeof m->arch, "%s", seen_name);
	}
	// every tensor's shape from the header before allocating for them
	if (resnet_check(&m->cfg, c, m->prefix, e, sizeof e)) {
		snprintf(err, errlen, "%s (not a %s backbone)", e, m->arch);
		return -1;
	}
	resnet_create(&m->net, &m->cfg, NULL, NULL, 0);
	if (resnet_load(m->net, c, m->prefix, e, sizeof e)) {
		snprintf(err, errlen, "%s (not a %s backbone)", e, m->arch);
		extract_model_free(m);
		return -1;
	}
	return 0;
}

void
extract_model_free(ExtractModel *m)
{
	if (m->net)
		resnet_free(m->net);
	memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------ */
/* features of a batch */

/* A stage's side for an input side: the stem, the max pool (layer1 keeps
 * its size) and layer2..4 each halve it as PyTorch rounds a 7/2/3 or
 * 3/2/1 window, (h - 1) / 2 + 1. */
static int
stage_side(int s, int size)
{
	int h = (size - 1) / 2 + 1;        // stem

	for (int i = 0; i < s; i++)
		h = (h - 1) / 2 + 1;
	return h;
}

int
extract_plan(ExtractPlan *p, ExtractModel *m, unsigned mask, int size,
    int maxB, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->size = size;
	p->maxB = maxB;
	for (int i = 0; i < POOL_NFEAT; i++) {
		ExtractFeat *f = &p->feat[p->nfeat];
		size_t w;

		if (!(mask & (1u << i)))
			continue;
		f->spec = pool_spec(i);
		f->C = resnet_stage_channels(m->net, f->spec->stage);
		f->H = f->W = stage_side(f->spec->stage, size);
		if (pool_dims(f->spec, f->C, f->H, f->W, &f->oh, &f->ow,
		    &f->dim, err, errlen))
			return -1;
		w = pool_work_floats(f->spec, maxB, f->C, f->H, f->W);
		p->nwork = RL_MAX(p->nwork, w);
		p->nfeat++;
	}
	if (resnet_ctx_create(&p->ctx, m->net, maxB, size, size, 0, err,
	    errlen))
		return -1;
	resnet_fold_bn(m->net);  /* evaluation forwards only from here */
	p->work = emalloc_aligned(RL_MAX(p->nwork, 1) * sizeof(float));
	return 0;
}

void
extract_plan_free(ExtractPlan *p)
{
	resnet_ctx_free(p->ctx);
	free(p->work);
	memset(p, 0, sizeof *p);
}

void
extract_batch(ExtractPlan *p, ExtractModel *m, const float *x, int B,
    float *const *out)
{
	assert(B >= 1 && B <= p->maxB);
	resnet_forward(m->net, p->ctx, x, B, 0);
	for (int i = 0; i < p->nfeat; i++) {
		const ExtractFeat *f = &p->feat[i];
		int h, w, c;
		const float *st = resnet_stage(p->ctx, f->spec->stage, &h, &w,
		    &c);

		assert(h == f->H && w == f->W && c == f->C);
		pool_forward(out[i], st, B, h, w, c, f->spec, p->work);
	}
}

/* ------------------------------------------------------------------------ */
/* loader */

/*
 * The images go through an in-order pool (workers.h) of NSLOT batches of
 * B slots: batch b is slots (b % NSLOT) * B onwards, so the consumer
 * holds one batch while the threads fill the next NSLOT - 1.
 */
#define NSLOT 3

struct ExtractLoader {
	const List *l;
	PrepSpec ps;
	int B;
	size_t npix;              /* floats of one input: S*S*3 */
	size_t nbatch;
	float *buf;               /* NSLOT * B inputs */
	int *rc;                  /* per slot: 0, or -1 with msg */
	char (*msg)[1024];
	size_t next;              /* the next batch to hand out */
	int held;                 /* the consumer holds batch next - 1 */
	int failed;               /* the first failure, kept in fail */
	char fail[1024];
	double wait;
	Workers *w;
};

static int
batch_len(const ExtractLoader *ld, size_t b)
{
	size_t left = ld->l->n - b * ld->B;

	return (int)RL_MIN(left, (size_t)ld->B);
}

/* Decode and preprocess image i into slot s (a WorkersJob). */
static void
load_one(void *arg, size_t i, size_t s, void **local)
{
	ExtractLoader *ld = arg;
	const char *path = ld->l->item[i].path;
	PrepBuf *pb = *local;
	char e[768];
	Image im;
	int rc;

	if (pb == NULL)
		*local = pb = ecalloc(1, sizeof *pb);
	rc = img_load(&im, path, 0, NULL, NULL, e, sizeof e);
	if (rc == 0) {
		rc = prep_image(ld->buf + s * ld->npix, &im, &ld->ps, pb, e,
		    sizeof e);
		img_free(&im);
	}
	ld->rc[s] = rc;
	if (rc != 0)
		snprintf(ld->msg[s], sizeof ld->msg[s], "%s: %s", path, e);
}

static void
load_end(void *arg, void *local)
{
	(void)arg;
	if (local)
		prep_buf_free(local);
	free(local);
	img_thread_end();
}

int
extract_loader_start(ExtractLoader **out, const List *l, const PrepSpec *ps,
    int B, int nthreads, char *err, size_t errlen)
{
	ExtractLoader *ld;
	WorkersJob job = {load_one, load_end, NULL};

	*out = NULL;
	if (B < 1 || nthreads < 1 || ps->size < 1) {
		snprintf(err, errlen, "loader: batch %d, %d threads, size %d: "
		    "positive values expected", B, nthreads, ps->size);
		return -1;
	}
	ld = ecalloc(1, sizeof *ld);
	ld->l = l;
	ld->ps = *ps;
	ld->B = B;
	ld->npix = (size_t)ps->size * ps->size * 3;
	ld->nbatch = (l->n + B - 1) / B;
	ld->buf = emalloc_aligned((size_t)NSLOT * B * ld->npix *
	    sizeof(float));
	ld->rc = ecalloc((size_t)NSLOT * B, sizeof *ld->rc);
	ld->msg = ecalloc((size_t)NSLOT * B, sizeof *ld->msg);
	job.arg = ld;
	if (workers_start(&ld->w, &job, l->n, (size_t)NSLOT * B, nthreads,
	    err, errlen)) {
		extract_loader_stop(ld);
		return -1;
	}
	*out = ld;
	return 0;
}

int
extract_loader_next(ExtractLoader *ld, const float **x, int *nb, char *err,
    size_t errlen)
{
	double t0 = now_seconds();
	size_t b = ld->next, first = b * ld->B;
	long s = 0;

	*x = NULL;
	*nb = 0;
	if (ld->held) {
		// give the batch back: its slots take batch b - 1 + NSLOT
		workers_release(ld->w, first - 1);
		ld->held = 0;
	}
	if (!ld->failed && b < ld->nbatch) {
		for (int k = 0; k < batch_len(ld, b) && !ld->failed; k++) {
			s = workers_wait(ld->w, first + k, NULL);
			if (ld->rc[s]) {
				ld->failed = 1;
				snprintf(ld->fail, sizeof ld->fail, "%s",
				    ld->msg[s]);
			}
		}
		if (!ld->failed) {
			*x = ld->buf + (first % ((size_t)NSLOT * ld->B)) *
			    ld->npix;
			*nb = batch_len(ld, b);
			ld->held = 1;
			ld->next++;
		}
	}
	ld->wait += now_seconds() - t0;
	if (ld->failed) {
		snprintf(err, errlen, "%s", ld->fail);
		return -1;
	}
	return 0;
}

double
extract_loader_wait(const ExtractLoader *ld)
{
	return ld->wait;
}

void
extract_loader_stop(ExtractLoader *ld)
{
	if (ld == NULL)
		return;
	workers_stop(ld->w);
	free(ld->buf);
	free(ld->rc);
	free(ld->msg);
	free(ld);
}

long
extract_check_files(const List *l, size_t *nbad, int *first_errno)
{
	long first = -1;

	*nbad = 0;
	*first_errno = 0;
	for (size_t i = 0; i < l->n; i++)
		if (access(l->item[i].path, R_OK) != 0) {
			if ((*nbad)++ == 0) {
				first = (long)i;
				*first_errno = errno;
			}
		}
	return first;
}

/* ------------------------------------------------------------------------ */
/* labels, the sidecar, the output files */

int
extract_labels(ExtractLabels *lb, const List *l, const char *name,
    char *err, size_t errlen)
{
	memset(lb, 0, sizeof *lb);
	if (l->n == 0)
		return 0;
	lb->nl = l->item[0].nlabel;
	for (size_t i = 0; i < l->n; i++)
		if (l->item[i].nlabel != lb->nl) {
			snprintf(err, errlen, "%s:%zu: %d labels, but line %zu "
			    "has %d (every line needs the same number)", name,
			    l->item[i].line, l->item[i].nlabel,
			    l->item[0].line, lb->nl);
			return -1;
		}
	lb->shape[0] = (int64_t)l->n;
	lb->shape[1] = lb->nl;
	if (lb->nl == 1) {
		int64_t *y = emalloc(l->n * sizeof *y);

		for (size_t i = 0; i < l->n; i++)
			y[i] = l->item[i].label[0];
		lb->data = y;
	} else if (lb->nl > 1) {
		int32_t *y = emalloc(l->n * lb->nl * sizeof *y);

		lb->data = y;
		for (size_t i = 0; i < l->n; i++)
			for (int j = 0; j < lb->nl; j++) {
				long v = l->item[i].label[j];

				if (v < INT32_MIN || v > INT32_MAX) {
					snprintf(err, errlen, "%s:%zu: label "
					    "%ld out of the int32 range", name,
					    l->item[i].line, v);
					free(lb->data);
					memset(lb, 0, sizeof *lb);
					return -1;
				}
				y[i * lb->nl + j] = (int32_t)v;
			}
	}
	return 0;
}

/* The model part of the sidecar. */
static json_t *
sidecar_model(const ExtractSource *src, const ExtractModel *m)
{
	json_t *model;

	if (src->path) {
		char crc[16];

		snprintf(crc, sizeof crc, "%08lx", src->crc);
		model = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "source",
		    "checkpoint", "path", src->path, "arch", m->arch, "bytes",
		    (json_int_t)src->size, "mtime", (json_int_t)src->mtime,
		    "crc32", crc);
		if (src->step)
			json_object_set_new(model, "step",
			    json_string(src->step));
		if (*m->prefix)
			json_object_set_new(model, "prefix",
			    json_string(m->prefix));
	} else {
		model = json_pack("{s:s, s:s, s:I}", "source", "random-init",
		    "arch", m->arch, "seed", (json_int_t)src->seed);
	}
	json_object_set_new(model, "bn", json_string("eval"));
	return model;
}

/* The sidecar's entry for feature f, in file. */
static json_t *
sidecar_feat(const ExtractFeat *f, const char *file)
{
	json_t *fo = json_pack("{s:s, s:s, s:i, s:[i,i,i], s:[i,i,i], s:I, "
	    "s:s, s:s}", "name", f->spec->name, "file", file, "stage",
	    f->spec->stage, "input", f->C, f->H, f->W, "output", f->C, f->oh,
	    f->ow, "dim", (json_int_t)f->dim, "dtype", "float32", "order",
	    "CHW (view(N,-1) of NCHW)");

	json_object_set_new(fo, "pool", f->spec->k ?
	    json_pack("{s:s, s:i, s:i, s:i, s:b, s:b}", "op", "AvgPool2d",
	    "kernel", f->spec->k, "stride", f->spec->s, "padding",
	    f->spec->p, "count_include_pad", 1, "ceil_mode", 0) :
	    json_pack("{s:s}", "op", "AdaptiveAvgPool2d(1)"));
	return fo;
}

json_t *
extract_sidecar(const ExtractSource *src, const ExtractModel *m,
    const PrepSpec *ps, const ExtractPlan *plan, char *const *files,
    const char *labels_file, const ExtractLabels *lb, const char *list,
    size_t n)
{
	json_t *o, *feats = json_array(), *pre;
	char dec[96];

	snprintf(dec, sizeof dec, "libjpeg-turbo (JPEG), libvips %s (other "
	    "formats)", vips_version_string());
	pre = json_pack("{s:s, s:i, s:i, s:[f,f,f], s:[f,f,f], s:s, s:s}",
	    "preset", prep_name(ps->mode), "resize", ps->resize, "size",
	    ps->size, "mean", prep_mean[0], prep_mean[1], prep_mean[2], "std",
	    prep_std[0], prep_std[1], prep_std[2], "resample",
	    "PIL bilinear (antialiased)", "decoder", dec);
	if (ps->mode == PREP_NONE)
		json_object_del(pre, "resize");
	for (int i = 0; i < plan->nfeat; i++)
		json_array_append_new(feats, sidecar_feat(&plan->feat[i],
		    files[i]));
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:{s:s, s:I}}", "tool",
	    "rl-extract", "version", RL_VERSION, "model",
	    sidecar_model(src, m), "preprocess", pre, "features", feats,
	    "list", "path", list ? list : "-", "images", (json_int_t)n);
	if (lb->nl > 0) {
		json_t *shape = json_pack("[I]", (json_int_t)lb->shape[0]);

		if (lb->nl > 1)
			json_array_append_new(shape,
			    json_integer(lb->shape[1]));
		json_object_set_new(o, "labels", json_pack("{s:s, s:s, s:o}",
		    "file", labels_file, "dtype", lb->nl == 1 ? "int64" :
		    "int32", "shape", shape));
	}
	return o;
}

int
extract_outputs_open(ExtractOutputs *op, const ExtractPlan *plan,
    const char *dir, const char *prefix, int labels, char *err,
    size_t errlen)
{
	memset(op, 0, sizeof *op);
	if (labels) {
		op->labels = rl_concat(dir, "/", prefix, "_labels.npy", NULL);
		op->tmp[POOL_NFEAT] = rl_tmp_path(op->labels);
	}
	op->json = rl_concat(dir, "/", prefix, ".json", NULL);
	op->tmp[POOL_NFEAT + 1] = rl_tmp_path(op->json);
	for (int i = 0; i < plan->nfeat; i++) {
		const ExtractFeat *f = &plan->feat[i];
		char *p = rl_concat(dir, "/", prefix, "_", f->spec->name,
		    ".npy", NULL);

		op->path[i] = p;
		op->file[i] = strrchr(p, '/') + 1;
		op->out[i] = emalloc_aligned((size_t)plan->maxB * f->dim *
		    sizeof(float));
		// named before the writer creates it, so a signal between
		// the two cannot leave it behind
		op->tmp[i] = rl_tmp_path(p);
		op->n++;
		if (npy_writer_open(&op->w[i], p, NPY_F32, (int64_t)f->dim,
		    err, errlen)) {
			extract_outputs_abort(op);
			return -1;
		}
	}
	return 0;
}

int
extract_outputs_append(ExtractOutputs *op, int nb, char *err, size_t errlen)
{
	for (int i = 0; i < op->n; i++)
		if (npy_writer_append(&op->w[i], op->out[i], nb, err, errlen))
			return -1;
	return 0;
}

int
extract_outputs_commit(ExtractOutputs *op, const ExtractLabels *lb,
    const char *text, char *err, size_t errlen)
{
	NpyWriter lw = {0};
	RlAtomic ja = {0}, *all[EXTRACT_MAXOUT];
	int n = 0, rc = 0;

	for (int i = 0; i < op->n && rc == 0; i++) {
		rc = npy_writer_finish(&op->w[i], err, errlen);
		all[n++] = &op->w[i].a;
	}
	if (rc == 0 && op->labels) {
		rc = npy_write_finished(&lw, op->labels, lb->nl == 1 ?
		    NPY_I64 : NPY_I32, lb->nl == 1 ? 1 : 2, lb->shape,
		    lb->data, err, errlen);
		all[n++] = &lw.a;
	}
	if (rc == 0) {
		rc = rl_write_text_finished(&ja, op->json, text, err, errlen);
		all[n++] = &ja;
	}
	if (rc == 0)
		rc = rl_atomic_commit(all, n, err, errlen);
	// after a commit, or a failed finish, these remove what is left
	extract_outputs_abort(op);
	npy_writer_abort(&lw);
	rl_atomic_abort(&ja);
	return rc;
}

void
extract_outputs_abort(ExtractOutputs *op)
{
	for (int i = 0; i < op->n; i++)
		npy_writer_abort(&op->w[i]);
}

void
extract_outputs_unlink_tmp(const ExtractOutputs *op)
{
	for (int i = 0; i < EXTRACT_MAXOUT; i++)
		if (op->tmp[i])
			unlink(op->tmp[i]);
}

void
extract_outputs_free(ExtractOutputs *op)
{
	for (int i = 0; i < op->n; i++) {
		free(op->out[i]);
		free(op->path[i]);
	}
	for (int i = 0; i < EXTRACT_MAXOUT; i++)
		free(op->tmp[i]);
	free(op->labels);
	free(op->json);
	memset(op, 0, sizeof *op);
}

/* extract: models, batches of pooled features, the image loader. See
 * extract.h. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/extract.h"
#include "common/img.h"
#include "common/util.h"

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
		if (!same_shape(&m->cfg, &seen)) {
			snprintf(err, errlen, "%s: holds a %s backbone, not the "
			    "%s %s", path, seen_name, arch, why);
			return -1;
		}
		snprintf(m->arch, sizeof m->arch, "%s", arch);
	} else {
		m->cfg = seen;
		snprintf(m->arch, sizeof m->arch, "%s", seen_name);
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
 * Batches rotate through NSLOT buffers: the consumer holds one, and the
 * decoding threads fill the next NSLOT - 1. Each thread claims the next
 * image in list order, so a batch completes roughly in order.
 */
#define NSLOT 3

struct ExtractLoader {
	const List *l;
	PrepSpec ps;
	int B, nthreads;
	size_t npix;              /* floats of one input: S*S*3 */
	size_t nbatch;
	float *slot[NSLOT];       /* B inputs each */
	int done[NSLOT];          /* images finished in the slot */
	size_t claim;             /* next image to decode */
	size_t released;          /* batches the consumer gave back */
	int held;                 /* the consumer holds batch `released` */
	int stop;
	long bad;                 /* lowest failed image, or -1 */
	char msg[1024];
	double wait;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_ready;
	pthread_t *th;
};

static int
batch_len(const ExtractLoader *ld, size_t b)
{
	size_t left = ld->l->n - b * ld->B;

	return (int)RL_MIN(left, (size_t)ld->B);
}

static void *
worker(void *arg)
{
	ExtractLoader *ld = arg;
	PrepBuf pb = {0};
	char e[768];

	pthread_mutex_lock(&ld->mu);
	while (!ld->stop && ld->bad < 0 && ld->claim < ld->l->n) {
		size_t i = ld->claim, b = i / ld->B;
		const char *path = ld->l->item[i].path;
		float *dst;
		Image im;
		int rc;

		if (b >= ld->released + NSLOT) {
			pthread_cond_wait(&ld->cv_work, &ld->mu);
			continue;
		}
		ld->claim++;
		dst = ld->slot[b % NSLOT] + (i % ld->B) * ld->npix;
		pthread_mutex_unlock(&ld->mu);

		rc = img_load(&im, path, 0, NULL, NULL, e, sizeof e);
		if (rc == 0) {
			rc = prep_image(dst, &im, &ld->ps, &pb, e, sizeof e);
			img_free(&im);
		}

		pthread_mutex_lock(&ld->mu);
		if (rc != 0 && (ld->bad < 0 || (long)i < ld->bad)) {
			ld->bad = (long)i;
			snprintf(ld->msg, sizeof ld->msg, "%s: %s", path, e);
		}
		if (++ld->done[b % NSLOT] == batch_len(ld, b) || rc != 0)
			pthread_cond_broadcast(&ld->cv_ready);
	}
	pthread_mutex_unlock(&ld->mu);
	prep_buf_free(&pb);
	img_thread_end();
	return NULL;
}

int
extract_loader_start(ExtractLoader **out, const List *l, const PrepSpec *ps,
    int B, int nthreads, char *err, size_t errlen)
{
	ExtractLoader *ld = ecalloc(1, sizeof *ld);

	*out = NULL;
	if (B < 1 || nthreads < 1 || ps->size < 1) {
		snprintf(err, errlen, "loader: batch %d, %d threads, size %d: "
		    "positive values expected", B, nthreads, ps->size);
		free(ld);
		return -1;
	}
	ld->l = l;
	ld->ps = *ps;
	ld->B = B;
	ld->nthreads = nthreads;
	ld->npix = (size_t)ps->size * ps->size * 3;
	ld->nbatch = (l->n + B - 1) / B;
	ld->bad = -1;
	for (int s = 0; s < NSLOT; s++)
		ld->slot[s] = emalloc_aligned((size_t)B * ld->npix *
		    sizeof(float));
	pthread_mutex_init(&ld->mu, NULL);
	pthread_cond_init(&ld->cv_work, NULL);
	pthread_cond_init(&ld->cv_ready, NULL);
	ld->th = ecalloc(nthreads, sizeof *ld->th);
	for (int t = 0; t < nthreads; t++) {
		int rc = pthread_create(&ld->th[t], NULL, worker, ld);

		if (rc != 0) {
			snprintf(err, errlen, "loader: pthread_create: %s",
			    strerror(rc));
			ld->nthreads = t;
			extract_loader_stop(ld);
			return -1;
		}
	}
	*out = ld;
	return 0;
}

int
extract_loader_next(ExtractLoader *ld, const float **x, int *nb, char *err,
    size_t errlen)
{
	double t0 = now_seconds();
	int rc = 0;
	size_t b;

	*x = NULL;
	*nb = 0;
	pthread_mutex_lock(&ld->mu);
	if (ld->held) {
		// give the batch back: its slot takes batch released + NSLOT
		ld->done[ld->released % NSLOT] = 0;
		ld->released++;
		ld->held = 0;
		pthread_cond_broadcast(&ld->cv_work);
	}
	b = ld->released;
	while (ld->bad < 0 && b < ld->nbatch &&
	    ld->done[b % NSLOT] < batch_len(ld, b))
		pthread_cond_wait(&ld->cv_ready, &ld->mu);
	if (ld->bad >= 0) {
		snprintf(err, errlen, "%s", ld->msg);
		rc = -1;
	} else if (b < ld->nbatch) {
		*x = ld->slot[b % NSLOT];
		*nb = batch_len(ld, b);
		ld->held = 1;
	}
	pthread_mutex_unlock(&ld->mu);
	ld->wait += now_seconds() - t0;
	return rc;
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
	pthread_mutex_lock(&ld->mu);
	ld->stop = 1;
	pthread_cond_broadcast(&ld->cv_work);
	pthread_mutex_unlock(&ld->mu);
	for (int t = 0; t < ld->nthreads; t++)
		pthread_join(ld->th[t], NULL);
	pthread_mutex_destroy(&ld->mu);
	pthread_cond_destroy(&ld->cv_work);
	pthread_cond_destroy(&ld->cv_ready);
	for (int s = 0; s < NSLOT; s++)
		free(ld->slot[s]);
	free(ld->th);
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

/*
 * relloc: pairing, neck, head and loss of Relative Location. See relloc.h.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/layers.h"
#include "common/relloc.h"
#include "common/rng.h"
#include "common/util.h"

const int relloc_neighbours[RELLOC_NCLASS] = { 0, 1, 2, 3, 5, 6, 7, 8 };

void
relloc_config_default(RelLocConfig *c, int D, int maxpairs)
{
	memset(c, 0, sizeof(*c));
	c->D = D;
	c->hidden = RELLOC_HIDDEN;
	c->maxpairs = maxpairs;
	c->maxcentres = maxpairs;
	c->bn_momentum = 0.003f;
	c->bn_eps = 1e-5f;
	c->dropout = 0.5f;
	c->fc_std = 0.01f;
	c->cls_std = 0.005f;
}

// ----------------------------------------------------------------------------
// pairing

void
relloc_pairs_make(RelLocPairs *p, RelLocMode mode, int nimg)
{
	int P = RELLOC_NCLASS * nimg;

	assert(nimg >= 1);
	p->mode = mode;
	p->nimg = nimg;
	p->npairs = P;
	p->nrows = mode == RELLOC_SHARED ? 9 * nimg : 2 * P;
	p->ncentres = mode == RELLOC_SHARED ? nimg : P;
	p->nb_row = emalloc(P * sizeof(int));
	p->cen = emalloc(P * sizeof(int));
	p->label = emalloc(P * sizeof(int));
	p->cen_row = emalloc(p->ncentres * sizeof(int));
	for (int i = 0; i < nimg; i++)
		for (int k = 0; k < RELLOC_NCLASS; k++) {
			int j = RELLOC_NCLASS * i + k;

			p->label[j] = k;
			if (mode == RELLOC_SHARED) {
				p->nb_row[j] = 9 * i + relloc_neighbours[k];
				p->cen[j] = i;
			} else {
				p->nb_row[j] = j;
				p->cen[j] = j;
			}
		}
	for (int u = 0; u < p->ncentres; u++)
		p->cen_row[u] = mode == RELLOC_SHARED ? 9 * u + 4 : P + u;
}

void
relloc_pairs_free(RelLocPairs *p)
{
	free(p->nb_row);
	free(p->cen);
	free(p->cen_row);
	free(p->label);
	memset(p, 0, sizeof(*p));
}

// ----------------------------------------------------------------------------
// model

static void
normal_fill(float *x, size_t n, float std, uint64_t seed, uint64_t index)
{
	Rng g;

	rng_init(&g, seed, RELLOC_RNG_STREAM_INIT, index);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(std * rng_normal(&g));
}

size_t
relloc_nparams(const RelLocConfig *c)
{
	size_t D = c->D, H = c->hidden;

	return H * 2 * D + 3 * H + RELLOC_NCLASS * H + RELLOC_NCLASS;
}

/* Point the six tensors into block p, in relloc.h's order. */
static void
point(float *p, size_t nfc, size_t H, size_t ncls, float **fc_w,
    float **fc_b, float **bn_w, float **bn_b, float **cls_w, float **cls_b)
{
	*fc_w = p, p += nfc;
	*fc_b = p, p += H;
	*bn_w = p, p += H;
	*bn_b = p, p += H;
	*cls_w = p, p += ncls;
	*cls_b = p;
}

void
relloc_init(RelLoc *m, const RelLocConfig *c, float *params, float *grads,
    uint64_t seed)
{
	size_t D = c->D, H = c->hidden, P = c->maxpairs, U = c->maxcentres;
	size_t nfc = H * 2 * D, ncls = RELLOC_NCLASS * H;

	assert(c->D >= 1 && c->hidden >= 1 && c->maxpairs >= 2 &&
	    c->maxcentres >= 1 && !params == !grads);
	memset(m, 0, sizeof(*m));
	m->cfg = *c;
	m->nparams = relloc_nparams(c);
	m->own = !params;
	m->params = params ? params :
	    emalloc_aligned(m->nparams * sizeof(float));
	m->grads = grads ? grads : emalloc_aligned(m->nparams * sizeof(float));
	point(m->params, nfc, H, ncls, &m->fc_w, &m->fc_b, &m->bn_w, &m->bn_b,
	    &m->cls_w, &m->cls_b);
	point(m->grads, nfc, H, ncls, &m->dfc_w, &m->dfc_b, &m->dbn_w,
	    &m->dbn_b, &m->dcls_w, &m->dcls_b);
	m->running_mean = emalloc(2 * H * sizeof(float));
	m->running_var = m->running_mean + H;

	normal_fill(m->fc_w, nfc, c->fc_std, seed, 0);
	normal_fill(m->cls_w, ncls, c->cls_std, seed, 1);
	memset(m->fc_b, 0, H * sizeof(float));
	memset(m->bn_b, 0, H * sizeof(float));
	memset(m->cls_b, 0, RELLOC_NCLASS * sizeof(float));
	for (size_t h = 0; h < H; h++) {
		m->bn_w[h] = 1;
		m->running_mean[h] = 0;
		m->running_var[h] = 1;
	}
	relloc_zero_grad(m);
	relloc_shard(m, 0, 1.0f);

	m->xn = emalloc_aligned(P * D * sizeof(float));
	m->xc = emalloc_aligned(U * D * sizeof(float));
	m->yc = emalloc_aligned(U * H * sizeof(float));
	m->hpre = emalloc_aligned(P * H * sizeof(float));
	m->hbn = emalloc_aligned(P * H * sizeof(float));
	m->bn_mean = emalloc(2 * H * sizeof(float));
	m->bn_invstd = m->bn_mean + H;
	m->mask = emalloc_aligned(P * H * sizeof(float));
	m->hdrop = emalloc_aligned(P * H * sizeof(float));
	m->logits = emalloc(P * RELLOC_NCLASS * sizeof(float));
	m->probs = emalloc(P * RELLOC_NCLASS * sizeof(float));
	m->dlogits = emalloc(P * RELLOC_NCLASS * sizeof(float));
	m->dh = emalloc_aligned(P * H * sizeof(float));
	m->dyc = emalloc_aligned(U * H * sizeof(float));
	m->dxn = emalloc_aligned(P * D * sizeof(float));
	m->dxc = emalloc_aligned(U * D * sizeof(float));
	m->scratch = emalloc_aligned(blas_gemm_scratch(RELLOC_NCLASS, H) *
	    sizeof(float) + 64);
}

void
relloc_free(RelLoc *m)
{
	float **bufs[] = { &m->running_mean, &m->xn,
	    &m->xc, &m->yc, &m->hpre, &m->hbn, &m->bn_mean, &m->mask,
	    &m->hdrop, &m->logits, &m->probs, &m->dlogits, &m->dh, &m->dyc,
	    &m->dxn, &m->dxc, &m->scratch };

	if (m->own) {
		free(m->params);
		free(m->grads);
	}
	for (size_t i = 0; i < RL_NELEM(bufs); i++)
		free(*bufs[i]);
	memset(m, 0, sizeof(*m));
}

void
relloc_shard(RelLoc *m, uint64_t first_pair, float scale)
{
	m->first_pair = first_pair;
	m->loss_scale = scale;
}

void
relloc_zero_grad(RelLoc *m)
{
	memset(m->grads, 0, m->nparams * sizeof(float));
}

// ----------------------------------------------------------------------------
// forward and backward

float
relloc_forward(RelLoc *m, const float *feat, const RelLocPairs *p, int train,
    uint64_t seed, uint64_t step, int *ncorrect)
{
	const RelLocConfig *c = &m->cfg;
	int D = c->D, H = c->hidden, P = p->npairs, U = p->ncentres;
	const float *wn = m->fc_w, *wc = m->fc_w + D;   // (H, D) at stride 2D

	assert(P <= c->maxpairs && U <= c->maxcentres);
	m->pairs = p;
	m->train = train;
	for (int k = 0; k < P; k++)
		memcpy(m->xn + (size_t)k * D, feat + (size_t)p->nb_row[k] * D,
		    D * sizeof(float));
	for (int u = 0; u < U; u++)
		memcpy(m->xc + (size_t)u * D, feat + (size_t)p->cen_row[u] * D,
		    D * sizeof(float));

	// hpre (P, H) = xn Wn^T + (xc Wc^T)[cen] + b
	blas_gemm(0, 1, P, H, D, m->xn, D, wn, 2 * D, 0, m->hpre, H, NULL);
	blas_gemm(0, 1, U, H, D, m->xc, D, wc, 2 * D, 0, m->yc, H, NULL);
#pragma omp parallel for schedule(static)
	for (int k = 0; k < P; k++) {
		float *h = m->hpre + (size_t)k * H;
		const float *y = m->yc + (size_t)p->cen[k] * H;

		for (int j = 0; j < H; j++)
			h[j] += y[j] + m->fc_b[j];
	}

	if (train) {
		batchnorm_forward(m->hbn, m->bn_mean, m->bn_invstd,
		    m->running_mean, m->running_var, m->hpre, NULL, m->bn_w,
		    m->bn_b, P, H, c->bn_momentum, c->bn_eps, 1);
		m->num_batches_tracked++;
		dropout_forward_at(m->hdrop, m->mask, m->hbn, (size_t)P * H,
		    (size_t)m->first_pair * H, c->dropout, seed, step);
	} else {
		batchnorm_forward_eval(m->hbn, m->hpre, NULL, m->bn_w,
		    m->bn_b, m->running_mean, m->running_var, P, H, c->bn_eps,
		    1);
		memcpy(m->hdrop, m->hbn, (size_t)P * H * sizeof(float));
	}
	linear_forward(m->logits, m->hdrop, m->cls_w, m->cls_b, P, H,
	    RELLOC_NCLASS);
	return crossentropy_forward(m->probs, ncorrect, m->logits, p->label,
	    P, RELLOC_NCLASS);
}

void
relloc_backward(RelLoc *m, float *dfeat)
{
	const RelLocConfig *c = &m->cfg;
	const RelLocPairs *p = m->pairs;
	int D = c->D, H = c->hidden, P = p->npairs, U = p->ncentres;
	float *dh = m->dh;

	assert(m->train && p);
	crossentropy_backward(m->dlogits, m->probs, p->label, P,
	    RELLOC_NCLASS, m->loss_scale);
	memset(dh, 0, (size_t)P * H * sizeof(float));
	linear_backward(dh, m->dcls_w, m->dcls_b, m->dlogits, m->hdrop,
	    m->cls_w, P, H, RELLOC_NCLASS, m->scratch);
	dropout_backward(dh, dh, m->mask, (size_t)P * H);
	// dh becomes the gradient at the fc output (before BN)
	batchnorm_backward(dh, m->dbn_w, m->dbn_b, dh, m->hpre, m->bn_mean,
	    m->bn_invstd, m->bn_w, m->bn_b, P, H, 1);

	// bias, and the centre part summed over the pairs sharing a centre;
	// threads take column blocks, so no two write the same place
	memset(m->dyc, 0, (size_t)U * H * sizeof(float));
#pragma omp parallel for schedule(static)
	for (int j0 = 0; j0 < H; j0 += 256) {
		int j1 = RL_MIN(H, j0 + 256);

		for (int k = 0; k < P; k++) {
			const float *g = dh + (size_t)k * H;
			float *y = m->dyc + (size_t)p->cen[k] * H;

			for (int j = j0; j < j1; j++) {
				m->dfc_b[j] += g[j];
				y[j] += g[j];
			}
		}
	}
	// dWn += dh^T xn, dWc += dyc^T xc (column blocks of dfc_w)
	blas_gemm(1, 0, H, D, P, dh, H, m->xn, D, 1, m->dfc_w, 2 * D, NULL);
	blas_gemm(1, 0, H, D, U, m->dyc, H, m->xc, D, 1, m->dfc_w + D, 2 * D,
	    NULL);
	// dxn = dh Wn, dxc = dyc Wc
	blas_gemm(0, 0, P, D, H, dh, H, m->fc_w, 2 * D, 0, m->dxn, D, NULL);
	blas_gemm(0, 0, U, D, H, m->dyc, H, m->fc_w + D, 2 * D, 0, m->dxc, D,
	    NULL);

	memset(dfeat, 0, (size_t)p->nrows * D * sizeof(float));
	for (int k = 0; k < P; k++) {
		float *o = dfeat + (size_t)p->nb_row[k] * D;
		const float *g = m->dxn + (size_t)k * D;

		for (int d = 0; d < D; d++)
			o[d] += g[d];
	}
	for (int u = 0; u < U; u++) {
		float *o = dfeat + (size_t)p->cen_row[u] * D;
		const float *g = m->dxc + (size_t)u * D;

		for (int d = 0; d < D; d++)
			o[d] += g[d];
	}
}

void
relloc_predict(const RelLoc *m, int *pred)
{
	for (int k = 0; k < m->pairs->npairs; k++) {
		const float *l = m->logits + (size_t)k * RELLOC_NCLASS;
		int best = 0;

		for (int j = 1; j < RELLOC_NCLASS; j++)
			if (l[j] > l[best])
				best = j;
		pred[k] = best;
	}
}

// ----------------------------------------------------------------------------
// checkpoints

void
relloc_tensors(const RelLoc *m, RelLocTensor t[RELLOC_NTENSOR])
{
	int64_t H = m->cfg.hidden, D2 = 2 * (int64_t)m->cfg.D;
	const RelLocTensor tab[RELLOC_NTENSOR] = {
		{ "neck.fc.weight", m->fc_w, 2, { H, D2 }, 1 },
		{ "neck.fc.bias", m->fc_b, 1, { H, 0 }, 1 },
		{ "neck.bn.weight", m->bn_w, 1, { H, 0 }, 1 },
		{ "neck.bn.bias", m->bn_b, 1, { H, 0 }, 1 },
		{ "neck.bn.running_mean", m->running_mean, 1, { H, 0 }, 0 },
		{ "neck.bn.running_var", m->running_var, 1, { H, 0 }, 0 },
		{ "neck.bn.num_batches_tracked", NULL, 0, { 0, 0 }, 0 },
		{ "head.fc_cls.weight", m->cls_w, 2, { RELLOC_NCLASS, H }, 1 },
		{ "head.fc_cls.bias", m->cls_b, 1, { RELLOC_NCLASS, 0 }, 1 },
	};

	memcpy(t, tab, sizeof(tab));
}

int
relloc_ckpt_add(const RelLoc *m, CkptWriter *w, char *err, size_t errlen)
{
	RelLocTensor t[RELLOC_NTENSOR];

	relloc_tensors(m, t);
	for (int i = 0; i < RELLOC_NTENSOR; i++) {
		int rc;

		if (t[i].data)
			rc = ckpt_writer_add(w, t[i].name, CKPT_F32, t[i].ndim,
			    t[i].shape, t[i].data, err, errlen);
		else
			rc = ckpt_writer_add(w, t[i].name, CKPT_I64, 0, NULL,
			    &m->num_batches_tracked, err, errlen);
		if (rc)
			return -1;
	}
	return 0;
}

int
relloc_ckpt_load(RelLoc *m, const Ckpt *c, char *err, size_t errlen)
{
	RelLocTensor t[RELLOC_NTENSOR];

	relloc_tensors(m, t);
	for (int i = 0; i < RELLOC_NTENSOR; i++) {
		const void *d;

		if (t[i].data) {
			d = ckpt_expect(c, t[i].name, CKPT_F32, t[i].ndim,
			    t[i].shape, err, errlen);
			if (!d)
				return -1;
			memcpy(t[i].data, d, (size_t)t[i].shape[0] *
			    (t[i].ndim == 2 ? t[i].shape[1] : 1) *
			    sizeof(float));
		} else {
			d = ckpt_expect(c, t[i].name, CKPT_I64, 0, NULL, err,
			    errlen);
			if (!d)
				return -1;
			memcpy(&m->num_batches_tracked, d, sizeof(int64_t));
		}
	}
	return 0;
}

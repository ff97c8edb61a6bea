/* probe: linear evaluation on frozen features. See probe.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layers.h"
#include "common/metric.h"
#include "common/optim.h"
#include "common/probe.h"
#include "common/rng.h"
#include "common/util.h"

/* Below this many values a loop is not worth waking the OpenMP threads. */
#define PAR_MIN (1 << 16)

void
probe_config_recipe(ProbeConfig *c, ProbeRecipe r)
{
	memset(c, 0, sizeof *c);
	c->gamma = 0.1;
	c->momentum = 0.9;
	c->batch = 256;
	c->bn_momentum = 0.1;
	c->bn_eps = 1e-5;
	c->init_std = 0.01;
	if (r == PROBE_MHEAD) {
		c->epochs = 90;
		c->nsteps = 3;
		c->steps[0] = 30, c->steps[1] = 60, c->steps[2] = 90;
		c->lr = 0.01;
		c->wd = 1e-4;
		c->nesterov = 1;
		c->bn = 1;
	} else {
		c->epochs = 100;
		c->nsteps = 2;
		c->steps[0] = 60, c->steps[1] = 80;
		c->lr = 30;
	}
}

void
probe_config_epochs(ProbeConfig *c, int epochs)
{
	for (int i = 0; i < c->nsteps; i++)
		c->steps[i] = RL_MAX(1, (int)lround((double)c->steps[i] *
		    epochs / c->epochs));
	c->epochs = epochs;
}

double
probe_lr(const ProbeConfig *c, int epoch)
{
	double lr = c->lr;

	for (int i = 0; i < c->nsteps; i++)
		if (epoch >= c->steps[i])
			lr *= c->gamma;
	return lr;
}

int
probe_init(Probe *p, const ProbeConfig *c, size_t dim, size_t nclass,
    uint64_t head, char *err, size_t errlen)
{
	size_t ch = c->channels ? (size_t)c->channels : dim;
	Rng g;

	memset(p, 0, sizeof *p);
	if (dim == 0 || nclass == 0 || c->batch < 1 || c->epochs < 1) {
		snprintf(err, errlen, "probe: empty problem (dim %zu, %zu "
		    "classes, batch %d, %d epochs)", dim, nclass, c->batch,
		    c->epochs);
		return -1;
	}
	if (c->bn && dim % ch) {
		snprintf(err, errlen, "probe: %zu BatchNorm channels do not "
		    "divide the %zu features", ch, dim);
		return -1;
	}
	p->cfg = *c;
	p->dim = dim;
	p->nclass = nclass;
	p->channels = ch;
	p->spatial = dim / ch;
	p->nparam = nclass * dim + nclass;
	p->param = ecalloc(p->nparam, sizeof *p->param);
	p->grad = ecalloc(p->nparam, sizeof *p->grad);
	p->mom = ecalloc(p->nparam, sizeof *p->mom);
	p->w = p->param, p->b = p->param + nclass * dim;
	p->dw = p->grad, p->db = p->grad + nclass * dim;
	p->run_mean = ecalloc(ch, sizeof *p->run_mean);
	p->run_var = emalloc(ch * sizeof *p->run_var);
	p->mean = ecalloc(ch, sizeof *p->mean);
	p->var = ecalloc(ch, sizeof *p->var);
	p->scale = ecalloc(ch, sizeof *p->scale);
	for (size_t i = 0; i < ch; i++)
		p->run_var[i] = 1;
	p->xb = emalloc_aligned((size_t)c->batch * dim * sizeof *p->xb);
	p->logit = emalloc_aligned((size_t)c->batch * nclass * sizeof *p->logit);
	p->prob = emalloc_aligned((size_t)c->batch * nclass * sizeof *p->prob);
	rng_init(&g, c->seed, RNG_STREAM_PROBE, head);
	for (size_t i = 0; i < nclass * dim; i++)
		p->w[i] = c->init_std * rng_normal(&g);
	return 0;
}

void
probe_free(Probe *p)
{
	free(p->param);
	free(p->grad);
	free(p->mom);
	free(p->run_mean);
	free(p->run_var);
	free(p->mean);
	free(p->var);
	free(p->scale);
	free(p->xb);
	free(p->logit);
	free(p->prob);
	free(p->order);
	memset(p, 0, sizeof *p);
}

// ----------------------------------------------------------------------
// BatchNorm without affine parameters. x is (n, channels, spatial).

void
probe_normalize(Probe *p, float *x, size_t n, int train)
{
	size_t C = p->channels, S = p->spatial, D = p->dim;

	if (!p->cfg.bn)
		return;
	if (train) {
		#pragma omp parallel for schedule(static) if (n * D > PAR_MIN)
		for (size_t c = 0; c < C; c++) {
			double s = 0, s2 = 0, m;
			for (size_t i = 0; i < n; i++)
				for (size_t j = 0; j < S; j++) {
					double v = x[i * D + c * S + j];
					s += v;
					s2 += v * v;
				}
			m = s / (n * S);
			p->mean[c] = m;
			p->var[c] = fmax(s2 / (n * S) - m * m, 0);
		}
	}
	const float *mean = train ? p->mean : p->run_mean;
	const float *var = train ? p->var : p->run_var;
	for (size_t c = 0; c < C; c++)
		p->scale[c] = 1 / sqrt(var[c] + p->cfg.bn_eps);
	#pragma omp parallel for schedule(static) if (n * D > PAR_MIN)
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < C; c++) {
			float m = mean[c], k = p->scale[c];
			float *r = x + i * D + c * S;
			for (size_t j = 0; j < S; j++)
				r[j] = (r[j] - m) * k;
		}
}

/* Running statistics after a batch of n rows (PyTorch: unbiased var). */
static void
running_update(Probe *p, size_t n)
{
	double m = p->cfg.bn_momentum, k = n * p->spatial;

	for (size_t c = 0; c < p->channels; c++) {
		p->run_mean[c] = (1 - m) * p->run_mean[c] + m * p->mean[c];
		p->run_var[c] = (1 - m) * p->run_var[c] +
		    m * p->var[c] * k / (k - 1);
	}
}

// ----------------------------------------------------------------------
// The linear layer and the loss: the engine's (layers.h).

/* probe_batch_grad on the n rows already in p->xb, which it normalises. */
static double
batch_grad(Probe *p, const int *y, size_t n)
{
	int C = (int)p->nclass, D = (int)p->dim, B = (int)n;
	double loss;

	probe_normalize(p, p->xb, n, 1);
	linear_forward(p->logit, p->xb, p->w, p->b, B, D, C);
	loss = crossentropy_forward(p->prob, NULL, p->logit, y, B, C);
	crossentropy_backward(p->logit, p->prob, y, B, C, 1.0f);
	memset(p->grad, 0, p->nparam * sizeof *p->grad);
	linear_backward(NULL, p->dw, p->db, p->logit, p->xb, p->w, B, D, C,
	    NULL);
	return loss;
}

double
probe_batch_grad(Probe *p, const float *x, const int *y, size_t n)
{
	memcpy(p->xb, x, n * p->dim * sizeof *x);
	return batch_grad(p, y, n);
}

/*
 * torch.optim.SGD (dampening 0): g = grad + wd * param; buf = m * buf + g;
 * g = nesterov ? g + m * buf : buf; param -= lr * g. Without Nesterov that
 * is optim's sgd_step; with it (mhead), this loop.
 */
static void
probe_sgd(Probe *p, double lr)
{
	float m = p->cfg.momentum, wd = p->cfg.wd, flr = lr;

	if (!p->cfg.nesterov) {
		OptimGroup all = {.off = 0, .n = p->nparam, .wd = wd};

		sgd_step(p->param, p->grad, p->mom, &all, 1, flr, m);
		return;
	}
	#pragma omp parallel for schedule(static) if (p->nparam > PAR_MIN)
	for (size_t i = 0; i < p->nparam; i++) {
		float g = p->grad[i] + wd * p->param[i];
		p->mom[i] = m * p->mom[i] + g;
		p->param[i] -= flr * (g + m * p->mom[i]);
	}
}

double
probe_train_epoch(Probe *p, const float *x, const int *y, size_t n,
    int epoch, void (*done)(void *ctx, size_t rows), void *ctx)
{
	size_t B = p->cfg.batch, D = p->dim, seen = 0;
	double lr = probe_lr(&p->cfg, epoch), sum = 0;
	int *yb = emalloc(B * sizeof *yb);
	Rng g;

	if (p->norder != n) {
		free(p->order);
		p->order = emalloc(n * sizeof *p->order);
		p->norder = n;
	}
	for (size_t i = 0; i < n; i++)
		p->order[i] = i;
	rng_init(&g, p->cfg.seed, RNG_STREAM_PROBE, (1ULL << 32) + epoch);
	rng_shuffle_u32(&g, p->order, n);
	for (size_t i0 = 0; i0 < n; i0 += B) {
		size_t nb = RL_MIN(B, n - i0);
		if (p->cfg.bn && nb * p->spatial < 2)
			break;
		for (size_t i = 0; i < nb; i++) {
			memcpy(p->xb + i * D, x + (size_t)p->order[i0 + i] * D,
			    D * sizeof *x);
			yb[i] = y[p->order[i0 + i]];
		}
		sum += batch_grad(p, yb, nb) * nb;
		seen += nb;
		if (p->cfg.bn)
			running_update(p, nb);
		probe_sgd(p, lr);
		if (done)
			done(ctx, i0 + nb);
	}
	free(yb);
	return seen ? sum / seen : 0;
}

// ----------------------------------------------------------------------
// Evaluation, a batch at a time through the workspace.

/* p->logit = the logits of the nb <= batch rows x, evaluation mode. */
static void
eval_batch(Probe *p, const float *x, size_t nb)
{
	memcpy(p->xb, x, nb * p->dim * sizeof *x);
	probe_normalize(p, p->xb, nb, 0);
	linear_forward(p->logit, p->xb, p->w, p->b, (int)nb, (int)p->dim,
	    (int)p->nclass);
}

void
probe_logits(Probe *p, float *logit, const float *x, size_t n)
{
	size_t B = p->cfg.batch, C = p->nclass;

	for (size_t i0 = 0; i0 < n; i0 += B) {
		size_t nb = RL_MIN(B, n - i0);
		eval_batch(p, x + i0 * p->dim, nb);
		memcpy(logit + i0 * C, p->logit, nb * C * sizeof *logit);
	}
}

void
probe_evaluate(Probe *p, const float *x, const int *y, size_t n,
    size_t *top1, size_t *top5, double *loss)
{
	size_t B = p->cfg.batch, C = p->nclass, h1 = 0, h5 = 0;
	double l = 0;

	for (size_t i0 = 0; i0 < n; i0 += B) {
		size_t nb = RL_MIN(B, n - i0);
		eval_batch(p, x + i0 * p->dim, nb);
		h1 += metric_topk(p->logit, y + i0, nb, C, 1);
		h5 += metric_topk(p->logit, y + i0, nb, C, 5);
		l += (double)crossentropy_forward(p->prob, NULL, p->logit,
		    y + i0, (int)nb, (int)C) * nb;
	}
	if (top1)
		*top1 = h1;
	if (top5)
		*top5 = h5;
	if (loss)
		*loss = n ? l / n : 0;
}

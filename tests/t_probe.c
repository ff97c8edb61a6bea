/*
 * t_probe: the linear probe reaches known optima (separable clusters, a
 * closed-form 1-D case, a long full-batch run), its BatchNorm statistics,
 * its gradient against finite differences, its SGD step and schedule.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/rng.h"
#include "common/util.h"
#include "tests/check.h"

/* n points of c Gaussian clusters in d dims, centres sep apart on axes. */
static void
clusters(float *x, int *y, size_t n, size_t d, int c, double sep,
    double noise, uint64_t key)
{
	Rng g;

	rng_init(&g, 5, RNG_STREAM_USER, key);
	for (size_t i = 0; i < n; i++) {
		y[i] = rng_below(&g, c);
		for (size_t j = 0; j < d; j++)
			x[i * d + j] = noise * rng_normal(&g) +
			    (j == (size_t)y[i] % d ? sep : 0) +
			    (y[i] >= (int)d ? -sep : 0);
	}
}

static void
fit(Probe *p, const float *x, const int *y, size_t n)
{
	for (int e = 0; e < p->cfg.epochs; e++)
		probe_train_epoch(p, x, y, n, e, NULL, NULL);
}

TEST(schedule)
{
	ProbeConfig c;

	probe_config_recipe(&c, PROBE_MHEAD);
	CHECK(c.epochs == 90 && c.nsteps == 3 && c.steps[2] == 90 &&
	    c.lr == 0.01 && c.wd == 1e-4 && c.nesterov && c.bn, "mhead");
	CHECK_NEAR(probe_lr(&c, 29), 0.01, 1e-12, 0);
	CHECK_NEAR(probe_lr(&c, 30), 0.001, 1e-12, 0);
	CHECK_NEAR(probe_lr(&c, 89), 1e-4, 1e-12, 0);
	probe_config_epochs(&c, 9);
	CHECK(c.epochs == 9 && c.steps[0] == 3 && c.steps[1] == 6 &&
	    c.steps[2] == 9, "mhead 9: %d %d %d", c.steps[0], c.steps[1],
	    c.steps[2]);
	probe_config_recipe(&c, PROBE_AVGPOOL);
	CHECK(c.epochs == 100 && c.nsteps == 2 && c.lr == 30 && c.wd == 0 &&
	    !c.nesterov && !c.bn, "avgpool");
	probe_config_epochs(&c, 10);
	CHECK(c.steps[0] == 6 && c.steps[1] == 8, "avgpool 10: %d %d",
	    c.steps[0], c.steps[1]);
	probe_config_epochs(&c, 1);
	CHECK(c.steps[0] == 1 && c.steps[1] == 1, "floor at 1");
}

TEST(separable)
{
	enum { N = 600, NV = 300, D = 12, C = 6 };
	static float x[N * D], xv[NV * D];
	static int y[N], yv[NV];
	char err[128];

	clusters(x, y, N, D, C, 6, 0.3, 1);
	clusters(xv, yv, NV, D, C, 6, 0.3, 2);
	for (int r = 0; r < 2; r++) {
		ProbeConfig c;
		Probe p;
		size_t t1, t5, v1, v5;
		double loss;

		probe_config_recipe(&c, r == 0 ? PROBE_MHEAD : PROBE_AVGPOOL);
		probe_config_epochs(&c, 10);
		c.batch = 64;
		CHECK(probe_init(&p, &c, D, C, 0, err, sizeof err) == 0, "%s",
		    err);
		fit(&p, x, y, N);
		probe_evaluate(&p, x, y, N, &t1, &t5, NULL);
		probe_evaluate(&p, xv, yv, NV, &v1, &v5, &loss);
		CHECK(t1 == N && v1 == NV && v5 == NV, "%s: train %zu/%d, val "
		    "%zu/%d", r ? "avgpool" : "mhead", t1, N, v1, NV);
		CHECK(loss < 0.5 * log(C), "val loss %g", loss);
		probe_free(&p);
	}
}

TEST(closed_form)
{
	/*
	 * x = +1 class 1, x = -1 class 0, weight decay lam on all params.
	 * By symmetry the optimum is w = (-a, a), b = 0 with
	 * f(a) = log(1 + e^-2a) + lam a^2, f'(a) = 0: lam a (1 + e^2a) = 1.
	 */
	float x[2] = {1, -1};
	int y[2] = {1, 0};
	double lam = 0.1, lo = 0, hi = 10;
	ProbeConfig c;
	Probe p;
	char err[128];

	for (int i = 0; i < 200; i++) {
		double a = (lo + hi) / 2;
		if (lam * a * (1 + exp(2 * a)) > 1)
			hi = a;
		else
			lo = a;
	}
	probe_config_recipe(&c, PROBE_AVGPOOL);
	c.lr = 0.5, c.wd = lam, c.batch = 2, c.epochs = 400;
	c.nsteps = 2, c.steps[0] = 200, c.steps[1] = 300;
	CHECK(probe_init(&p, &c, 1, 2, 0, err, sizeof err) == 0, "%s", err);
	fit(&p, x, y, 2);
	CHECK_NEAR(p.w[1], lo, 1e-5, 0);
	CHECK_NEAR(p.w[0], -lo, 1e-5, 0);
	CHECK_NEAR(p.b[0], 0, 1e-6, 0);
	CHECK_NEAR(p.b[1], 0, 1e-6, 0);
	probe_free(&p);
}

/* Softmax pr (C) of row x under (w, b) in double; returns -log pr[y]. */
static double
ref_xent(double *pr, const float *w, const float *b, const float *x,
    size_t d, size_t C, int y)
{
	double mx = -1e300, s = 0;

	for (size_t c = 0; c < C; c++) {
		pr[c] = b[c];
		for (size_t j = 0; j < d; j++)
			pr[c] += (double)w[c * d + j] * x[j];
		mx = fmax(mx, pr[c]);
	}
	for (size_t c = 0; c < C; c++)
		s += pr[c] = exp(pr[c] - mx);
	for (size_t c = 0; c < C; c++)
		pr[c] /= s;
	return -log(pr[y]);
}

/* mean CE + wd/2 |theta|^2 of (w, b) on n rows, in double. */
static double
objective(const float *w, const float *b, const float *x, const int *y,
    size_t n, size_t d, size_t C, double wd)
{
	double f = 0, r = 0, pr[8];

	for (size_t i = 0; i < n; i++)
		f += ref_xent(pr, w, b, x + i * d, d, C, y[i]);
	for (size_t k = 0; k < C * d; k++)
		r += (double)w[k] * w[k];
	for (size_t c = 0; c < C; c++)
		r += (double)b[c] * b[c];
	return f / n + wd / 2 * r;
}

TEST(against_full_batch)
{
	/* overlapping clusters: a strictly convex, non-separable problem */
	enum { N = 200, D = 5, C = 3 };
	static float x[N * D], w[C * D], b[C];
	static int y[N];
	double wd = 0.05, fstar, f;
	ProbeConfig c;
	Probe p;
	char err[128];

	clusters(x, y, N, D, C, 1, 1, 3);
	/* the reference: 20000 steps of full-batch gradient descent */
	for (int it = 0; it < 20000; it++) {
		double gw[C * D] = {0}, gb[C] = {0};
		for (size_t i = 0; i < N; i++) {
			double pr[C];
			ref_xent(pr, w, b, x + i * D, D, C, y[i]);
			for (int k = 0; k < C; k++) {
				double g = (pr[k] - (k == y[i])) / N;
				gb[k] += g;
				for (int j = 0; j < D; j++)
					gw[k * D + j] += g * x[i * D + j];
			}
		}
		for (int k = 0; k < C * D; k++)
			w[k] -= 0.5 * (gw[k] + wd * w[k]);
		for (int k = 0; k < C; k++)
			b[k] -= 0.5 * (gb[k] + wd * b[k]);
	}
	fstar = objective(w, b, x, y, N, D, C, wd);
	/* the probe: minibatch SGD with momentum and the step schedule */
	probe_config_recipe(&c, PROBE_AVGPOOL);
	c.lr = 0.05, c.wd = wd, c.batch = 20, c.nesterov = 1;
	probe_config_epochs(&c, 100);
	CHECK(probe_init(&p, &c, D, C, 0, err, sizeof err) == 0, "%s", err);
	fit(&p, x, y, N);
	f = objective(p.w, p.b, x, y, N, D, C, wd);
	CHECK(f >= fstar - 1e-6, "below the optimum: %.9g < %.9g", f, fstar);
	CHECK_NEAR(f, fstar, 1e-4, 0);
	for (int k = 0; k < C * D; k++)
		CHECK_NEAR(p.w[k], w[k], 5e-3, 0);
	probe_free(&p);
}

TEST(batchnorm)
{
	/* 2 channels x 3 features, 4 rows */
	enum { N = 4, D = 6 };
	float x[N * D], xn[N * D];
	int y[N] = {0, 1, 0, 1};
	double mean[2] = {0}, var[2] = {0};
	ProbeConfig c;
	Probe p;
	char err[128];
	Rng g;

	rng_init(&g, 1, RNG_STREAM_USER, 9);
	for (int i = 0; i < N * D; i++)
		x[i] = 3 * rng_normal(&g) + (i % D < 3 ? 5 : -2);
	for (int ch = 0; ch < 2; ch++) {
		for (int i = 0; i < N; i++)
			for (int j = 0; j < 3; j++)
				mean[ch] += x[i * D + ch * 3 + j] / 12.0;
		for (int i = 0; i < N; i++)
			for (int j = 0; j < 3; j++) {
				double u = x[i * D + ch * 3 + j] - mean[ch];
				var[ch] += u * u / 12.0;
			}
	}
	probe_config_recipe(&c, PROBE_MHEAD);
	c.channels = 2, c.batch = N, c.lr = 0, c.epochs = 1;
	CHECK(probe_init(&p, &c, D, 2, 0, err, sizeof err) == 0, "%s", err);
	CHECK(p.spatial == 3, "spatial %zu", p.spatial);
	memcpy(xn, x, sizeof x);
	probe_normalize(&p, xn, N, 1);
	for (int ch = 0; ch < 2; ch++) {
		CHECK_NEAR(p.mean[ch], mean[ch], 1e-5, 1e-6);
		CHECK_NEAR(p.var[ch], var[ch], 1e-5, 1e-5);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < 3; j++)
				CHECK_NEAR(xn[i * D + ch * 3 + j],
				    (x[i * D + ch * 3 + j] - mean[ch]) /
				    sqrt(var[ch] + 1e-5), 1e-5, 1e-5);
	}
	/* one batch of 4 rows: running = 0.9 * (0, 1) + 0.1 * (mean, var*k/(k-1)) */
	probe_train_epoch(&p, x, y, N, 0, NULL, NULL);
	for (int ch = 0; ch < 2; ch++) {
		CHECK_NEAR(p.run_mean[ch], 0.1 * mean[ch], 1e-6, 1e-5);
		CHECK_NEAR(p.run_var[ch], 0.9 + 0.1 * var[ch] * 12 / 11, 1e-6,
		    1e-5);
	}
	/* evaluation mode uses the running statistics */
	memcpy(xn, x, sizeof x);
	probe_normalize(&p, xn, N, 0);
	for (int i = 0; i < N * D; i++) {
		int ch = (i % D) / 3;
		CHECK_NEAR(xn[i], (x[i] - p.run_mean[ch]) /
		    sqrt(p.run_var[ch] + 1e-5), 1e-5, 1e-5);
	}
	probe_free(&p);
	/* channels = 0 is BatchNorm1d: every feature its own channel */
	c.channels = 0;
	CHECK(probe_init(&p, &c, D, 2, 0, err, sizeof err) == 0, "%s", err);
	CHECK(p.channels == D && p.spatial == 1, "1d");
	probe_free(&p);
	c.channels = 4;
	CHECK(probe_init(&p, &c, D, 2, 0, err, sizeof err) < 0 &&
	    strstr(err, "do not divide"), "4 channels of 6 accepted");
}

TEST(gradient)
{
	enum { N = 7, D = 6, C = 4 };
	float x[N * D];
	int y[N];
	ProbeConfig c;
	Probe p;
	char err[128];
	double worst = 0;

	clusters(x, y, N, D, C, 2, 1, 4);
	probe_config_recipe(&c, PROBE_MHEAD);
	c.channels = 2;
	c.init_std = 0.5;
	CHECK(probe_init(&p, &c, D, C, 3, err, sizeof err) == 0, "%s", err);
	for (int k = 0; k < C; k++)
		p.b[k] = 0.1 * k;
	probe_batch_grad(&p, x, y, N);
	float *g = emalloc(p.nparam * sizeof *g);
	memcpy(g, p.grad, p.nparam * sizeof *g);
	for (size_t k = 0; k < p.nparam; k++) {
		float keep = p.param[k];
		double h = 1e-2, lp, lm, fd;
		p.param[k] = keep + h;
		lp = probe_batch_grad(&p, x, y, N);
		p.param[k] = keep - h;
		lm = probe_batch_grad(&p, x, y, N);
		p.param[k] = keep;
		fd = (lp - lm) / (2 * h);
		worst = fmax(worst, fabs(fd - g[k]));
		CHECK_NEAR(g[k], fd, 2e-4, 1e-2);
	}
	CHECK(worst > 0, "no gradient at all");
	free(g);
	probe_free(&p);
}

TEST(sgd_step)
{
	/* one row, one batch: the step must be PyTorch's SGD */
	float x[3] = {1, -2, 0.5};
	int y[1] = {2};
	ProbeConfig c;
	Probe p, q;
	char err[128];

	for (int nest = 0; nest < 2; nest++) {
		probe_config_recipe(&c, PROBE_AVGPOOL);
		c.lr = 0.3, c.wd = 0.05, c.nesterov = nest, c.batch = 1;
		CHECK(probe_init(&p, &c, 3, 4, 0, err, sizeof err) == 0, "%s",
		    err);
		CHECK(probe_init(&q, &c, 3, 4, 0, err, sizeof err) == 0, "%s",
		    err);
		for (int e = 0; e < 2; e++) {
			/* q follows the formula by hand */
			probe_batch_grad(&q, x, y, 1);
			for (size_t k = 0; k < q.nparam; k++) {
				float gk = q.grad[k] + 0.05 * q.param[k];
				q.mom[k] = 0.9 * q.mom[k] + gk;
				gk = nest ? gk + 0.9 * q.mom[k] : q.mom[k];
				q.param[k] -= 0.3 * gk;
			}
			probe_train_epoch(&p, x, y, 1, e, NULL, NULL);
		}
		for (size_t k = 0; k < p.nparam; k++)
			CHECK_NEAR(p.param[k], q.param[k], 1e-6, 1e-5);
		probe_free(&p);
		probe_free(&q);
	}
}

TEST(seeded)
{
	enum { N = 50, D = 4, C = 3 };
	float x[N * D];
	int y[N];
	ProbeConfig c;
	Probe a, b, d;
	char err[128];

	clusters(x, y, N, D, C, 1, 1, 6);
	probe_config_recipe(&c, PROBE_MHEAD);
	probe_config_epochs(&c, 3);
	c.batch = 8, c.lr = 0.1;
	probe_init(&a, &c, D, C, 0, err, sizeof err);
	probe_init(&b, &c, D, C, 0, err, sizeof err);
	c.seed = 1;
	probe_init(&d, &c, D, C, 0, err, sizeof err);
	fit(&a, x, y, N);
	fit(&b, x, y, N);
	fit(&d, x, y, N);
	CHECK(!memcmp(a.param, b.param, a.nparam * sizeof *a.param),
	    "same seed, different weights");
	CHECK(memcmp(a.param, d.param, a.nparam * sizeof *a.param),
	    "different seeds, same weights");
	/* 49 = 6 * 8 + 1 rows: the lone last row is skipped, no NaN */
	size_t h1;
	probe_train_epoch(&a, x, y, 49, 0, NULL, NULL);
	for (size_t k = 0; k < a.nparam; k++)
		CHECK(isfinite(a.param[k]), "param %zu = %g", k, a.param[k]);
	for (int k = 0; k < D; k++)
		CHECK(isfinite(a.run_var[k]), "run_var %d = %g", k, a.run_var[k]);
	probe_evaluate(&a, x, y, N, &h1, NULL, NULL);
	CHECK(h1 > 0 && h1 <= N, "hits %zu", h1);
	probe_free(&a);
	probe_free(&b);
	probe_free(&d);
}

int
main(void)
{
	RUN(schedule);
	RUN(separable);
	RUN(closed_form);
	RUN(against_full_batch);
	RUN(batchnorm);
	RUN(gradient);
	RUN(sgd_step);
	RUN(seeded);
	return check_summary();
}

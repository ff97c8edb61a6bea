/*
 * t_grad: every backward kernel against central finite differences of its
 * forward, on small shapes. The scalar is L = sum(out * R) for a fixed
 * random R (so dout = R), summed in double; the derivative of L by each of
 * up to NSAMPLE entries of every input and parameter is compared with the
 * analytic gradient: |num - ana| <= TOL * (|ana| + max|ana|/10), and the
 * worst relative difference per tensor is printed. ReLU and max-pool
 * inputs are kept away from their kinks (and a step that still straddles
 * one is retried shorter). Also: the running statistics of batch norm, the
 * accumulate/write conventions of layers.h, and a whole residual block
 * (with a strided downsample, and with the identity) composed from the
 * kernels in the order and with the buffers resnet.c uses. The network as
 * a whole is checked against PyTorch by t_ref.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/layers.h"
#include "common/rng.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

#define NSAMPLE 40

static Rng g;

static float *
randn(size_t n, double scale)
{
	return th_randn(&g, n, scale);
}

static float *
zeros(size_t n)
{
	return ecalloc(n, sizeof(float));
}

static double
dot(const float *a, const float *b, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* The scalar under test: runs the forward for the current inputs. */
typedef double (*LossFn)(void *ctx);

/*
 * Compare grad[n] with central differences of f by x[n], at up to NSAMPLE
 * indices (all when n is small), step h. Returns the worst relative diff.
 */
static double
fd_check(const char *what, LossFn f, void *ctx, float *x, const float *grad,
    size_t n, double h, double tol)
{
	double gmax = 0, worst = 0;
	size_t step = n <= NSAMPLE ? 1 : n / NSAMPLE;

	for (size_t i = 0; i < n; i++)
		gmax = fmax(gmax, fabs(grad[i]));
	for (size_t i = (size_t)rng_below(&g, step); i < n; i += step) {
		float x0 = x[i];
		double lp, lm, num = 0, err;

		/* a step may straddle a ReLU or max-pool kink: shorter
		 * steps are tried before calling it a failure */
		err = INFINITY;
		for (double hk = h; hk > h / 20 && err > tol; hk /= 3) {
			double e;

			x[i] = (float)(x0 + hk);
			lp = f(ctx);
			x[i] = (float)(x0 - hk);
			lm = f(ctx);
			x[i] = x0;
			num = (lp - lm) / ((double)(float)(x0 + hk) -
			    (double)(float)(x0 - hk));
			e = fabs(num - grad[i]) / (fabs(grad[i]) + gmax / 10 +
			    1e-30);
			err = fmin(err, e);
		}
		worst = fmax(worst, err);
		CHECK(err <= tol, "%s[%zu]: numeric %.7g analytic %.7g", what,
		    i, num, (double)grad[i]);
	}
	printf("  %-22s n=%-6zu maxdiff %.3g\n", what, n, worst);
	return worst;
}

// ----------------------------------------------------------------------------

typedef struct {
	ConvShape s;
	float *x, *w, *y, *r, *work;
	size_t nwork;
} ConvCase;

static double
conv_loss(void *ctx)
{
	ConvCase *c = ctx;
	size_t ny = (size_t)c->s.B * c->s.OH * c->s.OW * c->s.OC;

	conv_forward(c->y, c->x, c->w, &c->s, c->work, c->nwork);
	return dot(c->y, c->r, ny);
}

TEST(conv)
{
	static const int sh[][8] = {
		{ 2, 5, 6, 3, 4, 3, 1, 1 },
		{ 2, 7, 7, 2, 3, 3, 2, 1 },
		{ 2, 9, 8, 3, 4, 7, 2, 3 },
		{ 3, 4, 4, 5, 6, 1, 1, 0 },
		{ 2, 5, 5, 4, 3, 1, 2, 0 },
		{ 1, 3, 5, 2, 2, 5, 1, 2 },
	};

	for (size_t i = 0; i < RL_NELEM(sh); i++) {
		ConvCase c;
		size_t nx, nw, ny;
		float *dx, *dw;
		char name[64];

		c.s = conv_shape(sh[i][0], sh[i][1], sh[i][2], sh[i][3],
		    sh[i][4], sh[i][5], sh[i][6], sh[i][7]);
		nx = (size_t)c.s.B * c.s.H * c.s.W * c.s.C;
		nw = (size_t)c.s.K * c.s.K * c.s.C * c.s.OC;
		ny = (size_t)c.s.B * c.s.OH * c.s.OW * c.s.OC;
		c.nwork = conv_work_floats(&c.s, 1);
		c.work = zeros(c.nwork + 1);
		c.x = randn(nx, 1), c.w = randn(nw, 1), c.r = randn(ny, 1);
		c.y = zeros(ny);
		dx = zeros(nx), dw = zeros(nw);
		conv_backward(dx, dw, c.r, c.x, c.w, &c.s, c.work, c.nwork);
		snprintf(name, sizeof name, "conv k%ds%dp%d dinp", c.s.K, c.s.S,
		    c.s.P);
		fd_check(name, conv_loss, &c, c.x, dx, nx, 1e-2, 1e-3);
		snprintf(name, sizeof name, "conv k%ds%dp%d dweight", c.s.K,
		    c.s.S, c.s.P);
		fd_check(name, conv_loss, &c, c.w, dw, nw, 1e-2, 1e-3);
		free(c.work), free(c.x), free(c.w), free(c.r), free(c.y);
		free(dx), free(dw);
	}
}

// ----------------------------------------------------------------------------

typedef struct {
	int M, C, relu;
	float *x, *res, *gamma, *beta, *y, *r, *mean, *invstd;
} BnCase;

static double
bn_loss(void *ctx)
{
	BnCase *c = ctx;

	batchnorm_forward(c->y, c->mean, c->invstd, NULL, NULL, c->x, c->res,
	    c->gamma, c->beta, c->M, c->C, 0.1f, 1e-5f, c->relu);
	return dot(c->y, c->r, (size_t)c->M * c->C);
}

/* Batch norm over M rows of C channels, optionally with the residual add
 * and ReLU fused (the residual's gradient is the masked dout). */
static void
bn_case(const char *what, int M, int C, int fused)
{
	BnCase c = { M, C, fused, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	    NULL };
	size_t n = (size_t)M * C;
	float *dx = zeros(n), *dg = zeros(C), *db = zeros(C), *dres = zeros(n);
	char name[64];

	c.x = randn(n, 2), c.r = randn(n, 1), c.y = zeros(n);
	c.gamma = randn(C, 1), c.beta = randn(C, 1);
	c.mean = zeros(C), c.invstd = zeros(C);
	for (size_t i = 0; i < n; i++)
		c.x[i] += 0.5f;
	if (fused) {
		c.res = randn(n, 1);
		/* keep the pre-ReLU sums away from the kink at zero */
		c.relu = 0;
		bn_loss(&c);
		c.relu = 1;
		for (size_t i = 0; i < n; i++)
			if (fabsf(c.y[i]) < 0.1f)
				c.res[i] += c.y[i] < 0 ? -0.2f : 0.2f;
	}
	bn_loss(&c);
	if (fused) {
		/* residual then ReLU: the caller masks, the residual's gradient
		 * is the masked one */
		relu_backward(dres, c.r, c.y, n);
		batchnorm_backward(dx, dg, db, dres, c.x, c.mean, c.invstd,
		    c.gamma, c.beta, M, C, 0);
	} else
		batchnorm_backward(dx, dg, db, c.r, c.x, c.mean, c.invstd,
		    c.gamma, c.beta, M, C, 0);
	snprintf(name, sizeof name, "%s dinp", what);
	fd_check(name, bn_loss, &c, c.x, dx, n, 1e-3, 2e-2);
	snprintf(name, sizeof name, "%s dgamma", what);
	fd_check(name, bn_loss, &c, c.gamma, dg, C, 1e-3, 2e-2);
	snprintf(name, sizeof name, "%s dbeta", what);
	fd_check(name, bn_loss, &c, c.beta, db, C, 1e-3, 2e-2);
	if (fused) {
		snprintf(name, sizeof name, "%s dres", what);
		fd_check(name, bn_loss, &c, c.res, dres, n, 1e-3, 2e-2);
		free(c.res);
	}
	free(c.x), free(c.r), free(c.y), free(c.gamma), free(c.beta);
	free(c.mean), free(c.invstd), free(dx), free(dg), free(db), free(dres);
}

TEST(batchnorm)
{
	bn_case("bn2d (2,3,3,5)", 2 * 3 * 3, 5, 0);
	bn_case("bn1d (6,40)", 6, 40, 0);
	bn_case("bn2d+res+relu", 2 * 4 * 4, 6, 1);
}

/* The running statistics follow PyTorch's update (unbiased variance). */
TEST(batchnorm_running)
{
	int M = 5, C = 3;
	float x[15], y[15], mean[3], invstd[3], gamma[3] = { 1, 1, 1 };
	float beta[3] = { 0, 0, 0 }, rm[3] = { 0.5f, 0, 0 }, rv[3] = { 2, 1, 1 };

	for (int i = 0; i < M * C; i++)
		x[i] = (float)((i * 7) % 11) - 3;
	batchnorm_forward(y, mean, invstd, rm, rv, x, NULL, gamma, beta, M,
	    C, 0.1f, 1e-5f, 0);
	for (int c = 0; c < C; c++) {
		double s = 0, q = 0, mu, var;

		for (int r = 0; r < M; r++)
			s += x[r * C + c];
		mu = s / M;
		for (int r = 0; r < M; r++)
			q += (x[r * C + c] - mu) * (x[r * C + c] - mu);
		var = q / M;
		CHECK_NEAR(mean[c], mu, 1e-6, 1e-6);
		CHECK_NEAR(invstd[c], 1 / sqrt(var + 1e-5), 1e-6, 1e-6);
		CHECK_NEAR(rm[c], 0.9 * (c == 0 ? 0.5 : 0) + 0.1 * mu, 1e-6,
		    1e-6);
		CHECK_NEAR(rv[c], 0.9 * (c == 0 ? 2 : 1) + 0.1 * q / (M - 1),
		    1e-6, 1e-6);
	}
	/* eval with those statistics */
	batchnorm_forward_eval(y, x, NULL, gamma, beta, rm, rv, M, C, 1e-5f,
	    0);
	CHECK_NEAR(y[4], (x[4] - rm[1]) / sqrt(rv[1] + 1e-5), 1e-6, 1e-5);
}

/*
 * A team's batch norm (layers.h) against the one-call kernels: 3 threads
 * over 50 rows (17, 16, 17) of 300 channels (two channel blocks), twice
 * in a row (the team's two rounds of sums), forward and backward, with
 * and without the fused ReLU. The rows sit far from zero, and each
 * thread's first row, about which it sums, differs from thread 0's: the
 * parts must be moved to one shift before they add up. Statistics are
 * also checked against sums in double.
 */
static void
bn_team_case(double offset, double step, int relu)
{
	enum { M = 50, C = 300, NT = 3 };
	size_t n = (size_t)M * C;
	float *x = randn(n, 1), *g = randn(n, 1), *gamma = randn(C, 1);
	float *beta = randn(C, 1), *y1 = zeros(n), *y2 = zeros(n);
	float *m1 = zeros(C), *m2 = zeros(C), *s1 = zeros(C), *s2 = zeros(C);
	float *rm1 = zeros(C), *rm2 = zeros(C), *rv1 = zeros(C), *rv2 = zeros(C);
	float *dx1 = zeros(n), *dx2 = zeros(n), *dg1 = zeros(C), *dg2 = zeros(C);
	float *db1 = zeros(C), *db2 = zeros(C);
	double *sums = emalloc(TEAM_SUMS(NT, C) * sizeof *sums);
	double dmax = 0, ymax = 0, gmax = 0;

	for (int r = 0; r < M; r++)
		for (int c = 0; c < C; c++)
			x[(size_t)r * C + c] += (float)(offset + step * (r / 17));
	for (int rep = 0; rep < 2; rep++) {
		batchnorm_forward(y1, m1, s1, rm1, rv1, x, NULL, gamma, beta, M,
		    C, 0.1f, 1e-5f, relu);
		batchnorm_backward(dx1, dg1, db1, g, x, m1, s1, gamma, beta, M,
		    C, relu);
#pragma omp parallel num_threads(NT)
		{
			Team tm = { omp_get_thread_num(), omp_get_num_threads(),
			    C, sums, 0 };
			long r0 = (long)M * tm.t / tm.n;
			long r1 = (long)M * (tm.t + 1) / tm.n;

			batchnorm_forward_team(&tm, y2, m2, s2, rm2, rv2, x, NULL,
			    gamma, beta, r0, r1, M, C, 0.1f, 1e-5f, relu);
#pragma omp barrier
			/* (thread 0's mean and invstd, seen by all) */
			batchnorm_backward_team(&tm, dx2, dg2, db2, g, x, m2, s2,
			    gamma, beta, r0, r1, M, C, relu);
		}
	}
	for (int c = 0; c < C; c++) {
		double su = 0, q = 0, mu, var;

		for (int r = 0; r < M; r++)
			su += x[(size_t)r * C + c];
		mu = su / M;
		for (int r = 0; r < M; r++)
			q += (x[(size_t)r * C + c] - mu) * (x[(size_t)r * C + c] -
			    mu);
		var = q / M;
		CHECK_NEAR(m2[c], mu, 1e-6, 1e-6);
		CHECK_NEAR(s2[c], 1 / sqrt(var + 1e-5), 0, 1e-4);
		CHECK_NEAR(s1[c], 1 / sqrt(var + 1e-5), 0, 1e-4);
		CHECK_NEAR(rm2[c], rm1[c], 1e-6, 1e-6);
		CHECK_NEAR(rv2[c], rv1[c], 0, 1e-4);
		CHECK_NEAR(dg2[c], dg1[c], 1e-3, 1e-4);
		CHECK_NEAR(db2[c], db1[c], 1e-3, 1e-5);
	}
	for (size_t i = 0; i < n; i++) {
		ymax = fmax(ymax, fabs(y1[i] - y2[i]));
		dmax = fmax(dmax, fabs(dx1[i] - dx2[i]));
		gmax = fmax(gmax, fabs(dx1[i]));
	}
	CHECK(ymax < 1e-3, "offset %g step %g relu %d: out differs by %g",
	    offset, step, relu, ymax);
	CHECK(dmax < 1e-4 * gmax, "offset %g step %g relu %d: dinp differs "
	    "by %g of %g", offset, step, relu, dmax, gmax);
	free(x), free(g), free(gamma), free(beta), free(y1), free(y2);
	free(m1), free(m2), free(s1), free(s2), free(rm1), free(rm2);
	free(rv1), free(rv2), free(dx1), free(dx2), free(dg1), free(dg2);
	free(db1), free(db2), free(sums);
}

TEST(batchnorm_team)
{
	bn_team_case(0.5, 0, 0);
	bn_team_case(0.5, 0, 1);
	bn_team_case(1e3, 0, 0);      /* far from zero, shifts within 1 */
	bn_team_case(1e3, 5, 1);      /* and each thread's rows apart */
}

// ----------------------------------------------------------------------------

typedef struct {
	int kind;  /* 0 relu, 1 maxpool, 2 gap, 3 avgpool */
	int B, H, W, C, K, S, P;
	float *x, *y, *r;
	uint8_t *arg;  /* max-pool winners */
	size_t ny;
} PoolCase;

static double
pool_loss(void *ctx)
{
	PoolCase *c = ctx;

	switch (c->kind) {
	case 0:
		relu_forward(c->y, c->x, c->ny);
		break;
	case 1:
		maxpool_forward(c->y, c->arg, c->x, c->B, c->H, c->W, c->C);
		break;
	case 2:
		gap_forward(c->y, c->x, c->B, c->H, c->W, c->C);
		break;
	default:
		avgpool_forward(c->y, c->x, c->B, c->H, c->W, c->C, c->K, c->S,
		    c->P);
	}
	return dot(c->y, c->r, c->ny);
}

static void
pool_case(const char *what, int kind, int B, int H, int W, int C, int K,
    int S, int P)
{
	PoolCase c = { kind, B, H, W, C, K, S, P, NULL, NULL, NULL, NULL, 0 };
	size_t nx = (size_t)B * H * W * C;
	float *dx = zeros(nx);

	switch (kind) {
	case 0:
		c.ny = nx;
		break;
	case 1:
		c.ny = (size_t)B * ((H - 1) / 2 + 1) * ((W - 1) / 2 + 1) * C;
		break;
	case 2:
		c.ny = (size_t)B * C;
		break;
	default:
		c.ny = (size_t)B * ((H + 2 * P - K) / S + 1) *
		    ((W + 2 * P - K) / S + 1) * C;
	}
	c.x = zeros(nx), c.y = zeros(c.ny), c.r = randn(c.ny, 1);
	c.arg = emalloc(c.ny);
	/* distinct values, at least 0.05 from zero and from each other */
	for (size_t i = 0; i < nx; i++)
		c.x[i] = (float)(0.05 * (double)(i + 1) * (rng_below(&g, 2) ?
		    1 : -1));
	for (size_t i = 0; kind >= 2 && i < nx; i++)  /* smooth: any values */
		c.x[i] = (float)rng_normal(&g);
	for (size_t i = nx; i > 1; i--) {
		size_t j = (size_t)rng_below(&g, i);
		float t = c.x[i - 1];

		c.x[i - 1] = c.x[j], c.x[j] = t;
	}
	pool_loss(&c);
	memset(dx, 0x7f, nx * sizeof *dx);  /* garbage: backward WRITES */
	switch (kind) {
	case 0:
		relu_backward(dx, c.r, c.y, nx);
		break;
	case 1:
		maxpool_backward(dx, c.r, c.arg, B, H, W, C);
		break;
	case 2:
		gap_backward(dx, c.r, B, H, W, C);
		break;
	default:
		avgpool_backward(dx, c.r, B, H, W, C, K, S, P);
	}
	fd_check(what, pool_loss, &c, c.x, dx, nx, 1e-2, 1e-3);
	free(c.x), free(c.y), free(c.r), free(c.arg), free(dx);
}

TEST(pooling)
{
	pool_case("relu", 0, 2, 3, 3, 4, 0, 0, 0);
	pool_case("maxpool 3/2/1 even", 0 + 1, 2, 6, 6, 3, 0, 0, 0);
	pool_case("maxpool 3/2/1 odd", 1, 1, 7, 5, 2, 0, 0, 0);
	pool_case("gap", 2, 2, 3, 4, 5, 0, 0, 0);
	pool_case("avgpool 10/10/4", 3, 1, 22, 22, 2, 10, 10, 4);
	pool_case("avgpool 3/2/1", 3, 2, 7, 6, 3, 3, 2, 1);
	pool_case("avgpool 4/3/0", 3, 2, 10, 9, 2, 4, 3, 0);
}

/*
 * Max-pool ties (zeros after a ReLU): each output's gradient goes to the
 * first cell of its window in row-major order, as PyTorch's CPU kernel.
 * 5x5 input, two channels: channel 0 all zeros, channel 1 zeros with one
 * 1 at (2, 3), which wins the windows that contain it.
 */
TEST(maxpool_ties)
{
	float x[50], y[18], g[18], dx[50], want[50];
	uint8_t arg[18];

	memset(x, 0, sizeof x);
	x[(2 * 5 + 3) * 2 + 1] = 1;
	maxpool_forward(y, arg, x, 1, 5, 5, 2);
	for (int i = 0; i < 18; i++)
		g[i] = (float)(i + 1);
	maxpool_backward(dx, g, arg, 1, 5, 5, 2);
	memset(want, 0, sizeof want);
	for (int oh = 0; oh < 3; oh++)
		for (int ow = 0; ow < 3; ow++)
			for (int c = 0; c < 2; c++) {
				int ih = RL_MAX(2 * oh - 1, 0);
				int iw = RL_MAX(2 * ow - 1, 0);
				int m = (oh * 3 + ow) * 2 + c;

				if (c == 1 && y[m] == 1)
					ih = 2, iw = 3;
				want[(ih * 5 + iw) * 2 + c] += g[m];
			}
	for (int i = 0; i < 50; i++)
		CHECK(dx[i] == want[i], "cell %d: %g, want %g", i, dx[i],
		    want[i]);
}

/* count_include_pad: a corner window of AvgPool2d(3, 2, 1) divides by 9. */
TEST(avgpool_divisor)
{
	float x[16], y[4];

	for (int i = 0; i < 16; i++)
		x[i] = 1;
	avgpool_forward(y, x, 1, 4, 4, 1, 3, 2, 1);
	CHECK_NEAR(y[0], 4.0 / 9, 1e-7, 0);
	CHECK_NEAR(y[3], 9.0 / 9, 1e-7, 0);
}

// ----------------------------------------------------------------------------

typedef struct {
	int B, C, OC;
	float *x, *w, *b, *y, *r;
} LinCase;

static double
linear_loss(void *ctx)
{
	LinCase *c = ctx;

	linear_forward(c->y, c->x, c->w, c->b, c->B, c->C, c->OC);
	return dot(c->y, c->r, (size_t)c->B * c->OC);
}

TEST(linear)
{
	LinCase c = { 5, 7, 3, NULL, NULL, NULL, NULL, NULL };
	float *dx, *dw, *db, *dx1;

	c.x = randn(35, 1), c.w = randn(21, 1), c.b = randn(3, 1);
	c.y = zeros(15), c.r = randn(15, 1);
	dx = zeros(35), dw = zeros(21), db = zeros(3), dx1 = zeros(35);
	linear_loss(&c);
	linear_backward(dx, dw, db, c.r, c.x, c.w, 5, 7, 3, NULL);
	fd_check("linear dinp", linear_loss, &c, c.x, dx, 35, 1e-2, 1e-3);
	fd_check("linear dweight", linear_loss, &c, c.w, dw, 21, 1e-2, 1e-3);
	fd_check("linear dbias", linear_loss, &c, c.b, db, 3, 1e-2, 1e-3);
	/* a second backward accumulates: twice the gradient */
	for (int i = 0; i < 35; i++)
		dx1[i] = dx[i];
	linear_backward(dx, dw, db, c.r, c.x, c.w, 5, 7, 3, NULL);
	for (int i = 0; i < 35; i++)
		CHECK_NEAR(dx[i], 2 * dx1[i], 1e-6, 1e-6);
	free(c.x), free(c.w), free(c.b), free(c.y), free(c.r);
	free(dx), free(dw), free(db), free(dx1);
}

typedef struct {
	size_t n;
	float *x, *y, *mask, *r;
} DropCase;

static double
dropout_loss(void *ctx)
{
	DropCase *c = ctx;

	dropout_forward(c->y, c->mask, c->x, c->n, 0.5f, 42, 3);
	return dot(c->y, c->r, c->n);
}

TEST(dropout)
{
	DropCase c = { 400, NULL, NULL, NULL, NULL };
	float *dx = zeros(400), *m2 = zeros(400), *y2 = zeros(400);
	int kept = 0, same = 1;

	c.x = randn(400, 1), c.y = zeros(400), c.mask = zeros(400);
	c.r = randn(400, 1);
	dropout_loss(&c);
	dropout_backward(dx, c.r, c.mask, 400);
	fd_check("dropout", dropout_loss, &c, c.x, dx, 400, 1e-2, 1e-3);
	for (int i = 0; i < 400; i++) {
		kept += c.mask[i] != 0;
		CHECK(c.mask[i] == 0 || c.mask[i] == 2.0f, "mask %g",
		    (double)c.mask[i]);
	}
	CHECK(kept > 150 && kept < 250, "kept %d of 400 at p=0.5", kept);
	/* another step, another mask; the same step, the same mask */
	dropout_forward(y2, m2, c.x, 400, 0.5f, 42, 4);
	for (int i = 0; i < 400; i++)
		same &= m2[i] == c.mask[i];
	CHECK(!same, "step 4 drew step 3's mask");
	/* the same mask on one thread as on all (chunked generators) */
	{
		size_t n = 3 * 4096 + 17;
		float *in = randn(n, 1), *o1 = zeros(n), *o2 = zeros(n);
		float *k1 = zeros(n), *k2 = zeros(n);
		int nt = omp_get_max_threads();

		omp_set_num_threads(1);
		dropout_forward(o1, k1, in, n, 0.3f, 9, 2);
		omp_set_num_threads(nt);
		dropout_forward(o2, k2, in, n, 0.3f, 9, 2);
		CHECK(memcmp(k1, k2, n * sizeof *k1) == 0, "mask depends on "
		    "the thread count");
		free(in), free(o1), free(o2), free(k1), free(k2);
	}
	free(c.x), free(c.y), free(c.mask), free(c.r), free(dx), free(m2);
	free(y2);
}

typedef struct {
	int B, V;
	float *logits, *probs;
	int *labels;
} CeCase;

/* The mean cross-entropy in double (a float loss is too coarse for finite
 * differences); the kernel's own loss is compared with it separately. */
static double
ce_loss(void *ctx)
{
	CeCase *c = ctx;
	double loss = 0;

	for (int b = 0; b < c->B; b++) {
		const float *l = c->logits + (size_t)b * c->V;
		double s = 0;

		for (int v = 0; v < c->V; v++)
			s += exp(l[v]);
		loss += log(s) - l[c->labels[b]];
	}
	return loss / c->B;
}

TEST(crossentropy)
{
	int labels[4] = { 0, 7, 3, 3 }, right;
	CeCase c = { 4, 8, NULL, NULL, labels };
	float *dl = zeros(32), loss;
	double ref;

	c.logits = randn(32, 2), c.probs = zeros(32);
	c.logits[3 * 8 + 3] = 10;  /* row 3 right for sure */
	loss = crossentropy_forward(c.probs, &right, c.logits, labels, 4, 8);
	ref = ce_loss(&c);
	CHECK_NEAR(loss, ref, 1e-6, 1e-6);
	CHECK(right >= 1, "accuracy %d", right);
	crossentropy_backward(dl, c.probs, labels, 4, 8, 1.0f);
	fd_check("softmax-CE dlogits", ce_loss, &c, c.logits, dl, 32, 1e-3,
	    2e-3);
	free(c.logits), free(c.probs), free(dl);
}


// ----------------------------------------------------------------------------
// a whole residual block, composed from the kernels as resnet.c does: the
// fused batch norm + residual + ReLU, the batch-norm backward in place into
// the conv output, the shortcut gradient accumulated by the first conv

/* Looser than a single kernel's: batch norms in series amplify rounding
 * and the steps' second-order terms; a miswired gradient is off by O(1). */
#define BLOCK_TOL 3e-2

typedef struct {
	int B, H, W, C, mid, out, stride, down;
	ConvShape s1, s2, s3, sd;
	float *x, *w1, *w2, *w3, *wd, *g[4], *b[4];  /* bn 0..2 main, 3 down */
	float *z1, *a1, *z2, *a2, *z3, *zd, *yd, *y, *r, *mean[4], *invstd[4];
	float *work;
	size_t nwork;
} BlockCase;

static double
block_loss(void *ctx)
{
	BlockCase *c = ctx;
	int M1 = c->B * c->s1.OH * c->s1.OW, M2 = c->B * c->s2.OH * c->s2.OW;
	const float *res = c->x;

	conv_forward(c->z1, c->x, c->w1, &c->s1, c->work, c->nwork);
	batchnorm_forward(c->a1, c->mean[0], c->invstd[0], NULL, NULL, c->z1,
	    NULL, c->g[0], c->b[0], M1, c->mid, 0.1f, 1e-5f, 1);
	conv_forward(c->z2, c->a1, c->w2, &c->s2, c->work, c->nwork);
	batchnorm_forward(c->a2, c->mean[1], c->invstd[1], NULL, NULL, c->z2,
	    NULL, c->g[1], c->b[1], M2, c->mid, 0.1f, 1e-5f, 1);
	conv_forward(c->z3, c->a2, c->w3, &c->s3, c->work, c->nwork);
	if (c->down) {
		conv_forward(c->zd, c->x, c->wd, &c->sd, c->work, c->nwork);
		batchnorm_forward(c->yd, c->mean[3], c->invstd[3], NULL, NULL,
		    c->zd, NULL, c->g[3], c->b[3], M2, c->out, 0.1f, 1e-5f, 0);
		res = c->yd;
	}
	batchnorm_forward(c->y, c->mean[2], c->invstd[2], NULL, NULL, c->z3,
	    res, c->g[2], c->b[2], M2, c->out, 0.1f, 1e-5f, 1);
	return dot(c->y, c->r, (size_t)M2 * c->out);
}

/* The smallest |input| of the block's three ReLUs (unfused forward). */
static double
block_margin(BlockCase *c)
{
	int M1 = c->B * c->s1.OH * c->s1.OW, M2 = c->B * c->s2.OH * c->s2.OW;
	size_t n1 = (size_t)M1 * c->mid, n2 = (size_t)M2 * c->mid;
	size_t n3 = (size_t)M2 * c->out;
	double m = INFINITY;

	block_loss(c);  /* the intermediate inputs, and yd */
	batchnorm_forward(c->z1, c->mean[0], c->invstd[0], NULL, NULL, c->z1,
	    NULL, c->g[0], c->b[0], M1, c->mid, 0.1f, 1e-5f, 0);
	batchnorm_forward(c->z2, c->mean[1], c->invstd[1], NULL, NULL, c->z2,
	    NULL, c->g[1], c->b[1], M2, c->mid, 0.1f, 1e-5f, 0);
	batchnorm_forward(c->z3, c->mean[2], c->invstd[2], NULL, NULL, c->z3,
	    c->down ? c->yd : c->x, c->g[2], c->b[2], M2, c->out, 0.1f,
	    1e-5f, 0);
	for (size_t i = 0; i < n1; i++)
		m = fmin(m, fabs(c->z1[i]));
	for (size_t i = 0; i < n2; i++)
		m = fmin(m, fabs(c->z2[i]));
	for (size_t i = 0; i < n3; i++)
		m = fmin(m, fabs(c->z3[i]));
	return m;
}

/*
 * A Bottleneck-like block: 1x1 (C -> mid), 3x3 stride s (mid -> mid), 1x1
 * (mid -> out), with a 1x1 stride-s downsample when down, else the
 * identity (then C == out and s == 1).
 */
static void
block_case(const char *what, int C, int mid, int out, int stride, int down)
{
	BlockCase c;
	size_t nx, n1, n2, nw[4];
	float *dx, *dw[4], *dg[4], *db[4], *gbuf;
	int M1, M2;
	char name[96];

	memset(&c, 0, sizeof c);
	c.B = 2, c.H = 6, c.W = 5, c.C = C, c.mid = mid, c.out = out;
	c.stride = stride, c.down = down;
	c.s1 = conv_shape(c.B, c.H, c.W, C, mid, 1, 1, 0);
	c.s2 = conv_shape(c.B, c.H, c.W, mid, mid, 3, stride, 1);
	c.s3 = conv_shape(c.B, c.s2.OH, c.s2.OW, mid, out, 1, 1, 0);
	c.sd = conv_shape(c.B, c.H, c.W, C, out, 1, stride, 0);
	M1 = c.B * c.H * c.W, M2 = c.B * c.s2.OH * c.s2.OW;
	nx = (size_t)M1 * C, n1 = (size_t)M1 * mid, n2 = (size_t)M2 * out;
	nw[0] = (size_t)C * mid, nw[1] = (size_t)9 * mid * mid;
	nw[2] = (size_t)mid * out, nw[3] = (size_t)C * out;
	c.nwork = RL_MAX(conv_work_floats(&c.s2, 1), conv_work_floats(&c.sd,
	    1)) + conv_work_floats(&c.s1, 1);
	c.work = zeros(c.nwork);
	c.x = randn(nx, 1);
	c.w1 = randn(nw[0], 0.5), c.w2 = randn(nw[1], 0.3);
	c.w3 = randn(nw[2], 0.5), c.wd = randn(nw[3], 0.5);
	for (int i = 0; i < 4; i++) {
		int ch = i < 2 ? mid : out;

		c.g[i] = randn(ch, 0.3), c.b[i] = randn(ch, 0.3);
		for (int j = 0; j < ch; j++)
			c.g[i][j] += 1;
		c.mean[i] = zeros(ch), c.invstd[i] = zeros(ch);
		dg[i] = zeros(ch), db[i] = zeros(ch), dw[i] = zeros(nw[i]);
	}
	c.z1 = zeros(n1), c.a1 = zeros(n1);
	c.z2 = zeros((size_t)M2 * mid), c.a2 = zeros((size_t)M2 * mid);
	c.z3 = zeros(n2), c.zd = zeros(n2), c.yd = zeros(n2), c.y = zeros(n2);
	c.r = randn(n2, 1);
	dx = zeros(nx), gbuf = zeros(n2);
	/* finite differences need every ReLU input clear of its kink: draw
	 * the input again until they are (a few dozen draws at most) */
	for (int tries = 0; block_margin(&c) < 5e-3 && tries < 1000; tries++)
		for (size_t i = 0; i < nx; i++)
			c.x[i] = (float)rng_normal(&g);
	CHECK(block_margin(&c) >= 5e-3, "no input clear of the ReLU kinks");

	/* backward, in resnet.c's order and buffers */
	block_loss(&c);
	memcpy(gbuf, c.r, n2 * sizeof *gbuf);
	relu_backward(gbuf, gbuf, c.y, n2);
	batchnorm_backward(c.z3, dg[2], db[2], gbuf, c.z3, c.mean[2],
	    c.invstd[2], c.g[2], c.b[2], M2, out, 0);
	if (down) {
		batchnorm_backward(c.zd, dg[3], db[3], gbuf, c.zd,
		    c.mean[3], c.invstd[3], c.g[3], c.b[3], M2, out, 0);
		conv_backward(dx, dw[3], c.zd, c.x, c.wd, &c.sd, c.work,
		    c.nwork);
	} else
		memcpy(dx, gbuf, nx * sizeof *dx);  /* the identity */
	{
		float *da = zeros((size_t)M2 * mid), *da1 = zeros(n1);

		conv_backward(da, dw[2], c.z3, c.a2, c.w3, &c.s3, c.work,
		    c.nwork);
		batchnorm_backward(c.z2, dg[1], db[1], da, c.z2,
		    c.mean[1], c.invstd[1], c.g[1], c.b[1], M2, mid, 1);
		conv_backward(da1, dw[1], c.z2, c.a1, c.w2, &c.s2, c.work,
		    c.nwork);
		batchnorm_backward(c.z1, dg[0], db[0], da1, c.z1,
		    c.mean[0], c.invstd[0], c.g[0], c.b[0], M1, mid, 1);
		conv_backward(dx, dw[0], c.z1, c.x, c.w1, &c.s1, c.work,
		    c.nwork);
		free(da), free(da1);
	}

	snprintf(name, sizeof name, "%s dinp", what);
	fd_check(name, block_loss, &c, c.x, dx, nx, 1e-3, BLOCK_TOL);
	for (int i = 0; i < 4; i++) {
		float *w = i == 0 ? c.w1 : i == 1 ? c.w2 : i == 2 ? c.w3 : c.wd;

		if (i == 3 && !down)
			break;
		snprintf(name, sizeof name, "%s conv%d", what, i + 1);
		fd_check(name, block_loss, &c, w, dw[i], nw[i], 1e-3, BLOCK_TOL);
		snprintf(name, sizeof name, "%s bn%d gamma", what, i + 1);
		fd_check(name, block_loss, &c, c.g[i], dg[i], i < 2 ? mid : out,
		    1e-3, BLOCK_TOL);
		snprintf(name, sizeof name, "%s bn%d beta", what, i + 1);
		fd_check(name, block_loss, &c, c.b[i], db[i], i < 2 ? mid : out,
		    1e-3, BLOCK_TOL);
	}
	free(c.work), free(c.x), free(c.w1), free(c.w2), free(c.w3);
	free(c.wd), free(c.z1), free(c.a1), free(c.z2), free(c.a2);
	free(c.z3), free(c.zd), free(c.yd), free(c.y), free(c.r), free(dx);
	free(gbuf);
	for (int i = 0; i < 4; i++) {
		free(c.g[i]), free(c.b[i]), free(c.mean[i]), free(c.invstd[i]);
		free(dg[i]), free(db[i]), free(dw[i]);
	}
}

TEST(residual_block)
{
	block_case("block down s2", 4, 3, 8, 2, 1);
	block_case("block identity", 6, 3, 6, 1, 0);
}

// ----------------------------------------------------------------------------

int
main(int argc, char **argv)
{
	(void)argc;
	blas_init(argv);
	rng_init(&g, 1, RNG_STREAM_USER, 0);
	RUN(conv);
	RUN(batchnorm);
	RUN(batchnorm_running);
	RUN(batchnorm_team);
	RUN(pooling);
	RUN(maxpool_ties);
	RUN(avgpool_divisor);
	RUN(linear);
	RUN(dropout);
	RUN(crossentropy);
	RUN(residual_block);
	return check_summary();
}

/*
 * t_relloc: the pairing, neck, head and loss of relloc.h.
 *   - finite differences of the whole neck/head + pairing, through the
 *     features and every parameter, in both batchings (shared centre and
 *     MMSelfSup's split passes);
 *   - the shared batching is the same function as the split one fed with
 *     the centre repeated (same loss, same parameter gradients, centre
 *     gradient = the sum over its pairs);
 *   - the pair layout and labels; eval mode leaves the running statistics
 *     alone; a checkpoint round trip; and learning: with a stand-in
 *     feature extractor (a fixed code per grid position plus noise), plain
 *     SGD on the neck and head reaches near-perfect pretext accuracy.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/blas.h"
#include "common/ckpt.h"
#include "common/relloc.h"
#include "common/rng.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

#define NSAMPLE 30

static Rng g;

static void
fill_normal(float *x, size_t n, double scale)
{
	th_fill_normal(x, n, &g, scale);
}

/* A small model whose gradients are large enough for float differences. */
static void
small_model(RelLoc *m, int D, int H, int maxpairs, uint64_t seed)
{
	RelLocConfig c;

	relloc_config_default(&c, D, maxpairs);
	c.hidden = H;
	c.fc_std = 0.5f;
	c.cls_std = 0.5f;
	relloc_init(m, &c, NULL, NULL, seed);
	/* non-trivial BN affine parameters and biases */
	fill_normal(m->fc_b, H, 0.1);
	for (int h = 0; h < H; h++) {
		m->bn_w[h] = 1.0f + 0.3f * (float)rng_normal(&g);
		m->bn_b[h] = 0.3f * (float)rng_normal(&g);
	}
	fill_normal(m->cls_b, RELLOC_NCLASS, 0.1);
}

typedef struct {
	RelLoc *m;
	const float *feat;
	const RelLocPairs *p;
} Ctx;

static double
loss_of(Ctx *c)
{
	return relloc_forward(c->m, c->feat, c->p, 1, 11, 3, NULL);
}

/* A hash of which neck units the ReLU let through in the last forward:
 * a difference quotient across a kink says nothing of the gradient. */
static uint64_t
relu_pattern(const Ctx *c)
{
	size_t n = (size_t)c->p->npairs * c->m->cfg.hidden;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (c->m->hbn[i] > 0)) * 1099511628211ULL;
	return h;
}

/* grad[n] against central differences by x[n], at up to NSAMPLE entries;
 * |num - ana| <= tol * (|ana| + max|ana| / 10). zero: the gradient must
 * vanish instead. */
static void
fd_check(const char *what, Ctx *c, float *x, const float *grad, size_t n,
    double h, double tol, int zero)
{
	double gmax = 0, worst = 0;
	size_t step = n <= NSAMPLE ? 1 : n / NSAMPLE;
	uint64_t pp;
	int kinks = 0;

	for (size_t i = 0; i < n; i++)
		gmax = fmax(gmax, fabs(grad[i]));
	CHECK(gmax > 0, "%s: zero gradient", what);
	if (zero) {
		/* the fc bias before a batch norm: its gradient is 0 */
		CHECK(gmax < 1e-6, "%s: gradient %g, want 0", what, gmax);
		printf("  %-26s max |gradient| %.2e (exactly 0 in theory)\n",
		    what, gmax);
		return;
	}
	for (size_t i = 0; i < n; i += step) {
		float x0 = x[i];
		double lp, lm, num, err;

		x[i] = (float)(x0 + h);
		lp = loss_of(c);
		pp = relu_pattern(c);
		x[i] = (float)(x0 - h);
		lm = loss_of(c);
		x[i] = x0;
		if (pp != relu_pattern(c)) {
			kinks++;
			continue;
		}
		num = (lp - lm) / (2 * h);
		err = fabs(num - grad[i]) / (fabs(grad[i]) + gmax / 10);
		if (err > worst)
			worst = err;
		CHECK(err <= tol, "%s[%zu]: numeric %.6g, analytic %.6g", what,
		    i, num, (double)grad[i]);
	}
	printf("  %-26s worst relative diff %.2e", what, worst);
	if (kinks)
		printf(" (%d entries across a ReLU kink skipped)", kinks);
	printf("\n");
	CHECK(kinks < 4, "%s: %d kinks", what, kinks);
}

static void
grad_check(RelLocMode mode)
{
	int D = 5, H = 24, nimg = 2;
	RelLocPairs p;
	RelLoc m;
	RelLocTensor t[RELLOC_NTENSOR];
	float *feat, *dfeat;
	Ctx c;

	relloc_pairs_make(&p, mode, nimg);
	small_model(&m, D, H, p.npairs, 5);
	feat = emalloc((size_t)p.nrows * D * sizeof(float));
	dfeat = emalloc((size_t)p.nrows * D * sizeof(float));
	fill_normal(feat, (size_t)p.nrows * D, 1);
	c.m = &m, c.feat = feat, c.p = &p;

	relloc_zero_grad(&m);
	loss_of(&c);
	relloc_backward(&m, dfeat);
	fd_check("features", &c, feat, dfeat, (size_t)p.nrows * D, 1e-3,
	    2e-2, 0);
	relloc_tensors(&m, t);
	for (int i = 0; i < RELLOC_NTENSOR; i++) {
		size_t n, off;

		if (!t[i].param)
			continue;
		n = (size_t)t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
		off = (size_t)(t[i].data - m.params);
		fd_check(t[i].name, &c, t[i].data, m.grads + off, n, 1e-3,
		    2e-2, t[i].data == m.fc_b);
	}
	free(feat);
	free(dfeat);
	relloc_free(&m);
	relloc_pairs_free(&p);
}

TEST(grad_shared)
{
	grad_check(RELLOC_SHARED);
}

TEST(grad_split)
{
	grad_check(RELLOC_SPLIT);
}

TEST(pairs_layout)
{
	RelLocPairs s, x;

	relloc_pairs_make(&s, RELLOC_SHARED, 3);
	relloc_pairs_make(&x, RELLOC_SPLIT, 3);
	CHECK(s.npairs == 24 && s.nrows == 27 && s.ncentres == 3, "shared");
	CHECK(x.npairs == 24 && x.nrows == 48 && x.ncentres == 24, "split");
	/* image 1, label 4 = grid position 5 (right of the centre) */
	CHECK(s.nb_row[12] == 14 && s.cen_row[s.cen[12]] == 13 &&
	    s.label[12] == 4, "image 1 label 4");
	CHECK(s.nb_row[16 + 7] == 18 + 8 && s.label[23] == 7, "last pair");
	CHECK(x.nb_row[12] == 12 && x.cen_row[x.cen[12]] == 24 + 12 &&
	    x.label[12] == 4, "split pair 12");
	relloc_pairs_free(&s);
	relloc_pairs_free(&x);
}

TEST(shared_equals_split)
{
	int D = 6, H = 32, nimg = 3;
	RelLocPairs s, x;
	RelLoc ms, mx;
	float *fs, *fx, *ds, *dx;
	float ls, lx;
	int cs, cx;
	double worst = 0;

	relloc_pairs_make(&s, RELLOC_SHARED, nimg);
	relloc_pairs_make(&x, RELLOC_SPLIT, nimg);
	small_model(&ms, D, H, x.npairs, 9);
	small_model(&mx, D, H, x.npairs, 9);
	memcpy(mx.params, ms.params, ms.nparams * sizeof(float));
	fs = emalloc((size_t)s.nrows * D * sizeof(float));
	ds = emalloc((size_t)s.nrows * D * sizeof(float));
	fx = emalloc((size_t)x.nrows * D * sizeof(float));
	dx = emalloc((size_t)x.nrows * D * sizeof(float));
	fill_normal(fs, (size_t)s.nrows * D, 1);
	for (int k = 0; k < x.npairs; k++) {
		memcpy(fx + (size_t)k * D, fs + (size_t)s.nb_row[k] * D,
		    D * sizeof(float));
		memcpy(fx + (size_t)(x.npairs + k) * D,
		    fs + (size_t)s.cen_row[s.cen[k]] * D, D * sizeof(float));
	}
	relloc_zero_grad(&ms);
	relloc_zero_grad(&mx);
	ls = relloc_forward(&ms, fs, &s, 1, 4, 8, &cs);
	lx = relloc_forward(&mx, fx, &x, 1, 4, 8, &cx);
	relloc_backward(&ms, ds);
	relloc_backward(&mx, dx);
	CHECK_NEAR(ls, lx, 1e-6, 1e-6);
	CHECK(cs == cx, "correct %d vs %d", cs, cx);
	for (size_t i = 0; i < ms.nparams; i++)
		worst = fmax(worst, fabs(ms.grads[i] - mx.grads[i]));
	CHECK(worst < 1e-5, "parameter gradients differ by %g", worst);
	worst = 0;
	for (int i = 0; i < nimg; i++)
		for (int d = 0; d < D; d++) {
			double sum = 0;

			for (int k = 0; k < RELLOC_NCLASS; k++) {
				int j = RELLOC_NCLASS * i + k;

				sum += dx[(size_t)(x.npairs + j) * D + d];
				worst = fmax(worst, fabs(dx[(size_t)j * D + d] -
				    ds[(size_t)s.nb_row[j] * D + d]));
			}
			worst = fmax(worst, fabs(sum -
			    ds[(size_t)(9 * i + 4) * D + d]));
		}
	CHECK(worst < 1e-5, "feature gradients differ by %g", worst);
	/* the fc products differ in shape (M rows), so in the last bits */
	worst = 0;
	for (int h = 0; h < H; h++)
		worst = fmax(worst, fabs(ms.running_var[h] - mx.running_var[h]) /
		    fmax(fabs(mx.running_var[h]), 1e-30));
	CHECK(worst < 1e-5, "running variances differ by %g relative", worst);
	free(fs), free(fx), free(ds), free(dx);
	relloc_free(&ms);
	relloc_free(&mx);
	relloc_pairs_free(&s);
	relloc_pairs_free(&x);
}

TEST(running_stats_and_eval)
{
	int D = 4, H = 8;
	RelLocPairs p;
	RelLoc m;
	float *feat, rv[8], rm[8];
	double mean = 0;

	relloc_pairs_make(&p, RELLOC_SHARED, 2);
	small_model(&m, D, H, p.npairs, 1);
	feat = emalloc((size_t)p.nrows * D * sizeof(float));
	fill_normal(feat, (size_t)p.nrows * D, 1);
	relloc_forward(&m, feat, &p, 1, 1, 0, NULL);
	/* one update with momentum 0.003 from mean 0 */
	for (int k = 0; k < p.npairs; k++)
		mean += m.hpre[(size_t)k * H];
	mean /= p.npairs;
	CHECK_NEAR(m.running_mean[0], 0.003 * mean, 1e-7, 1e-4);
	CHECK(m.num_batches_tracked == 1, "tracked %lld",
	    (long long)m.num_batches_tracked);
	memcpy(rv, m.running_var, sizeof(rv));
	memcpy(rm, m.running_mean, sizeof(rm));
	relloc_forward(&m, feat, &p, 0, 1, 0, NULL);
	CHECK(!memcmp(rv, m.running_var, sizeof(rv)) &&
	    !memcmp(rm, m.running_mean, sizeof(rm)) &&
	    m.num_batches_tracked == 1, "eval changed the statistics");
	free(feat);
	relloc_free(&m);
	relloc_pairs_free(&p);
}

TEST(ckpt_roundtrip)
{
	char path[] = "/tmp/t_relloc_XXXXXX", err[CKPT_ERRLEN];
	RelLoc a, b, c;
	float *pb, *gb;
	RelLocConfig cfg;
	CkptWriter *w;
	Ckpt *ck;
	int fd;

	small_model(&a, 6, 16, 16, 3);
	a.num_batches_tracked = 77;
	fill_normal(a.running_mean, 16, 1);
	relloc_config_default(&cfg, 6, 16);
	cfg.hidden = 16;
	/* b lives in blocks of the caller's, as the trainer places it */
	pb = ecalloc(relloc_nparams(&cfg) + 5, sizeof(float));
	gb = ecalloc(relloc_nparams(&cfg) + 5, sizeof(float));
	relloc_init(&b, &cfg, pb + 5, gb + 5, 99);
	CHECK(b.params == pb + 5 && b.grads == gb + 5 && !b.own, "blocks");
	cfg.D = 7;
	relloc_init(&c, &cfg, NULL, NULL, 99);
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	close(fd);
	ckpt_writer_create(&w);
	CHECK(relloc_ckpt_add(&a, w, err, sizeof(err)) == 0, "%s", err);
	CHECK(ckpt_writer_write(w, path, err, sizeof(err)) == 0, "%s", err);
	ckpt_writer_free(w);
	CHECK(ckpt_open(&ck, path, err, sizeof(err)) == 0, "%s", err);
	if (ck) {
		CHECK(ckpt_ntensors(ck) == RELLOC_NTENSOR, "ntensors");
		CHECK(relloc_ckpt_load(&b, ck, err, sizeof(err)) == 0, "%s",
		    err);
		CHECK(!memcmp(a.params, b.params, a.nparams * sizeof(float)),
		    "params differ");
		CHECK(!memcmp(a.running_mean, b.running_mean,
		    32 * sizeof(float)) && b.num_batches_tracked == 77,
		    "buffers differ");
		CHECK(relloc_ckpt_load(&c, ck, err, sizeof(err)) < 0 &&
		    strstr(err, "neck.fc.weight"), "wrong D accepted: %s", err);
		ckpt_close(ck);
	}
	unlink(path);
	relloc_free(&a);
	relloc_free(&b);
	relloc_free(&c);
	free(pb);
	free(gb);
}

/*
 * Learning with a stand-in feature extractor: patch p of image i has
 * feature code[p] + noise. SGD (lr 0.1, momentum 0.9) on the neck and
 * head alone must reach > 90% pretext accuracy on fresh images.
 */
TEST(learns)
{
	int D = 16, nimg = 16, steps = 150;
	RelLocPairs p;
	RelLoc m;
	RelLocConfig cfg;
	float code[9][16], *feat, *dfeat, *mom;
	int correct = 0;

	relloc_pairs_make(&p, RELLOC_SHARED, nimg);
	relloc_config_default(&cfg, D, p.npairs);
	cfg.hidden = 64;
	relloc_init(&m, &cfg, NULL, NULL, 1);
	feat = emalloc((size_t)p.nrows * D * sizeof(float));
	dfeat = emalloc((size_t)p.nrows * D * sizeof(float));
	mom = ecalloc(m.nparams, sizeof(float));
	for (int q = 0; q < 9; q++)
		fill_normal(code[q], D, 1);
	for (int s = 0; s <= steps; s++) {
		for (int i = 0; i < nimg; i++)
			for (int q = 0; q < 9; q++)
				for (int d = 0; d < D; d++)
					feat[(size_t)(9 * i + q) * D + d] =
					    code[q][d] +
					    0.5f * (float)rng_normal(&g);
		if (s == steps) {
			relloc_forward(&m, feat, &p, 0, 1, s, &correct);
			break;
		}
		relloc_zero_grad(&m);
		relloc_forward(&m, feat, &p, 1, 1, s, NULL);
		relloc_backward(&m, dfeat);
		for (size_t i = 0; i < m.nparams; i++) {
			mom[i] = 0.9f * mom[i] + m.grads[i];
			m.params[i] -= 0.1f * mom[i];
		}
	}
	CHECK(correct > 0.9 * p.npairs, "%d of %d pairs right", correct,
	    p.npairs);
	printf("  stand-in features: %d/%d pairs right after %d steps\n",
	    correct, p.npairs, steps);
	free(feat), free(dfeat), free(mom);
	relloc_free(&m);
	relloc_pairs_free(&p);
}

int
main(int argc, char **argv)
{
	(void)argc;
	blas_init(argv);
	rng_init(&g, 2024, RNG_STREAM_USER, 0);
	RUN(grad_shared);
	RUN(grad_split);
	RUN(pairs_layout);
	RUN(shared_equals_split);
	RUN(running_stats_and_eval);
	RUN(ckpt_roundtrip);
	RUN(learns);
	return check_summary();
}

/*
 * engine_bench: times one Relative-Location training step of the engine,
 * the same work as `torch_relloc.py train --shared-center` (the PyTorch
 * peer): I images x 9 patches of 3x64x64 through the trunk in one batch
 * (BN in train mode), the GAP features paired (centre, neighbour) into
 * 8 pairs per image, then Linear(2F, 4096), BatchNorm1d, ReLU, Dropout(0.5),
 * Linear(4096, 8), cross-entropy, the backward of all of it, and an SGD
 * step (lr 0.01, momentum 0.9, weight decay 5e-4) over the one parameter
 * block. Built by `make bench` (build/bench/engine_bench), run by
 * bench/b_engine.sh; not part of `make all`.
 *
 * Prints one line per step with -v, then a summary: seconds per step
 * (median), pairs/s, and GFLOP/s counting convolutions and linear layers
 * only, as 2 * multiply-accumulates of the forward, times 3 for forward +
 * backward (the backward's two products per layer = 2x the forward).
 * These are a direct convolution's FLOPs: with the 3x3 stride-1
 * convolutions done by Winograd (wino.c) the figure is an equivalent rate
 * ("direct-equivalent"), above what the FPUs execute. Beside it, the share
 * of this machine's sgemm peak (2048^3 through blas_gemm, the same threads
 * and kernels): given with -P (bench/run.sh measures it once), or measured
 * here before the steps.
 *
 * usage: engine_bench [-v] [-a depth] [-i images] [-n steps] [-w warmup]
 *     [-P peak-gflops]
 */
#include <sys/resource.h>

#include <unistd.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/layers.h"
#include "common/optim.h"
#include "common/resnet.h"
#include "common/rng.h"
#include "common/util.h"

#define HID 4096
#define NCLS 8

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Minor page faults of the process so far. */
static long
minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

int
main(int argc, char **argv)
{
	int depth = 50, I = 16, steps = 5, warmup = 2, verbose = 0, ch;
	int P, NP, F, D;
	ResNetConfig cfg;
	ResNet *net;
	ResNetCtx *ctx;
	char err[256];
	size_t ntrunk, nhead, ntotal;
	float *params, *grads, *mom, *x, *feat, *dfeat, *pair, *dpair;
	float *h1, *h2, *h3, *mask, *logits, *probs, *dlog, *dh3, *dh2, *dh1;
	float *w1, *b1, *gam, *bet, *w2, *b2, *dw1, *db1, *dgam, *dbet;
	float *dw2, *db2, *mean, *invstd, *rm, *rv, *scratch;
	int *labels;
	double *ts, macs, t0, tf, tb, fwd_flop, c0, peak = 0;
	char cpu[256];
	long f0;
	Rng g;
	OptimGroup group;

	blas_init(argv);
	while ((ch = getopt(argc, argv, "a:i:n:P:vw:")) != -1)
		switch (ch) {
		case 'a':
			depth = (int)estrtonum(optarg, 18, 50, "depth");
			break;
		case 'i':
			I = (int)estrtonum(optarg, 1, 1000, "images");
			break;
		case 'n':
			steps = (int)estrtonum(optarg, 1, 1000, "steps");
			break;
		case 'P':
			peak = estrtod(optarg, 1, 1e6, "peak");
			break;
		case 'v':
			verbose = 1;
			break;
		case 'w':
			warmup = (int)estrtonum(optarg, 0, 1000, "warmup");
			break;
		default:
			fprintf(stderr, "usage: engine_bench [-v] [-a depth] "
			    "[-i images] [-n steps] [-w warmup] [-P peak-gflops]\n");
			return 2;
		}
	if (resnet_config(&cfg, depth, 64, err, sizeof err) != 0) {
		fprintf(stderr, "engine_bench: %s\n", err);
		return 2;
	}
	P = I * 9;       /* patches through the trunk */
	NP = I * 8;      /* pairs */
	ntrunk = resnet_nparams(&cfg);
	/* the one block: trunk, then the neck and head */
	nhead = (size_t)HID * 2 * 2048 + HID + 2 * HID + (size_t)NCLS * HID +
	    NCLS;
	ntotal = ntrunk + nhead;
	params = emalloc_aligned(ntotal * sizeof(float));
	grads = emalloc_aligned(ntotal * sizeof(float));
	mom = emalloc_aligned(ntotal * sizeof(float));
	memset(mom, 0, ntotal * sizeof(float));
	resnet_create(&net, &cfg, params, grads, 1);
	F = resnet_stage_channels(net, 4);
	D = 2 * F;
	w1 = params + ntrunk, dw1 = grads + ntrunk;
	b1 = w1 + (size_t)HID * D, db1 = dw1 + (size_t)HID * D;
	gam = b1 + HID, dgam = db1 + HID;
	bet = gam + HID, dbet = dgam + HID;
	w2 = bet + HID, dw2 = dbet + HID;
	b2 = w2 + (size_t)NCLS * HID, db2 = dw2 + (size_t)NCLS * HID;
	rng_init(&g, 1, RNG_STREAM_INIT, 999);
	for (size_t i = 0; i < (size_t)HID * D; i++)
		w1[i] = (float)(0.01 * rng_normal(&g));
	for (size_t i = 0; i < (size_t)NCLS * HID; i++)
		w2[i] = (float)(0.005 * rng_normal(&g));
	for (int i = 0; i < HID; i++)
		b1[i] = 0, gam[i] = 1, bet[i] = 0;
	for (int i = 0; i < NCLS; i++)
		b2[i] = 0;
	if (resnet_ctx_create(&ctx, net, P, 64, 64, 1, err, sizeof err) != 0) {
		fprintf(stderr, "engine_bench: %s\n", err);
		return 1;
	}
	x = emalloc((size_t)P * 64 * 64 * 3 * sizeof *x);
	for (size_t i = 0; i < (size_t)P * 64 * 64 * 3; i++)
		x[i] = (float)rng_normal(&g);
	labels = emalloc(NP * sizeof *labels);
	for (int i = 0; i < NP; i++)
		labels[i] = i % 8;
	feat = emalloc((size_t)P * F * 4), dfeat = emalloc((size_t)P * F * 4);
	pair = emalloc((size_t)NP * D * 4), dpair = emalloc((size_t)NP * D * 4);
	h1 = emalloc((size_t)NP * HID * 4), h2 = emalloc((size_t)NP * HID * 4);
	h3 = emalloc((size_t)NP * HID * 4), mask = emalloc((size_t)NP * HID * 4);
	dh1 = emalloc((size_t)NP * HID * 4), dh2 = emalloc((size_t)NP * HID * 4);
	dh3 = emalloc((size_t)NP * HID * 4);
	logits = emalloc(NP * NCLS * 4), probs = emalloc(NP * NCLS * 4);
	dlog = emalloc(NP * NCLS * 4);
	mean = emalloc(HID * 4), invstd = emalloc(HID * 4);
	rm = ecalloc(HID, 4), rv = emalloc(HID * 4);
	for (int i = 0; i < HID; i++)
		rv[i] = 1;
	scratch = emalloc(blas_gemm_scratch(HID, D) * 4 + 4);
	ts = emalloc((warmup + steps) * sizeof *ts);

	macs = resnet_ctx_macs(ctx) * P + (double)NP * D * HID +
	    (double)NP * HID * NCLS;
	fwd_flop = 2 * macs;
	group.off = 0, group.n = ntotal, group.wd = 5e-4f;
	if (peak == 0) {
		static const BlasShape sq = {"sgemm 2048^3", 0, 0, 2048, 2048,
		    2048, 0};

		peak = blas_rate(&sq, 0.5, NULL);
	}
	blas_cpu(cpu, sizeof cpu);
	fprintf(stderr, "engine_bench: resnet%d, %d images = %d patches, %d "
	    "pairs, %.1f GFLOP forward, %d threads, %s, OpenBLAS core %s "
	    "(%s), sgemm peak %.1f GFLOP/s, context %.0f MiB\n", depth, I, P,
	    NP, fwd_flop / 1e9, blas_threads(), cpu, blas_corename(),
	    blas_origin(), peak, resnet_ctx_bytes(ctx) / 1048576.0);

	for (int it = 0; it < warmup + steps; it++) {
		float loss;
		int right;

		c0 = cpu_seconds();
		f0 = minor_faults();
		t0 = now_seconds();
#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < ntotal; i++)
			grads[i] = 0;
		resnet_forward(net, ctx, x, P, 1);
		resnet_gap(ctx, feat);
		/* pairs: (centre, neighbour k) of each image */
		for (int i = 0; i < I; i++)
			for (int k = 0; k < 8; k++) {
				float *pp = pair + (size_t)(i * 8 + k) * D;

				memcpy(pp, feat + (size_t)i * 9 * F, F * 4);
				memcpy(pp + F, feat + (size_t)(i * 9 + 1 + k) * F,
				    F * 4);
			}
		linear_forward(h1, pair, w1, b1, NP, D, HID);
		batchnorm_forward(h2, mean, invstd, rm, rv, h1, NULL, gam, bet,
		    NP, HID, 0.1f, 1e-5f, 1);
		dropout_forward(h3, mask, h2, (size_t)NP * HID, 0.5f, 1, it);
		linear_forward(logits, h3, w2, b2, NP, HID, NCLS);
		loss = crossentropy_forward(probs, &right, logits, labels, NP,
		    NCLS);
		tf = now_seconds();
		crossentropy_backward(dlog, probs, labels, NP, NCLS, 1.0f);
		memset(dh3, 0, (size_t)NP * HID * 4);
		linear_backward(dh3, dw2, db2, dlog, h3, w2, NP, HID, NCLS,
		    scratch);
		dropout_backward(dh2, dh3, mask, (size_t)NP * HID);
		batchnorm_backward(dh1, dgam, dbet, dh2, h1, mean, invstd,
		    gam, bet, NP, HID, 1);
		memset(dpair, 0, (size_t)NP * D * 4);
		linear_backward(dpair, dw1, db1, dh1, pair, w1, NP, D, HID,
		    scratch);
		memset(dfeat, 0, (size_t)P * F * 4);
		for (int i = 0; i < I; i++)
			for (int k = 0; k < 8; k++) {
				const float *dp = dpair + (size_t)(i * 8 + k) * D;
				float *dc = dfeat + (size_t)i * 9 * F;
				float *dn = dfeat + (size_t)(i * 9 + 1 + k) * F;

				for (int c = 0; c < F; c++) {
					dc[c] += dp[c];
					dn[c] += dp[F + c];
				}
			}
		resnet_backward(net, ctx, dfeat, NULL, NULL);
		tb = now_seconds();
		sgd_step(params, grads, mom, &group, 1, 0.01f, 0.9f);
		ts[it] = now_seconds() - t0;
		if (verbose)
			fprintf(stderr, "step %d: %.3f s (forward %.3f, backward "
			    "%.3f, sgd %.3f) cpu %.3f s, %ld page faults, loss "
			    "%.4f\n", it, ts[it], tf - t0, tb - tf, ts[it] -
			    (tb - t0), cpu_seconds() - c0, minor_faults() - f0,
			    loss);
	}
	qsort(ts + warmup, steps, sizeof *ts, cmp_double);
	{
		double med = ts[warmup + steps / 2];

		printf("engine: resnet%d step %.3f s (median of %d; min %.3f, "
		    "max %.3f), %.1f pairs/s, %.1f GFLOP/s direct-equivalent "
		    "(3 x %.1f GFLOP forward, conv+linear), %.0f%% of the "
		    "measured sgemm peak %.1f GFLOP/s (%s, core %s)\n",
		    depth, med, steps, ts[warmup], ts[warmup + steps - 1],
		    NP / med, 3 * fwd_flop / med / 1e9, fwd_flop / 1e9,
		    100 * 3 * fwd_flop / med / 1e9 / peak, peak, cpu,
		    blas_corename());
	}
	resnet_ctx_free(ctx);
	resnet_free(net);
	return 0;
}

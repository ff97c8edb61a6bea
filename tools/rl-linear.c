/*
 * rl-linear: linear evaluation on precomputed features, MMSelfSup 0.x's
 * mhead (a BatchNorm + linear head per Feature1-5 file, trained
 * independently) and AvgPool (a linear layer on 2048-d pooled features)
 * protocols; prints top-1/top-5 per head.
 */
#include <err.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/fdata.h"
#include "common/probe.h"
#include "common/util.h"

#define MAXHEAD 16

static const char usage_line[] =
    "usage: rl-linear [-hVv] [--json] [-a recipe] [-b batch] [-c channels] "
    "[-e epochs]\n"
    "                 [-l lr] [-m steps] [-s seed] [-w wd]\n"
    "                 train-labels val-labels train-feat val-feat "
    "[train-feat val-feat ...]\n";

static const char options_text[] =
    "  train-labels, val-labels  (N,) integer .npy class labels\n"
    "  train-feat val-feat   (N, D) float .npy features, a pair per "
    "head\n"
    "  -a, --recipe recipe   mhead (BN + linear, default) or avgpool "
    "(linear)\n"
    "  -b, --batch batch     rows per SGD step (default 256)\n"
    "  -c, --channels list   BN channels per head, or one for all "
    "(default: D)\n"
    "  -e, --epochs epochs   train this long, the lr steps rescaled "
    "(default 90/100)\n"
    "  -h, --help            print this help and exit\n"
    "  --json                print the results as JSON instead of a "
    "table\n"
    "  -l, --lr lr           base learning rate (default 0.01/30)\n"
    "  -m, --steps list      epochs where the lr drops x0.1 "
    "(default 30,60,90/60,80)\n"
    "  -s, --seed seed       initial weights and epoch order "
    "(default 0)\n"
    "  -V, --version         print the version and exit\n"
    "  -v, --verbose         progress and per-epoch loss on stderr\n"
    "  -w, --wd wd           weight decay (default 1e-4/0)\n";

enum { OPT_JSON = 256 };

typedef struct {
	Progress prog;
	size_t base, total;
	char extra[96];
} Show;

static void
show(void *ctx, size_t rows)
{
	Show *s = ctx;

	progress_show(&s->prog, s->base + rows, s->total, s->extra);
}

typedef struct {
	size_t dim, channels, ntrain, nval;
	double train_loss, train_top1, val_loss, top1, top5;
} HeadResult;

/* Train and evaluate head h on (train, val) files; fills r. */
static void
run_head(HeadResult *r, const ProbeConfig *c, int h, int nclass_hint,
    const char *tl, const char *vl, const char *tf, const char *vf,
    int verbose, int *nclass)
{
	FData tr, va;
	Probe p;
	Show s;
	char err[512];
	size_t t1, v1, v5;

	if (fdata_load(&tr, tf, tl, err, sizeof err) ||
	    fdata_load(&va, vf, vl, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
	if (fdata_same_dim(&tr, &va, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
	*nclass = RL_MAX(nclass_hint, RL_MAX(tr.nclass, va.nclass));
	if (probe_init(&p, c, tr.dim, *nclass, h, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s: %s", tf, err);
	progress_init(&s.prog, "rows", verbose);
	s.total = (size_t)c->epochs * tr.n;
	for (int e = 0; e < c->epochs; e++) {
		double loss;
		s.base = (size_t)e * tr.n;
		snprintf(s.extra, sizeof s.extra, "head %d epoch %d/%d", h + 1,
		    e + 1, c->epochs);
		loss = probe_train_epoch(&p, tr.x, tr.y, tr.n, e, show, &s);
		if (verbose) {
			snprintf(s.extra, sizeof s.extra, "head %d epoch %d/%d "
			    "lr %g loss %.4f", h + 1, e + 1, c->epochs,
			    probe_lr(c, e), loss);
			progress_end(&s.prog, s.base + tr.n, s.total, s.extra);
		}
	}
	probe_evaluate(&p, tr.x, tr.y, tr.n, &t1, NULL, &r->train_loss);
	probe_evaluate(&p, va.x, va.y, va.n, &v1, &v5, &r->val_loss);
	r->dim = tr.dim;
	r->channels = c->bn ? p.channels : 0;
	r->ntrain = tr.n;
	r->nval = va.n;
	r->train_top1 = 100.0 * t1 / tr.n;
	r->top1 = 100.0 * v1 / va.n;
	r->top5 = 100.0 * v5 / va.n;
	probe_free(&p);
	fdata_free(&tr);
	fdata_free(&va);
}

static void
print_json(const ProbeConfig *c, const char *recipe, int nclass, int nhead,
    const HeadResult *r, char **feat)
{
	json_t *steps = json_array(), *heads = json_array(), *o;

	for (int i = 0; i < c->nsteps; i++)
		json_array_append_new(steps, json_integer(c->steps[i]));
	for (int h = 0; h < nhead; h++)
		json_array_append_new(heads, json_pack("{s:i, s:s, s:s, s:I, "
		    "s:I, s:f, s:f, s:f, s:f, s:f}", "head", h + 1,
		    "train", feat[2 * h], "val", feat[2 * h + 1],
		    "dim", (json_int_t)r[h].dim,
		    "bn_channels", (json_int_t)r[h].channels,
		    "train_loss", r[h].train_loss, "train_top1", r[h].train_top1,
		    "val_loss", r[h].val_loss, "top1", r[h].top1,
		    "top5", r[h].top5));
	o = json_pack("{s:s, s:i, s:o, s:f, s:f, s:f, s:b, s:b, s:i, s:I, "
	    "s:i, s:o}", "recipe", recipe, "epochs", c->epochs, "steps", steps,
	    "lr", c->lr, "momentum", c->momentum, "wd", c->wd,
	    "nesterov", c->nesterov, "bn", c->bn, "batch", c->batch,
	    "seed", (json_int_t)c->seed, "classes", nclass, "heads", heads);
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
	putchar('\n');
	json_decref(o);
}

static void
print_table(const ProbeConfig *c, const char *recipe, int nclass, int nhead,
    const HeadResult *r, char **feat)
{
	printf("# %s: %d epochs, lr %g x%g at", recipe, c->epochs, c->lr,
	    c->gamma);
	for (int i = 0; i < c->nsteps; i++)
		printf("%s%d", i ? "," : " ", c->steps[i]);
	printf(", momentum %g%s, wd %g, batch %d, seed %llu, %d classes\n",
	    c->momentum, c->nesterov ? " nesterov" : "", c->wd, c->batch,
	    (unsigned long long)c->seed, nclass);
	printf("%4s %6s %10s %10s %8s %7s %7s  %s\n", "head", "dim",
	    "train_loss", "train_top1", "val_loss", "top1", "top5", "features");
	for (int h = 0; h < nhead; h++)
		printf("%4d %6zu %10.4f %10.2f %8.4f %7.2f %7.2f  %s\n", h + 1,
		    r[h].dim, r[h].train_loss, r[h].train_top1, r[h].val_loss,
		    r[h].top1, r[h].top5, feat[2 * h]);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"batch", required_argument, NULL, 'b'},
		{"channels", required_argument, NULL, 'c'},
		{"epochs", required_argument, NULL, 'e'},
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"lr", required_argument, NULL, 'l'},
		{"recipe", required_argument, NULL, 'a'},
		{"seed", required_argument, NULL, 's'},
		{"steps", required_argument, NULL, 'm'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"wd", required_argument, NULL, 'w'},
		{NULL, 0, NULL, 0},
	};
	const char *recipe = "mhead";
	ProbeConfig c;
	HeadResult r[MAXHEAD];
	int ch, verbose = 0, json = 0, nhead, nclass = 0;
	int epochs = 0, batch = 0, nchan = 0, chan[MAXHEAD], nsteps = 0;
	int steps[PROBE_MAXSTEPS];
	double lr = -1, wd = -1;
	long long seed = 0;

	blas_init(argv);
	while ((ch = getopt_long(argc, argv, "a:b:c:e:hl:m:s:Vvw:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			recipe = optarg;
			if (strcmp(recipe, "mhead") && strcmp(recipe, "avgpool"))
				errx(RL_EXIT_USAGE, "recipe '%s': want mhead or "
				    "avgpool", recipe);
			break;
		case 'b':
			batch = estrtonum(optarg, 1, 1 << 20, "batch");
			break;
		case 'c':
			nchan = estrtonum_list(optarg, chan, MAXHEAD, 1, 1 << 30,
			    "channels");
			break;
		case 'e':
			epochs = estrtonum(optarg, 1, 100000, "epochs");
			break;
		case 'h':
			rl_help(usage_line, options_text);
		case 'l':
			lr = estrtod(optarg, 0, 1e6, "lr");
			break;
		case 'm':
			nsteps = estrtonum_list(optarg, steps, PROBE_MAXSTEPS, 1,
			    100000,
			    "steps");
			break;
		case 's':
			seed = estrtonum(optarg, 0, INT64_MAX, "seed");
			break;
		case 'V':
			rl_print_version();
			break;
		case 'v':
			verbose = 1;
			break;
		case 'w':
			wd = estrtod(optarg, 0, 1e3, "wd");
			break;
		case OPT_JSON:
			json = 1;
			break;
		default:
			rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 4 || argc % 2)
		rl_usage(usage_line);
	nhead = (argc - 2) / 2;
	if (nhead > MAXHEAD)
		errx(RL_EXIT_USAGE, "%d heads: at most %d", nhead, MAXHEAD);

	// The recipe, then the rescaled schedule, then explicit overrides.
	probe_config_recipe(&c, strcmp(recipe, "mhead") ? PROBE_AVGPOOL :
	    PROBE_MHEAD);
	if (epochs)
		probe_config_epochs(&c, epochs);
	if (nsteps) {
		for (int i = 1; i < nsteps; i++)
			if (steps[i] <= steps[i - 1])
				errx(RL_EXIT_USAGE, "steps: want ascending "
				    "epochs");
		memcpy(c.steps, steps, nsteps * sizeof *steps);
		c.nsteps = nsteps;
	}
	if (lr >= 0)
		c.lr = lr;
	if (wd >= 0)
		c.wd = wd;
	if (batch)
		c.batch = batch;
	c.seed = seed;
	if (nchan && !c.bn)
		errx(RL_EXIT_USAGE, "-c: the avgpool recipe has no BatchNorm");
	if (nchan > 1 && nchan != nhead)
		errx(RL_EXIT_USAGE, "-c: %d channel counts for %d heads", nchan,
		    nhead);

	for (int h = 0; h < nhead; h++) {
		c.channels = nchan ? chan[nchan == 1 ? 0 : h] : 0;
		run_head(&r[h], &c, h, nclass, argv[0], argv[1],
		    argv[2 + 2 * h], argv[3 + 2 * h], verbose, &nclass);
	}
	if (json)
		print_json(&c, recipe, nclass, nhead, r, argv + 2);
	else
		print_table(&c, recipe, nclass, nhead, r, argv + 2);
	return fshut(stdout, "<stdout>");
}

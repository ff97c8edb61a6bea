/*
 * rl-train: train a Siamese ResNet on Relative Location (Doersch et al.
 * 2015) by MMSelfSup's recipe, from grid records (rl-sample) on stdin, in
 * an LMDB directory or over ZeroMQ, into a run directory of checkpoints,
 * metrics and a plot. The numerics are common/train.c's, the input
 * common/feed.c's, the logs common/trainlog.c's; this file is options,
 * wiring, progress, signals and exit codes.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/blas.h"
#include "common/feed.h"
#include "common/train.h"
#include "common/trainlog.h"
#include "common/util.h"

/* ImageNet-1k's 1,281,167 images: a stream's epoch unless told. */
#define IMAGENET_TRAIN 1281167
#define CHANCE 0.125
#define CHANCE_WINDOW 200      /* steps the stuck-at-chance test looks at */

static const char usage_line[] =
    "usage: rl-train [-hVv] [-a arch] [-b images] [-i lmdb-dir | -z endpoint] "
    "[-n senders]\n"
    "                [-o run-dir] [-s seed] [-t seconds] [--chance-steps n] "
    "[--ckpt-epochs n]\n"
    "                [--ckpt-every n] [--dropout p] [--epochs n] "
    "[--gamma f]\n"
    "                [--iters-per-epoch n] [--keep n] [--log-every n] "
    "[--lr f]\n"
    "                [--max-grad-norm f] [--max-steps n] "
    "[--milestones list]\n"
    "                [--mmselfsup-batching] [--momentum f] [--neck-dim n] "
    "[--neck-wd f]\n"
    "                [--plot run-dir] [--resume] [--shuffle n] "
    "[--warmup n] [--warmup-ratio f]\n"
    "                [--wd f] [--width n] [--allow file] [--bad-records n] "
    "[--insecure]\n"
    "                [--key file] [file]\n";

static const char options_text[] =
    "  file              a record stream (default: stdin)\n"
    "  -a arch           resnet18, resnet34 or resnet50 (default)\n"
    "  -b images         images per step (default 16; the recipe: 512)\n"
    "  -h                this help\n"
    "  -i lmdb-dir       read an LMDB written by rl-sample -o, in "
    "seeded epochs\n"
    "  -n senders        with -z: end after this many senders ended "
    "(default 1)\n"
    "  -o run-dir        where checkpoints, metrics.jsonl and "
    "curves.png go\n"
    "  -s seed           seed of weights, dropout and data order "
    "(default 0)\n"
    "  -t seconds        with -z: stop when no record came for this "
    "long\n"
    "                    (default 120; 0 waits forever)\n"
    "  -V                print the version\n"
    "  -v                progress line and messages on stderr\n"
    "  -z endpoint       receive records on a ZeroMQ PULL (binds)\n"
    "  --chance-steps n  warn if accuracy is still at chance after n "
    "steps (5000)\n"
    "  --ckpt-epochs n   checkpoint every n epochs (10; 0: off)\n"
    "  --ckpt-every n    checkpoint every n steps (0: off)\n"
    "  --dropout p       neck dropout (0.5)\n"
    "  --epochs n        epochs in the run (70)\n"
    "  --gamma f         lr factor at each milestone (0.1)\n"
    "  --iters-per-epoch n  steps per epoch of a stream (default: "
    "ImageNet-1k's)\n"
    "  --keep n          checkpoints kept (3)\n"
    "  --log-every n     steps per metrics line (10)\n"
    "  --lr f            peak learning rate (0.2 x images / 512)\n"
    "  --max-grad-norm f stop when the gradient norm exceeds f "
    "(1e4; 0: off)\n"
    "  --max-steps n     stop (with a checkpoint) after step n\n"
    "  --milestones list epochs where the lr drops (30,50)\n"
    "  --mmselfsup-batching  neighbours and centres in two backbone "
    "passes\n"
    "  --momentum f      SGD momentum (0.9)\n"
    "  --neck-dim n      neck width (4096)\n"
    "  --neck-wd f       weight decay of neck and head (5e-4)\n"
    "  --plot run-dir    draw run-dir/curves.png and exit\n"
    "  --resume          continue the run in -o run-dir\n"
    "  --shuffle n       stream shuffle buffer, records (512)\n"
    "  --warmup n        warmup epochs (5)\n"
    "  --warmup-ratio f  lr factor at the start of warmup (0.1)\n"
    "  --wd f            backbone weight decay (1e-4)\n"
    "  --width n         backbone base width (64)\n"
    "  --allow file      with -z and --key: the samplers' public keys "
    "accepted\n"
    "  --bad-records n   with -z: bad frames from samplers skipped "
    "before failing (10)\n"
    "  --insecure        allow a non-loopback -z endpoint without CURVE "
    "keys\n"
    "  --key file        with -z: the trainer's CURVE secret key "
    "(rl-keygen)\n";

enum {
	O_CHANCE = 256, O_CKPT_EPOCHS, O_CKPT_EVERY, O_DROPOUT, O_EPOCHS,
	O_GAMMA, O_IPE, O_KEEP, O_LOG_EVERY, O_LR, O_MAX_GRAD, O_MAX_STEPS,
	O_MILESTONES, O_MMSELFSUP, O_MOMENTUM, O_NECK_DIM, O_NECK_WD, O_PLOT,
	O_RESUME, O_SHUFFLE, O_WARMUP, O_WARMUP_RATIO, O_WD, O_WIDTH,
	O_ALLOW, O_BAD, O_INSECURE, O_KEY
};

static const struct option longopts[] = {
	{ "arch", required_argument, NULL, 'a' },
	{ "batch", required_argument, NULL, 'b' },
	{ "help", no_argument, NULL, 'h' },
	{ "lmdb", required_argument, NULL, 'i' },
	{ "senders", required_argument, NULL, 'n' },
	{ "output", required_argument, NULL, 'o' },
	{ "seed", required_argument, NULL, 's' },
	{ "timeout", required_argument, NULL, 't' },
	{ "version", no_argument, NULL, 'V' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "zmq", required_argument, NULL, 'z' },
	{ "chance-steps", required_argument, NULL, O_CHANCE },
	{ "ckpt-epochs", required_argument, NULL, O_CKPT_EPOCHS },
	{ "ckpt-every", required_argument, NULL, O_CKPT_EVERY },
	{ "dropout", required_argument, NULL, O_DROPOUT },
	{ "epochs", required_argument, NULL, O_EPOCHS },
	{ "gamma", required_argument, NULL, O_GAMMA },
	{ "iters-per-epoch", required_argument, NULL, O_IPE },
	{ "keep", required_argument, NULL, O_KEEP },
	{ "log-every", required_argument, NULL, O_LOG_EVERY },
	{ "lr", required_argument, NULL, O_LR },
	{ "max-grad-norm", required_argument, NULL, O_MAX_GRAD },
	{ "max-steps", required_argument, NULL, O_MAX_STEPS },
	{ "milestones", required_argument, NULL, O_MILESTONES },
	{ "mmselfsup-batching", no_argument, NULL, O_MMSELFSUP },
	{ "momentum", required_argument, NULL, O_MOMENTUM },
	{ "neck-dim", required_argument, NULL, O_NECK_DIM },
	{ "neck-wd", required_argument, NULL, O_NECK_WD },
	{ "plot", required_argument, NULL, O_PLOT },
	{ "resume", no_argument, NULL, O_RESUME },
	{ "shuffle", required_argument, NULL, O_SHUFFLE },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "warmup-ratio", required_argument, NULL, O_WARMUP_RATIO },
	{ "wd", required_argument, NULL, O_WD },
	{ "width", required_argument, NULL, O_WIDTH },
	{ "allow", required_argument, NULL, O_ALLOW },
	{ "bad-records", required_argument, NULL, O_BAD },
	{ "insecure", no_argument, NULL, O_INSECURE },
	{ "key", required_argument, NULL, O_KEY },
	{ NULL, 0, NULL, 0 }
};

/* Everything that is not the training configuration. */
typedef struct {
	const char *dir, *lmdb, *zmq, *file, *plot;
	int verbose, resume, senders, keep, log_every;
	double timeout;
	uint64_t chance_steps, ckpt_epochs, ckpt_every, max_steps;
	uint64_t ipe;                /* --iters-per-epoch, 0 if not given */
	double max_grad_norm;
	size_t shuffle;
	StreamOptions zopt;          /* -z: keys, --insecure, --bad-records */
} Opts;

/* Configuration options as given, applied over the defaults or over a
 * resumed checkpoint's configuration. */
typedef struct {
	int code;
	const char *arg;
} Given;

static volatile sig_atomic_t got_signal;

/*
 * Idle OpenMP threads sleep rather than spin, unless the user chose
 * (OMP_WAIT_POLICY): beside a sampler, or on a shared machine, spinning
 * threads took the cores from the working ones and steps ran 2-5 times
 * slower. libgomp reads the variable when it loads, so the program starts
 * again with it set (blas_init may do that already, for its own reason;
 * RL_BLAS_NO_REEXEC=1 prevents both).
 */
static void
openmp_init(char **argv)
{
	const char *no = getenv("RL_BLAS_NO_REEXEC");
	int again = 0;

	if (!getenv("OMP_WAIT_POLICY") && (!no || *no == '0'))
		again = setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
	blas_init(argv);
	if (again) {
		fflush(NULL);
		execv("/proc/self/exe", argv);
		unsetenv("OMP_WAIT_POLICY");    /* carry on as we are */
	}
}

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* Apply configuration option code with argument arg to c; 1 if it is
 * one, 0 if it is not a configuration option. Exits 2 on a bad value. */
static int
apply(TrainConfig *c, int code, const char *arg)
{
	char err[256];

	switch (code) {
	case 'a':
		if (train_arch_parse(arg, &c->depth) < 0)
			errx(RL_EXIT_USAGE, "-a %s: resnet18, resnet34 or "
			    "resnet50", arg);
		break;
	case 's':
		c->seed = (uint64_t)estrtonum(arg, 0, LLONG_MAX, "seed");
		break;
	case O_DROPOUT:
		c->dropout = estrtod(arg, 0, 0.99, "dropout");
		break;
	case O_EPOCHS:
		c->sched.epochs = (int)estrtonum(arg, 1, 1000000, "epochs");
		break;
	case O_GAMMA:
		c->sched.gamma = estrtod(arg, 1e-12, 1e12, "gamma");
		break;
	case O_LR:
		c->sched.lr = estrtod(arg, 1e-30, 1e30, "learning rate");
		break;
	case O_MILESTONES:
		if (sched_parse_steps(&c->sched, arg, err, sizeof(err)) < 0)
			errx(RL_EXIT_USAGE, "--milestones: %s", err);
		break;
	case O_MMSELFSUP:
		c->mmselfsup = 1;
		break;
	case O_MOMENTUM:
		c->momentum = estrtod(arg, 0, 1, "momentum");
		break;
	case O_NECK_DIM:
		c->hidden = (int)estrtonum(arg, 1, 1 << 16, "neck width");
		break;
	case O_NECK_WD:
		c->neck_wd = estrtod(arg, 0, 1, "neck weight decay");
		break;
	case O_WARMUP:
		c->sched.warmup_epochs = (int)estrtonum(arg, 0, 1000000,
		    "warmup epochs");
		break;
	case O_WARMUP_RATIO:
		c->sched.warmup_ratio = estrtod(arg, 0, 1, "warmup ratio");
		break;
	case O_WD:
		c->wd = estrtod(arg, 0, 1, "weight decay");
		break;
	case O_WIDTH:
		c->width = (int)estrtonum(arg, 1, 1024, "width");
		break;
	default:
		return 0;
	}
	return 1;
}

static void
parse(int argc, char **argv, Opts *o, Given *given, int *ngiven,
    int *batch)
{
	TrainConfig probe;
	int ch;

	memset(o, 0, sizeof(*o));
	o->senders = 1;
	o->keep = 3;
	o->log_every = 10;
	o->timeout = 120;
	o->chance_steps = 5000;
	o->ckpt_epochs = 10;
	o->max_grad_norm = 1e4;
	o->shuffle = FEED_SHUFFLE_DEFAULT;
	*batch = 0;
	*ngiven = 0;
	train_config_default(&probe, 16, 64, 1);
	while ((ch = getopt_long(argc, argv, "a:b:hi:n:o:s:t:Vvz:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'b':
			*batch = (int)estrtonum(optarg, 2, 1 << 16, "images "
			    "per step");
			break;
		case 'h':
			rl_help(usage_line, options_text);
		case 'i':
			o->lmdb = optarg;
			break;
		case 'n':
			o->senders = (int)estrtonum(optarg, 1, 1 << 20,
			    "senders");
			break;
		case 'o':
			o->dir = optarg;
			break;
		case 't':
			o->timeout = estrtod(optarg, 0, 1e6, "timeout");
			break;
		case 'V':
			rl_print_version();
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'z':
			o->zmq = optarg;
			break;
		case O_CHANCE:
			o->chance_steps = (uint64_t)estrtonum(optarg, 0,
			    LLONG_MAX, "chance steps");
			break;
		case O_CKPT_EPOCHS:
			o->ckpt_epochs = (uint64_t)estrtonum(optarg, 0,
			    1000000, "checkpoint epochs");
			break;
		case O_CKPT_EVERY:
			o->ckpt_every = (uint64_t)estrtonum(optarg, 0,
			    LLONG_MAX, "checkpoint steps");
			break;
		case O_IPE:
			o->ipe = (uint64_t)estrtonum(optarg, 1, LLONG_MAX,
			    "iterations per epoch");
			break;
		case O_KEEP:
			o->keep = (int)estrtonum(optarg, 1, 1000000,
			    "checkpoints kept");
			break;
		case O_LOG_EVERY:
			o->log_every = (int)estrtonum(optarg, 1, 1000000,
			    "log interval");
			break;
		case O_MAX_GRAD:
			o->max_grad_norm = estrtod(optarg, 0, 1e300,
			    "gradient norm limit");
			break;
		case O_MAX_STEPS:
			o->max_steps = (uint64_t)estrtonum(optarg, 1,
			    LLONG_MAX, "steps");
			break;
		case O_PLOT:
			o->plot = optarg;
			break;
		case O_RESUME:
			o->resume = 1;
			break;
		case O_SHUFFLE:
			o->shuffle = (size_t)estrtonum(optarg, 0, 1 << 24,
			    "shuffle buffer");
			break;
		case O_ALLOW:
			o->zopt.allow_file = optarg;
			break;
		case O_BAD:
			o->zopt.bad_max = (long)estrtonum(optarg, 0, 1L << 40,
			    "bad records");
			if (o->zopt.bad_max == 0)
				o->zopt.bad_max = -1;
			break;
		case O_INSECURE:
			o->zopt.insecure = 1;
			break;
		case O_KEY:
			o->zopt.key_file = optarg;
			break;
		default:
			/* check the value now, apply it later */
			if (!apply(&probe, ch, optarg))
				rl_usage(usage_line);
			given[(*ngiven)++] = (Given){ ch, optarg };
			break;
		}
	}
	if (argc - optind > 1 || (o->lmdb && o->zmq) ||
	    ((o->lmdb || o->zmq) && argc - optind > 0))
		rl_usage(usage_line);
	o->file = optind < argc ? argv[optind] : "-";
	if (!o->plot && !o->dir) {
		warnx("no run directory (-o)");
		rl_usage(usage_line);
	}
	if (!o->zmq && (o->zopt.key_file || o->zopt.allow_file ||
	    o->zopt.insecure || o->zopt.bad_max))
		errx(RL_EXIT_USAGE, "--allow, --bad-records, --insecure and "
		    "--key are for -z");
	if (o->lmdb && o->ipe)
		errx(RL_EXIT_USAGE, "--iters-per-epoch is for streams: an "
		    "LMDB's epoch is its size");
}

// ----------------------------------------------------------------------------
// the run

typedef struct {
	int steps;
	double loss, wall, wait;
	long correct, pairs;
	double last_grad;
} Interval;

static void
data_json(char *buf, size_t len, const Opts *o, const Feed *f,
    uint64_t step, int batch, uint64_t records)
{
	if (o->lmdb)
		snprintf(buf, len, "{\"kind\":\"lmdb\",\"count\":%llu,"
		    "\"steps_per_epoch\":%llu,\"position\":%llu,"
		    "\"order\":\"epoch e: permutation keyed by (seed, "
		    "shuffle, e); step s reads its (s mod steps_per_epoch)-th "
		    "slice\"}", (unsigned long long)feed_count(f),
		    (unsigned long long)feed_steps_per_epoch(f),
		    (unsigned long long)step * batch);
	else
		snprintf(buf, len, "{\"kind\":\"%s\",\"records_read\":%llu}",
		    o->zmq ? "zmq" : "stream", (unsigned long long)records);
}

int
main(int argc, char **argv)
{
	Opts o;
	Given *given;
	int ngiven, batch, rc = 0, failed = 0, inerr = 0;
	char err[CKPT_ERRLEN], path[4200], djs[1024], line[256];
	TrainConfig cfg;
	Ckpt *ck = NULL;
	Trainer *t = NULL;
	Feed *feed = NULL;
	FeedConfig fc;
	TrainLog *log = NULL;
	Progress prog;
	uint64_t total, stop_at, start, records = 0, last_ckpt;
	Interval iv = {0};
	long *win_correct, win_pairs = 0;
	long win_sum = 0;
	int warned_chance = 0;
	double ema = 0, t_run, shown = 0;

	openmp_init(argv);
	given = emalloc(argc * sizeof(*given));
	parse(argc, argv, &o, given, &ngiven, &batch);
	if (o.plot) {
		free(given);
		if (trainlog_plot(o.plot, err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "%s", err);
		return 0;
	}
	if (mkdir(o.dir, 0777) < 0 && errno != EEXIST)
		errx(RL_EXIT_FAIL, "%s: %s", o.dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s", o.dir, TRAIN_LAST);

	/* the configuration: a resumed checkpoint's, or the defaults */
	if (o.resume) {
		if (ckpt_open(&ck, path, err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "--resume: %s", err);
		if (train_ckpt_config(ck, &cfg, err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "%s", err);
		if (batch && batch != cfg.batch)
			errx(RL_EXIT_FAIL, "-b %d: the run in %s has %d images "
			    "per step", batch, o.dir, cfg.batch);
		batch = cfg.batch;
	} else if (access(path, F_OK) == 0)
		errx(RL_EXIT_FAIL, "%s already holds a run (%s): --resume it "
		    "or choose another -o", o.dir, path);
	if (!batch)
		batch = 16;

	/* the input */
	memset(&fc, 0, sizeof(fc));
	fc.sopt = o.zopt;
	fc.kind = o.lmdb ? STREAM_LMDB : o.zmq ? STREAM_ZMQ : STREAM_FILE;
	fc.where = o.lmdb ? o.lmdb : o.zmq ? o.zmq : o.file;
	fc.sopt.expect_ends = o.senders;
	fc.sopt.timeout_ms = o.timeout > 0 ? (int)(o.timeout * 1000) : -1;
	fc.batch = batch;
	fc.patch = o.resume ? cfg.patch : 0;
	fc.seed = o.resume ? cfg.seed : 0;
	for (int i = 0; i < ngiven; i++)
		if (given[i].code == 's')
			fc.seed = (uint64_t)estrtonum(given[i].arg, 0,
			    LLONG_MAX, "seed");
	fc.shuffle = o.shuffle;
	fc.cancel = &got_signal;
	if (o.resume) {
		const char *s = ckpt_meta(ck, "step");

		fc.start = s ? strtoull(s, NULL, 10) : 0;
	}
	if (o.verbose)
		fprintf(stderr, "%s: waiting for records from %s\n",
		    rl_progname(), fc.kind == STREAM_FILE &&
		    !strcmp(fc.where, "-") ? "<stdin>" : fc.where);
	if (feed_open(&feed, &fc, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	/* from here on a signal ends the step and writes a checkpoint
	 * (before, while waiting for the first record, it just kills) */
	rl_catch_signals(on_signal, SA_RESTART, NULL);

	if (!o.resume) {
		uint64_t ipe = o.lmdb ? feed_steps_per_epoch(feed) : o.ipe;

		if (!ipe)
			ipe = (uint64_t)(IMAGENET_TRAIN + batch - 1) / batch;

		train_config_default(&cfg, batch, feed_patch(feed), ipe);
		cfg.seed = fc.seed;
	} else if (o.ipe)
		cfg.sched.iters_per_epoch = o.ipe;
	for (int i = 0; i < ngiven; i++)
		apply(&cfg, given[i].code, given[i].arg);
	if (o.lmdb && cfg.sched.iters_per_epoch != feed_steps_per_epoch(feed))
		errx(RL_EXIT_FAIL, "%s: %llu steps per epoch, the run in %s "
		    "had %llu: not the same LMDB", feed_name(feed),
		    (unsigned long long)feed_steps_per_epoch(feed), o.dir,
		    (unsigned long long)cfg.sched.iters_per_epoch);
	if (feed_patch(feed) != cfg.patch)
		errx(RL_EXIT_FAIL, "%s: patch side %d, the run has %d",
		    feed_name(feed), feed_patch(feed), cfg.patch);
	if (sched_check(&cfg.sched, err, sizeof(err)) < 0)
		errx(RL_EXIT_USAGE, "%s", err);
	if (train_create(&t, &cfg, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	if (ck) {
		if (train_load(t, ck, err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "--resume: %s", err);
		ckpt_close(ck);
	}
	start = train_step_count(t);
	if (start > 0)
		train_ckpt_path(path, sizeof(path), o.dir, start);
	total = sched_total(&cfg.sched);
	stop_at = o.max_steps && o.max_steps < total ? o.max_steps : total;
	if (trainlog_open(&log, o.dir, start, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	if (o.verbose) {
		char *js = train_config_json(&cfg);

		fprintf(stderr, "%s: %s, %d images (%d pairs) of %dx%d per "
		    "step, %llu steps per epoch, %llu steps in all, from step "
		    "%llu; %s; %.0f MiB; %d threads (%s)\n%s: config %s\n",
		    rl_progname(), train_arch_name(&cfg), batch, 8 * batch,
		    cfg.patch, cfg.patch,
		    (unsigned long long)cfg.sched.iters_per_epoch,
		    (unsigned long long)total, (unsigned long long)start,
		    cfg.mmselfsup ? "MMSelfSup batching (two passes)" :
		    "centre shared (one pass)", train_bytes(t) / 1048576.0,
		    blas_threads(), blas_corename(), rl_progname(), js);
		free(js);
	}
	if (start >= stop_at)
		warnx("the run in %s is at step %llu of %llu: nothing to do",
		    o.dir, (unsigned long long)start,
		    (unsigned long long)stop_at);
	progress_init(&prog, "train", o.verbose);
	win_correct = ecalloc(CHANCE_WINDOW, sizeof(long));
	last_ckpt = start;
	t_run = now_seconds();

	while (train_step_count(t) < stop_at) {
		FeedBatch *b;
		TrainStepInfo si;
		double wait, t0 = now_seconds(), dt;
		uint64_t step;
		int got;

		got = feed_next(feed, &b, &wait, err, sizeof(err));
		if (got != 1) {
			if (prog.on)
				fputc('\n', stderr);
			if (got != -2)
				warnx("%s", err);
			inerr = got == -1;
			break;
		}
		train_step(t, b->x, o.max_grad_norm, &si);
		records = b->records;
		feed_release(feed, b);
		step = train_step_count(t);
		if (si.status != TRAIN_OK) {
			if (prog.on)
				fputc('\n', stderr);
			if (si.status == TRAIN_NONFINITE)
				warnx("step %llu: the loss is %g (lr %g): "
				    "training diverged; stopped without a "
				    "checkpoint", (unsigned long long)step + 1,
				    si.loss, si.lr);
			else if (!isfinite(si.grad_norm))
				warnx("step %llu: the gradient norm is %g (lr "
				    "%g, loss %g): training diverged; stopped "
				    "without a checkpoint",
				    (unsigned long long)step + 1, si.grad_norm,
				    si.lr, si.loss);
			else
				warnx("step %llu: gradient norm %g exceeds "
				    "--max-grad-norm %g (lr %g, loss %g): "
				    "training diverged; stopped without a "
				    "checkpoint", (unsigned long long)step + 1,
				    si.grad_norm, o.max_grad_norm, si.lr,
				    si.loss);
			if (last_ckpt > 0)
				warnx("the last good checkpoint is %s "
				    "(step %llu)", path,
				    (unsigned long long)last_ckpt);
			failed = 1;
			break;
		}
		dt = now_seconds() - t0;
		ema = ema ? 0.9 * ema + 0.1 * dt : dt;
		iv.steps++;
		iv.loss += si.loss;
		iv.correct += si.correct;
		iv.pairs += si.pairs;
		iv.wall += dt;
		iv.wait += wait;
		iv.last_grad = si.grad_norm;

		/* the stuck-at-chance warning */
		{
			int k = (int)(step % CHANCE_WINDOW);

			win_sum += si.correct - win_correct[k];
			win_correct[k] = si.correct;
			if (step - start <= CHANCE_WINDOW)
				win_pairs += si.pairs;
			if (!warned_chance && o.chance_steps &&
			    step >= o.chance_steps && win_pairs > 0 &&
			    (double)win_sum / win_pairs < CHANCE + 0.025) {
				if (prog.on)
					fputc('\n', stderr);
				warnx("warning: pretext accuracy %.1f%% over "
				    "the last %llu steps is still at chance "
				    "(12.5%%) after %llu steps: the network "
				    "learns nothing (check the records' "
				    "patches, the learning rate, --lr %g)",
				    100.0 * win_sum / win_pairs,
				    (unsigned long long)RL_MIN(step - start,
				    CHANCE_WINDOW), (unsigned long long)step,
				    cfg.sched.lr);
				warned_chance = 1;
			}
		}

		/* the metrics over the steps since the last log line */
		{
			TrainMetrics m;
			int logged = 0;

			m.step = step;
			m.epoch = sched_epoch(&cfg.sched, step - 1);
			m.lr = si.lr;
			m.loss = iv.loss / iv.steps;
			m.acc = (double)iv.correct / iv.pairs;
			m.pairs_s = iv.pairs / iv.wall;
			m.data_wait = iv.wait / iv.wall;
			m.grad_norm = iv.last_grad;
			m.time = now_seconds() - t_run;
			if (iv.steps >= o.log_every || step == stop_at) {
				if (trainlog_append(log, &m, err,
				    sizeof(err)) < 0)
					errx(RL_EXIT_FAIL, "%s", err);
				memset(&iv, 0, sizeof(iv));
				logged = 1;
			}
			if (prog.on && (logged || now_seconds() - shown >=
			    0.5)) {
				trainlog_format(line, sizeof(line), &m, stop_at,
				    (stop_at - step) * ema);
				fprintf(stderr, "\r%s: %s\033[K", rl_progname(),
				    line);
				shown = now_seconds();
			}
		}
		if ((o.ckpt_every && step % o.ckpt_every == 0) ||
		    (o.ckpt_epochs && step % (o.ckpt_epochs *
		    cfg.sched.iters_per_epoch) == 0)) {
			data_json(djs, sizeof(djs), &o, feed, step, batch,
			    records);
			if (train_checkpoint(t, o.dir, o.keep, djs, path,
			    sizeof(path), err, sizeof(err)) < 0)
				errx(RL_EXIT_FAIL, "%s", err);
			last_ckpt = step;
		}
		if (got_signal)
			break;
	}
	if (prog.on && !failed && !inerr)
		fputc('\n', stderr);
	if (!failed && train_step_count(t) != last_ckpt) {
		data_json(djs, sizeof(djs), &o, feed, train_step_count(t),
		    batch, records);
		if (train_checkpoint(t, o.dir, o.keep, djs, path, sizeof(path),
		    err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "%s", err);
		last_ckpt = train_step_count(t);
	}
	if (failed)
		rc = RL_EXIT_FAIL;
	else if (got_signal || train_step_count(t) < stop_at) {
		if (train_step_count(t) > 0)
			warnx("%s%sstopped at step %llu of %llu; checkpoint "
			    "%s; continue with --resume", got_signal ?
			    strsignal(got_signal) : "", got_signal ? ": " : "",
			    (unsigned long long)train_step_count(t),
			    (unsigned long long)stop_at, path);
		else
			warnx("%s%sstopped before the first step; no "
			    "checkpoint", got_signal ? strsignal(got_signal) :
			    "", got_signal ? ": " : "");
		rc = got_signal || inerr ? RL_EXIT_FAIL : 0;
	}
	if (trainlog_close(log, err, sizeof(err)) < 0) {
		warnx("%s", err);
		rc = RL_EXIT_FAIL;
	}
	if (train_step_count(t) > start &&
	    trainlog_plot(o.dir, err, sizeof(err)) < 0)
		warnx("plot: %s", err);
	if (o.verbose)
		fprintf(stderr, "%s: %llu steps done in %.1f s\n", rl_progname(),
		    (unsigned long long)(train_step_count(t) - start),
		    now_seconds() - t_run);
	free(win_correct);
	free(given);
	feed_close(feed);
	train_free(t);
	return rc;
}

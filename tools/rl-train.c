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

#include <jansson.h>

#include "common/blas.h"
#include "common/dist.h"
#include "common/feed.h"
#include "common/train.h"
#include "common/trainlog.h"
#include "common/util.h"

/* ImageNet-1k's 1,281,167 images: a stream's epoch unless told. */
#define IMAGENET_TRAIN 1281167

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
    "                [--plot run-dir] [--resume] [--shard n] [--shuffle n] "
    "[--warmup n]\n"
    "                [--warmup-ratio f] [--wd f] [--width n] [--allow file]\n"
    "                [--bad-records n] [--insecure] [--key file] [file]\n";

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
    "  --shard n         images per shard, each with its own batch "
    "statistics\n"
    "                    (default: the whole step; the recipe: 64)\n"
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
	O_RESUME, O_SHARD, O_SHUFFLE, O_WARMUP, O_WARMUP_RATIO, O_WD, O_WIDTH
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
	{ "shard", required_argument, NULL, O_SHARD },
	{ "shuffle", required_argument, NULL, O_SHUFFLE },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "warmup-ratio", required_argument, NULL, O_WARMUP_RATIO },
	{ "wd", required_argument, NULL, O_WD },
	{ "width", required_argument, NULL, O_WIDTH },
	STREAM_LONGOPT_ALLOW, STREAM_LONGOPT_BAD, STREAM_LONGOPT_INSECURE,
	STREAM_LONGOPT_KEY,
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
	case O_SHARD:
		c->shard = (int)estrtonum(arg, 2, 1 << 16, "images per shard");
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
		default:
			if (stream_option(&o->zopt, ch, optarg))
				break;
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
	stream_options_need_zmq(&o->zopt, o->zmq != NULL);
	if (o->lmdb && o->ipe)
		errx(RL_EXIT_USAGE, "--iters-per-epoch is for streams: an "
		    "LMDB's epoch is its size");
}

// ----------------------------------------------------------------------------
// the run

/* What the step loop works with. Rank 0 alone writes the run directory
 * (checkpoints, metrics, curves) and shows progress. */
typedef struct {
	Opts *o;
	TrainConfig cfg;
	Trainer *t;
	Feed *feed;
	TrainLog *log;
	int rank0, verbose;
	uint64_t start, stop_at, records, last_ckpt;
	char path[4200];        /* the last checkpoint */
} Run;

static void
data_json(char *buf, size_t len, const Run *r, uint64_t step)
{
	if (r->o->lmdb)
		snprintf(buf, len, "{\"kind\":\"lmdb\",\"count\":%llu,"
		    "\"steps_per_epoch\":%llu,\"position\":%llu,"
		    "\"order\":\"epoch e: permutation keyed by (seed, "
		    "shuffle, e); step s reads its (s mod steps_per_epoch)-th "
		    "slice\"}", (unsigned long long)feed_count(r->feed),
		    (unsigned long long)feed_steps_per_epoch(r->feed),
		    (unsigned long long)step * r->cfg.batch);
	else
		snprintf(buf, len, "{\"kind\":\"%s\",\"records_read\":%llu,"
		    "\"ranks\":%d}", r->o->zmq ? "zmq" : "stream",
		    (unsigned long long)r->records, dist_size());
}

/* Rank 0: a checkpoint of the current step. */
static void
checkpoint(Run *r)
{
	char djs[1024], err[CKPT_ERRLEN];
	uint64_t step = train_step_count(r->t);

	if (r->rank0) {
		data_json(djs, sizeof(djs), r, step);
		if (train_checkpoint(r->t, r->o->dir, r->o->keep, djs,
		    r->path, sizeof(r->path), err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "%s", err);
	}
	r->last_ckpt = step;
}

/*
 * The endpoint of this rank: "%r" in ep is replaced by the rank; without
 * it, with several ranks, a TCP endpoint's port is increased by the rank
 * (tcp://host:5600 -> rank 3 binds tcp://host:5603), and other transports get
 * "-<rank>" appended (ipc:///tmp/rl -> ipc:///tmp/rl-3).
 */
static void
rank_endpoint(char *buf, size_t len, const char *ep)
{
	const char *pr = strstr(ep, "%r"), *colon = strrchr(ep, ':');
	int rank = dist_rank();
	char *end;
	long port;

	if (pr)
		snprintf(buf, len, "%.*s%d%s", (int)(pr - ep), ep, rank,
		    pr + 2);
	else if (dist_size() == 1)
		snprintf(buf, len, "%s", ep);
	else if (colon && (port = strtol(colon + 1, &end, 10)) > 0 && !*end)
		snprintf(buf, len, "%.*s:%ld", (int)(colon - ep), ep,
		    port + rank);
	else
		snprintf(buf, len, "%s-%d", ep, rank);
}

/* The input's configuration: this rank's part of each step. */
static void
feed_setup(FeedConfig *fc, const Opts *o, const Given *given, int ngiven,
    int batch, const TrainConfig *cfg, const Ckpt *ck, char *ep, size_t eplen)
{
	int P = dist_size();

	if (batch % P)
		errx(RL_EXIT_USAGE, "-b %d: not a multiple of the %d ranks",
		    batch, P);
	if (P > 1 && !o->lmdb && !o->zmq)
		errx(RL_EXIT_USAGE, "a record stream from a file or stdin "
		    "feeds one rank: with %d ranks, read an LMDB (-i) or one "
		    "ZeroMQ endpoint per rank (-z)", P);
	memset(fc, 0, sizeof(*fc));
	fc->sopt = o->zopt;
	fc->kind = o->lmdb ? STREAM_LMDB : o->zmq ? STREAM_ZMQ : STREAM_FILE;
	if (o->zmq)
		rank_endpoint(ep, eplen, o->zmq);
	fc->where = o->lmdb ? o->lmdb : o->zmq ? ep : o->file;
	fc->sopt.expect_ends = o->senders;
	fc->sopt.timeout_ms = o->timeout > 0 ? (int)(o->timeout * 1000) : -1;
	fc->batch = batch / P;
	fc->step_images = o->lmdb ? batch : fc->batch;
	fc->first = o->lmdb ? dist_rank() * fc->batch : 0;
	fc->patch = ck ? cfg->patch : 0;
	fc->seed = ck ? cfg->seed : 0;
	for (int i = 0; i < ngiven; i++)
		if (given[i].code == 's')
			fc->seed = (uint64_t)estrtonum(given[i].arg, 0,
			    LLONG_MAX, "seed");
	fc->shuffle = o->shuffle;
	fc->cancel = &got_signal;
	if (ck) {
		const char *st = ckpt_meta(ck, "step");

		fc->start = st ? strtoull(st, NULL, 10) : 0;
	}
}

/* The run's configuration: a new one (defaults, then the options), or
 * the resumed checkpoint's with the options over it. */
static void
configure(Run *r, const Given *given, int ngiven, int batch, int resumed)
{
	TrainConfig *cfg = &r->cfg;
	char err[CKPT_ERRLEN];

	if (!resumed) {
		uint64_t ipe = r->o->lmdb ? feed_steps_per_epoch(r->feed) :
		    r->o->ipe;

		if (!ipe)
			ipe = (uint64_t)(IMAGENET_TRAIN + batch - 1) / batch;
		train_config_default(cfg, batch, feed_patch(r->feed), ipe);
	} else if (r->o->ipe)
		cfg->sched.iters_per_epoch = r->o->ipe;
	for (int i = 0; i < ngiven; i++)
		apply(cfg, given[i].code, given[i].arg);
	if (r->o->lmdb && cfg->sched.iters_per_epoch !=
	    feed_steps_per_epoch(r->feed))
		errx(RL_EXIT_FAIL, "%s: %llu steps per epoch, the run in %s "
		    "had %llu: not the same LMDB", feed_name(r->feed),
		    (unsigned long long)feed_steps_per_epoch(r->feed),
		    r->o->dir, (unsigned long long)cfg->sched.iters_per_epoch);
	if (feed_patch(r->feed) != cfg->patch)
		errx(RL_EXIT_FAIL, "%s: patch side %d, the run has %d",
		    feed_name(r->feed), feed_patch(r->feed), cfg->patch);
	if (sched_check(&cfg->sched, err, sizeof(err)) < 0)
		errx(RL_EXIT_USAGE, "%s", err);
}

/* Every rank must run the same configuration on the same data with the
 * same threads, from the same step: refused otherwise, naming the
 * difference. */
static void
agree(const Run *r)
{
	char *js = train_config_json(&r->cfg), err[1200];
	json_t *o = json_loads(js, 0, NULL);
	char *all;

	json_object_set_new(o, "threads", json_integer(blas_threads()));
	json_object_set_new(o, "records", json_integer(
	    (json_int_t)feed_count(r->feed)));
	json_object_set_new(o, "input", json_string(r->o->lmdb ? "lmdb" :
	    r->o->zmq ? "zmq" : "stream"));
	json_object_set_new(o, "start", json_integer((json_int_t)r->start));
	json_object_set_new(o, "version", json_string(RL_VERSION));
	all = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (dist_agree(all, err, sizeof(err)) < 0) {
		if (r->rank0)
			warnx("%s", err);
		dist_finish();
		exit(RL_EXIT_FAIL);
	}
	free(all);
	json_decref(o);
	free(js);
}

static void
report_start(const Run *r)
{
	const TrainConfig *c = &r->cfg;
	char *js = train_config_json(c);

	fprintf(stderr, "%s: %s, %d images (%d pairs) of %dx%d per step in "
	    "shards of %d, %llu steps per epoch, %llu steps in all, from step "
	    "%llu; %s; %.0f MiB per rank; %d rank%s x %d threads (%s)\n"
	    "%s: config %s\n", rl_progname(), train_arch_name(c), c->batch,
	    8 * c->batch, c->patch, c->patch, c->shard,
	    (unsigned long long)c->sched.iters_per_epoch,
	    (unsigned long long)sched_total(&c->sched),
	    (unsigned long long)r->start, c->mmselfsup ? "MMSelfSup batching "
	    "(two passes)" : "centre shared (one pass)",
	    train_bytes(r->t) / 1048576.0, dist_size(), dist_size() > 1 ?
	    "s" : "", blas_threads(), blas_corename(), rl_progname(), js);
	free(js);
}

/* Whether every rank goes on: each rank's batch arrived (got 1) and no
 * signal came; a rank whose input failed says why. */
static int
all_go_on(int got, const char *err)
{
	double v[2] = { got != 1, got_signal != 0 };

	if (got == -1 || (got == 0 && *err))
		warnx("%s", err);
	dist_sum_doubles(v, 2);
	if (v[1] > 0 && !got_signal)
		got_signal = SIGTERM;
	return v[0] == 0 && v[1] == 0;
}

/* The step loop. 0 when it ended normally (the end, a signal, the input),
 * 1 when training diverged; *inerr: the input failed. */
static int
train_loop(Run *r, int *inerr)
{
	Progress prog;
	TrainTally tally;
	double ema = 0, t_run = now_seconds();
	char err[CKPT_ERRLEN], line[1024];

	progress_init(&prog, "train", r->verbose);
	trainlog_tally_init(&tally, r->start);
	while (train_step_count(r->t) < r->stop_at) {
		FeedBatch *b = NULL;
		TrainStepInfo si;
		TrainMetrics m;
		double wait = 0, t0 = now_seconds(), dt;
		uint64_t step;
		int got;

		err[0] = 0;
		got = feed_next(r->feed, &b, &wait, err, sizeof(err));
		if (got != 1)
			progress_break(&prog);
		if (!all_go_on(got, err)) {
			*inerr = got == -1;
			if (got == 1)
				feed_release(r->feed, b);
			break;
		}
		train_step(r->t, b->x, r->o->max_grad_norm, &si);
		r->records = b->records;
		feed_release(r->feed, b);
		step = train_step_count(r->t);
		if (si.status != TRAIN_OK) {
			progress_break(&prog);
			train_status_text(&si, step, r->o->max_grad_norm, line,
			    sizeof(line));
			if (r->rank0)
				warnx("%s", line);
			if (r->rank0 && r->last_ckpt > 0)
				warnx("the last good checkpoint is %s "
				    "(step %llu)", r->path,
				    (unsigned long long)r->last_ckpt);
			return 1;
		}
		dt = now_seconds() - t0;
		ema = ema ? 0.9 * ema + 0.1 * dt : dt;
		trainlog_tally_add(&tally, step, si.loss, si.correct, si.pairs,
		    si.grad_norm, si.lr, dt, wait);
		if (r->rank0 && trainlog_chance(&tally, step,
		    r->o->chance_steps, r->cfg.sched.lr, line, sizeof(line))) {
			progress_break(&prog);
			warnx("%s", line);
		}
		m.step = step;
		m.epoch = sched_epoch(&r->cfg.sched, step - 1);
		m.time = now_seconds() - t_run;
		if (tally.steps >= r->o->log_every || step == r->stop_at) {
			trainlog_tally_metrics(&tally, &m, 1);
			if (r->rank0 && trainlog_append(r->log, &m, err,
			    sizeof(err)) < 0)
				errx(RL_EXIT_FAIL, "%s", err);
		} else
			trainlog_tally_metrics(&tally, &m, 0);
		if (prog.on) {
			trainlog_format(line, sizeof(line), &m, r->stop_at,
			    (r->stop_at - step) * ema);
			progress_text(&prog, line);
		}
		if ((r->o->ckpt_every && step % r->o->ckpt_every == 0) ||
		    (r->o->ckpt_epochs && step % (r->o->ckpt_epochs *
		    r->cfg.sched.iters_per_epoch) == 0))
			checkpoint(r);
		if (got_signal)
			break;
	}
	if (!*inerr)
		progress_break(&prog);
	return 0;
}

/* The end: the final checkpoint, the message, the log and plot; the exit
 * status. */
static int
finish(Run *r, int failed, int inerr, double t_run)
{
	char err[CKPT_ERRLEN];
	uint64_t done = train_step_count(r->t);
	int rc = 0;

	if (!failed && done != r->last_ckpt)
		checkpoint(r);
	if (failed)
		rc = RL_EXIT_FAIL;
	else if (got_signal || done < r->stop_at) {
		if (r->rank0 && done > 0)
			warnx("%s%sstopped at step %llu of %llu; checkpoint "
			    "%s; continue with --resume", got_signal ?
			    strsignal(got_signal) : "", got_signal ? ": " : "",
			    (unsigned long long)done,
			    (unsigned long long)r->stop_at, r->path);
		else if (r->rank0)
			warnx("%s%sstopped before the first step; no "
			    "checkpoint", got_signal ? strsignal(got_signal) :
			    "", got_signal ? ": " : "");
		rc = got_signal || inerr ? RL_EXIT_FAIL : 0;
	}
	if (trainlog_close(r->log, err, sizeof(err)) < 0) {
		warnx("%s", err);
		rc = RL_EXIT_FAIL;
	}
	if (r->rank0 && done > r->start &&
	    trainlog_plot(r->o->dir, err, sizeof(err)) < 0)
		warnx("plot: %s", err);
	if (r->verbose) {
		double wall = now_seconds() - t_run, comm = dist_comm_seconds();

		fprintf(stderr, "%s: %llu steps done in %.1f s", rl_progname(),
		    (unsigned long long)(done - r->start), wall);
		if (dist_size() > 1)
			fprintf(stderr, ", %.1f s (%.1f%%) summing across "
			    "ranks, %.1f s (%.1f%%) waiting for the slowest",
			    comm, wall > 0 ? 100 * comm / wall : 0,
			    dist_wait_seconds(), wall > 0 ? 100 *
			    dist_wait_seconds() / wall : 0);
		fputc('\n', stderr);
	}
	return rc;
}

/* --resume: the checkpoint and its configuration; the batch. */
static Ckpt *
open_resumed(const Opts *o, TrainConfig *cfg, int *batch)
{
	char path[4200], err[CKPT_ERRLEN];
	Ckpt *ck = NULL;

	snprintf(path, sizeof(path), "%s/%s", o->dir, TRAIN_LAST);
	if (!o->resume) {
		if (access(path, F_OK) == 0)
			errx(RL_EXIT_FAIL, "%s already holds a run (%s): "
			    "--resume it or choose another -o", o->dir, path);
		return NULL;
	}
	if (ckpt_open(&ck, path, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "--resume: %s", err);
	if (train_ckpt_config(ck, cfg, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	if (*batch && *batch != cfg->batch)
		errx(RL_EXIT_FAIL, "-b %d: the run in %s has %d images per step",
		    *batch, o->dir, cfg->batch);
	*batch = cfg->batch;
	return ck;
}

int
main(int argc, char **argv)
{
	Opts o;
	Given *given;
	int ngiven, batch, rc, failed, inerr = 0;
	char err[CKPT_ERRLEN], ep[4200];
	Ckpt *ck;
	FeedConfig fc;
	Run r;
	double t_run;

	blas_init(argv);
	dist_init(&argc, &argv);
	given = emalloc(argc * sizeof(*given));
	parse(argc, argv, &o, given, &ngiven, &batch);
	if (o.plot) {
		free(given);
		if (trainlog_plot(o.plot, err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "%s", err);
		dist_finish();
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.o = &o;
	r.rank0 = dist_rank() == 0;
	r.verbose = o.verbose && r.rank0;
	if (r.rank0 && mkdir(o.dir, 0777) < 0 && errno != EEXIST)
		errx(RL_EXIT_FAIL, "%s: %s", o.dir, strerror(errno));
	ck = open_resumed(&o, &r.cfg, &batch);
	if (r.rank0)
		train_clean(o.dir);
	if (!batch)
		batch = 16;
	feed_setup(&fc, &o, given, ngiven, batch, &r.cfg, ck, ep, sizeof(ep));
	if (r.verbose)
		fprintf(stderr, "%s: waiting for records from %s\n",
		    rl_progname(), fc.kind == STREAM_FILE &&
		    !strcmp(fc.where, "-") ? "<stdin>" : fc.where);
	if (feed_open(&r.feed, &fc, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	/* from here on a signal ends the step and writes a checkpoint
	 * (before, while waiting for the first record, it just kills) */
	rl_catch_signals(on_signal, SA_RESTART, NULL);

	configure(&r, given, ngiven, batch, ck != NULL);
	if (train_create(&r.t, &r.cfg, err, sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	if (ck) {
		if (train_load(r.t, ck, err, sizeof(err)) < 0)
			errx(RL_EXIT_FAIL, "--resume: %s", err);
		ckpt_close(ck);
	}
	r.start = r.last_ckpt = train_step_count(r.t);
	if (r.start > 0)
		train_ckpt_path(r.path, sizeof(r.path), o.dir, r.start);
	r.stop_at = sched_total(&r.cfg.sched);
	if (o.max_steps && o.max_steps < r.stop_at)
		r.stop_at = o.max_steps;
	agree(&r);
	if (r.rank0 && trainlog_open(&r.log, o.dir, r.start, err,
	    sizeof(err)) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	if (r.verbose)
		report_start(&r);
	if (r.rank0 && r.start >= r.stop_at)
		warnx("the run in %s is at step %llu of %llu: nothing to do",
		    o.dir, (unsigned long long)r.start,
		    (unsigned long long)r.stop_at);
	t_run = now_seconds();
	failed = train_loop(&r, &inerr);
	rc = finish(&r, failed, inerr, t_run);
	free(given);
	feed_close(r.feed);
	train_free(r.t);
	dist_finish();
	return rc;
}

/*
 * rl-sample: cut Relative-Location grids (3x3 patches) from images and
 * send them as grid records to stdout, an LMDB directory or ZeroMQ.
 *
 * An in-order pool of threads (workers.h) decodes and samples the images;
 * the main thread writes their records in input order, so the output does
 * not depend on the thread count. The geometry and colour handling are grid.h's, the
 * decoding img.h's, the transport stream.h's.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/grid.h"
#include "common/img.h"
#include "common/list.h"
#include "common/record.h"
#include "common/rng.h"
#include "common/stream.h"
#include "common/util.h"
#include "common/workers.h"

#define PREVIEW_GRIDS 8
#define PREVIEW_COLS 4

static const char usage_line[] =
    "usage: rl-sample [-fhVv] [-j threads] [-l list] [-n grids] "
    "[-o lmdb-dir | -z endpoint]\n"
    "                 [-p preset] [-s seed] [--chroma mode] [--crop n] "
    "[--downsample p]\n"
    "                 [--exact] [--gap n] [--gray p] [--jitter n] "
    "[--patch n]\n"
    "                 [--pixels min-max] [--preview png] [--resize n] "
    "[--root dir]\n"
    "                 [--insecure] [--key file] [--max-pixels n] "
    "[--peer-key file]\n"
    "                 [file ...]\n";

static const char options_text[] =
    "  -f            write records to stdout even if it is a terminal\n"
    "  -h            this help\n"
    "  -V            print the version\n"
    "  -v            progress on stderr\n"
    "  -j threads    decoding threads (default 2)\n"
    "  -l list       read image paths (`path [label]` lines) from list\n"
    "  -n grids      grids per image (default 1)\n"
    "  -o lmdb-dir   write an LMDB directory instead of stdout\n"
    "  -z endpoint   push records over ZeroMQ (port, host:port, "
    "tcp://..)\n"
    "  -p preset     mmselfsup (default) or doersch2015\n"
    "  -s seed       random seed (default 0)\n"
    "  --chroma mode none, drop (colour dropping) or project\n"
    "  --crop n      side of the window the grid lives in\n"
    "  --downsample p  probability a patch is downsampled and back\n"
    "  --exact       no JPEG shrink-on-load (PIL-exact pixels)\n"
    "  --gap n       gap between patches (doersch2015 layout)\n"
    "  --gray p      probability a grid turns grey\n"
    "  --jitter n    patch offset range (mmselfsup) or +/-n "
    "(doersch2015)\n"
    "  --patch n     patch side\n"
    "  --pixels min-max  resize to a random total pixel count\n"
    "  --preview png write a picture of the first grids\n"
    "  --resize n    resize so the shorter side is n\n"
    "  --root dir    relative list paths are under dir (default: the\n"
    "                list file's directory)\n"
    "  --insecure    allow a non-loopback -z endpoint without CURVE keys\n"
    "  --key file    with -z: this sampler's CURVE secret key "
    "(rl-keygen)\n"
    "  --max-pixels n  skip images of more pixels (default 178956970)\n"
    "  --peer-key file with -z and --key: the trainer's public key\n";

// ----------------------------------------------------------------------------
// The sampling: images decoded and cut on an in-order pool of threads
// (workers.h), one image a slot

typedef struct {
	int ok;                 /* 0: the image was skipped, err says why */
	char err[512];
	Record *rec;            /* K records */
	Grid *grid;             /* K grids, for the preview */
} Slot;

typedef struct {
	const List *in;
	const GridConfig *cfg;
	uint64_t seed;
	int K, exact;
	Slot *slot;
	size_t nslot;
	Workers *w;
} Sampler;

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* Decode image i and cut its K grids into slot si (a WorkersJob). */
static void
sample_image(void *arg, size_t i, size_t si, void **local)
{
	Sampler *p = arg;
	Slot *s = &p->slot[si];
	const ListItem *it = &p->in->item[i];
	const GridConfig *c = p->cfg;
	Image im;
	int fw, fh, min_short = 0;

	(void)local;
	if (!p->exact)
		min_short = c->short_side ? c->short_side :
		    (int)ceil(sqrt((double)c->area_max));
	s->ok = 0;
	if (img_load(&im, it->path, min_short, &fw, &fh, s->err,
	    sizeof s->err) < 0)
		return;
	for (int k = 0; k < p->K; k++) {
		Record *r = &s->rec[k];
		Rng g;
		rng_init(&g, p->seed, RNG_STREAM_SAMPLE, (uint64_t)i * p->K + k);
		if (grid_sample(r, &s->grid[k], c, &im, fw, fh, &g, s->err,
		    sizeof s->err) < 0) {
			img_free(&im);
			return;
		}
		r->version = RECORD_VERSION;
		r->id = i;
		r->sample = k;
		free(r->source);
		r->source = estrdup(it->path);
		r->label = it->nlabel > 0 ? it->label[0] : -1;
	}
	img_free(&im);
	s->ok = 1;
}

static void
sample_end(void *arg, void *local)
{
	(void)arg;
	(void)local;
	img_thread_end();
}

/* Start the threads; signals go to the main thread only, so they are
 * blocked around the threads' creation. */
static void
sampler_start(Sampler *p, int threads)
{
	WorkersJob job = {sample_image, sample_end, p};
	sigset_t block, old;
	char err[256];

	/* Room for every worker to run ahead by one image; with many grids
	 * per image (each slot holds them all) just enough to keep busy. */
	p->nslot = (size_t)threads + (p->K > 16 ? 1 : threads + 2);
	p->slot = ecalloc(p->nslot, sizeof *p->slot);
	for (size_t i = 0; i < p->nslot; i++) {
		p->slot[i].rec = ecalloc(p->K, sizeof *p->slot[i].rec);
		p->slot[i].grid = ecalloc(p->K, sizeof *p->slot[i].grid);
	}
	/* SA_RESETHAND: a second ^C kills at once */
	rl_catch_signals(on_signal, SA_RESETHAND, &block);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (workers_start(&p->w, &job, p->in->n, p->nslot, threads, err,
	    sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
sampler_free(Sampler *p)
{
	workers_stop(p->w);
	for (size_t j = 0; j < p->nslot; j++) {
		for (int k = 0; k < p->K; k++)
			record_free(&p->slot[j].rec[k]);
		free(p->slot[j].rec);
		free(p->slot[j].grid);
	}
	free(p->slot);
}

// ----------------------------------------------------------------------------
// Inputs, metadata, preview

static void
read_list(List *in, const char *name, const char *root)
{
	char msg[1024];

	if (list_read_file(in, name, root, msg, sizeof msg) < 0)
		errx(RL_EXIT_FAIL, "%s", msg);
}

static char *
meta_json(const GridConfig *c, uint64_t seed, int K, int exact, size_t n)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "tool", json_string("rl-sample"));
	json_object_set_new(o, "version", json_string(RL_VERSION));
	json_object_set_new(o, "seed", json_integer((json_int_t)seed));
	json_object_set_new(o, "grids_per_image", json_integer(K));
	json_object_set_new(o, "shrink_on_load", json_boolean(!exact));
	json_object_set_new(o, "images", json_integer((json_int_t)n));
	json_object_set_new(o, "grid", grid_config_json(c));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static double
prob(const char *s, const char *what)
{
	return estrtod(s, 0, 1, what);
}

static void
parse_pixels(const char *s, GridGeometry *g)
{
	const char *dash = strchr(s, '-');
	char lo[32];
	size_t n;

	if (!dash || (n = dash - s) == 0 || n >= sizeof lo) {
		warnx("--pixels wants min-max, got '%s'", s);
		rl_usage(usage_line);
	}
	memcpy(lo, s, n);
	lo[n] = '\0';
	g->area_min = estrtonum(lo, 1, 1LL << 40, "--pixels minimum");
	g->area_max = estrtonum(dash + 1, 1, 1LL << 40, "--pixels maximum");
}

// ----------------------------------------------------------------------------


enum { OPT_CHROMA = 256, OPT_CROP, OPT_DOWN, OPT_EXACT, OPT_GAP, OPT_GRAY,
    OPT_JITTER, OPT_PATCH, OPT_PIXELS, OPT_PREVIEW, OPT_RESIZE, OPT_ROOT,
    OPT_MAX_PIXELS };

typedef struct {
	GridConfig cfg;
	const char *lmdb, *zep, *listfile, *preview, *root;
	StreamOptions zopt;     /* -z: keys, --insecure */
	int force, verbose, threads, K, exact;
	uint64_t seed;
} Opts;

/* The grid configuration: the preset, the geometry overrides, then the
 * colour options (gray, down: < 0 unset; chroma: NULL unset). */
static void
config_grid(Opts *o, const char *preset, const GridGeometry *geo,
    double gray, double down, const char *chroma)
{
	GridConfig *cfg = &o->cfg;
	char err[1024];

	if (o->lmdb && o->zep) {
		warnx("-o and -z are exclusive");
		rl_usage(usage_line);
	}
	stream_options_need_zmq(&o->zopt, o->zep != NULL);
	if (geo->resize && geo->area_max) {
		warnx("--resize and --pixels are exclusive");
		rl_usage(usage_line);
	}
	if (grid_config_init(cfg, preset, geo, err, sizeof err) < 0) {
		warnx("%s", err);
		rl_usage(usage_line);
	}
	if (gray >= 0)
		cfg->gray_p = gray;
	if (down >= 0)
		cfg->down_p = down;
	if (cfg->down_p > 0 && cfg->down_min == 0)
		cfg->down_min = RL_MIN(100, (cfg->patch - 1) * (cfg->patch - 1));
	if (chroma && grid_chroma_parse(chroma, &cfg->chroma) < 0) {
		warnx("--chroma: none, drop or project, not '%s'", chroma);
		rl_usage(usage_line);
	}
}

/* The options into o; returns optind. */
static int
parse_options(Opts *o, int argc, char **argv)
{
	static const struct option lopt[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "chroma", required_argument, NULL, OPT_CHROMA },
		{ "crop", required_argument, NULL, OPT_CROP },
		{ "downsample", required_argument, NULL, OPT_DOWN },
		{ "exact", no_argument, NULL, OPT_EXACT },
		{ "gap", required_argument, NULL, OPT_GAP },
		{ "gray", required_argument, NULL, OPT_GRAY },
		{ "jitter", required_argument, NULL, OPT_JITTER },
		{ "patch", required_argument, NULL, OPT_PATCH },
		{ "pixels", required_argument, NULL, OPT_PIXELS },
		{ "preview", required_argument, NULL, OPT_PREVIEW },
		{ "resize", required_argument, NULL, OPT_RESIZE },
		{ "root", required_argument, NULL, OPT_ROOT },
		STREAM_LONGOPT_INSECURE, STREAM_LONGOPT_KEY,
		STREAM_LONGOPT_PEER_KEY,
		{ "max-pixels", required_argument, NULL, OPT_MAX_PIXELS },
		{ NULL, 0, NULL, 0 }
	};
	GridGeometry geo = {0};
	const char *preset = "mmselfsup", *chroma = NULL;
	double gray = -1, down = -1;
	int ch;

	memset(o, 0, sizeof *o);
	o->threads = 2;
	o->K = 1;
	while ((ch = getopt_long(argc, argv, "fhVvj:l:n:o:p:s:z:", lopt,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': o->force = 1; break;
		case 'h': rl_help(usage_line, options_text);
		case 'V': rl_print_version(); break;
		case 'v': o->verbose = 1; break;
		case 'j':
			o->threads = estrtonum(optarg, 1, 256, "-j threads");
			break;
		case 'l': o->listfile = optarg; break;
		case 'n': o->K = estrtonum(optarg, 1, 1 << 20, "-n grids"); break;
		case 'o': o->lmdb = optarg; break;
		case 'p': preset = optarg; break;
		case 's':
			o->seed = estrtonum(optarg, 0, INT64_MAX, "-s seed");
			break;
		case 'z': o->zep = optarg; break;
		case OPT_CHROMA: chroma = optarg; break;
		case OPT_CROP:
			geo.crop = estrtonum(optarg, 3, GRID_MAX_SIDE, "--crop");
			break;
		case OPT_DOWN: down = prob(optarg, "--downsample"); break;
		case OPT_EXACT: o->exact = 1; break;
		case OPT_GAP:
			geo.gap = estrtonum(optarg, 1, GRID_MAX_SIDE, "--gap");
			break;
		case OPT_GRAY: gray = prob(optarg, "--gray"); break;
		case OPT_JITTER:
			geo.jitter = estrtonum(optarg, 0, GRID_MAX_SIDE,
			    "--jitter");
			if (geo.jitter == 0)
				geo.jitter = GRID_NO_JITTER;
			break;
		case OPT_PATCH:
			geo.patch = estrtonum(optarg, 1, RECORD_PATCH_MAX,
			    "--patch");
			break;
		case OPT_PIXELS: parse_pixels(optarg, &geo); break;
		case OPT_PREVIEW: o->preview = optarg; break;
		case OPT_RESIZE:
			geo.resize = estrtonum(optarg, 3, GRID_MAX_SIDE,
			    "--resize");
			break;
		case OPT_ROOT: o->root = optarg; break;
		case OPT_MAX_PIXELS:
			img_set_max_pixels((uint64_t)estrtonum(optarg, 1,
			    INT64_MAX, "--max-pixels"));
			break;
		default:
			if (!stream_option(&o->zopt, ch, optarg))
				rl_usage(usage_line);
		}
	}
	config_grid(o, preset, &geo, gray, down, chroma);
	return optind;
}

/* Inputs: the list file, then the operands ("-": a list on stdin); with
 * neither, a list on stdin. */
static void
read_inputs(List *in, const Opts *o, char **ops, int nops)
{
	if (o->listfile)
		read_list(in, o->listfile, o->root);
	for (int i = 0; i < nops; i++) {
		if (!strcmp(ops[i], "-"))
			read_list(in, "-", o->root);
		else
			list_add(in, ops[i], NULL, 0);
	}
	if (!o->listfile && nops == 0)
		read_list(in, "-", o->root);
}

/* The sink of -o, -z or stdout, with the run's metadata. Exits 1. */
static RecordSink *
open_sink(const Opts *o, size_t n)
{
	StreamKind kind = o->lmdb ? STREAM_LMDB : o->zep ? STREAM_ZMQ :
	    STREAM_FILE;
	RecordSink *sink;
	char err[1024], *meta;

	if (sink_open(&sink, kind, o->lmdb ? o->lmdb : o->zep ? o->zep : "-",
	    &o->zopt, err, sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	meta = meta_json(&o->cfg, o->seed, o->K, o->exact, n);
	if (sink_set_meta(sink, meta, err, sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	free(meta);
	return sink;
}

/* What a run did. */
typedef struct {
	size_t reached, skipped;   /* images waited for, skipped of them */
	int fail;                  /* a sink failed: reported, stopped */
	uint8_t *tile[PREVIEW_GRIDS];
	int ntile;                 /* the preview: the first grids */
} Run;

/* The records of image i (in its slot s) into the sink. */
static void
put_image(Run *r, const Slot *s, RecordSink *sink, const Opts *o)
{
	char err[1024];

	for (int k = 0; s->ok && k < o->K; k++) {
		if (sink_put(sink, &s->rec[k], err, sizeof err) < 0) {
			/* A ZeroMQ put blocked at the high-water mark
			 * gives up on a signal: that is no failure. */
			if (errno != EINTR || !got_signal) {
				warnx("%s", err);
				r->fail = 1;
			}
			break;
		}
		if (o->preview && r->ntile < PREVIEW_GRIDS) {
			r->tile[r->ntile] = emalloc((size_t)o->cfg.crop *
			    o->cfg.crop * 3);
			grid_tile(r->tile[r->ntile++], &o->cfg, &s->grid[k],
			    s->rec[k].pixels, 128);
		}
	}
}

/* Every image's records in input order, until the end, a failed sink or
 * a signal. */
static void
sample_all(Run *r, Sampler *p, RecordSink *sink, const Opts *o)
{
	Progress prog;
	char extra[64];
	size_t i;

	progress_init(&prog, "images", o->verbose);
	for (i = 0; i < p->in->n && !r->fail; i++) {
		long si = workers_wait(p->w, i, &got_signal);
		const Slot *s;

		if (si < 0)
			break;
		s = &p->slot[si];
		if (!s->ok) {
			warnx("%s: %s", p->in->item[i].path, s->err);
			r->skipped++;
		}
		put_image(r, s, sink, o);
		workers_release(p->w, i);
		snprintf(extra, sizeof extra, "%zu skipped", r->skipped);
		progress_show(&prog, i + 1, p->in->n, extra);
		if (got_signal)
			break;
	}
	r->reached = i;
	snprintf(extra, sizeof extra, "%zu skipped", r->skipped);
	progress_end(&prog, i, p->in->n, extra);
}

/* Close the sink and write the preview; r->fail set on a failure. */
static void
finish(Run *r, RecordSink *sink, const Opts *o)
{
	char err[1024];

	/* After a failed put the sink's state is reported already. An
	 * interrupted ZeroMQ stream is left without its end-of-stream marker
	 * (closing would wait for a receiver to take it): the receiver then
	 * reports a sender that ended early, which is what happened. */
	if (got_signal && o->zep)
		sink_close_now(sink, NULL, 0);
	else if (sink_close(sink, err, sizeof err) < 0 && !r->fail) {
		warnx("%s", err);
		r->fail = 1;
	}
	if (!o->lmdb && !o->zep && !r->fail)
		r->fail = fshut(stdout, "<stdout>");
	if (o->preview && r->ntile > 0 && img_montage_png(o->preview,
	    (const uint8_t *const *)r->tile, r->ntile, o->cfg.crop,
	    o->cfg.crop, PREVIEW_COLS, 8, 255, err, sizeof err) < 0) {
		warnx("%s", err);
		r->fail = 1;
	}
	for (int t = 0; t < r->ntile; t++)
		free(r->tile[t]);
}

int
main(int argc, char **argv)
{
	Opts o;
	Run r = {0};
	List in = {0};
	RecordSink *sink;
	uint64_t nrec;
	char err[1024];
	int nopt = parse_options(&o, argc, argv);

	read_inputs(&in, &o, argv + nopt, argc - nopt);
	if (!o.lmdb && !o.zep)
		rl_refuse_tty_stdout(o.force);
	if (img_start(argv[0], err, sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	sink = open_sink(&o, in.n);

	Sampler p = { .in = &in, .cfg = &o.cfg, .seed = o.seed, .K = o.K,
	    .exact = o.exact };
	sampler_start(&p, o.threads);
	sample_all(&r, &p, sink, &o);
	sampler_free(&p);
	nrec = sink_count(sink);
	finish(&r, sink, &o);
	if (o.verbose)
		fprintf(stderr, "rl-sample: %llu records from %zu images, "
		    "%zu skipped, seed %llu\n", (unsigned long long)nrec,
		    r.reached - r.skipped, r.skipped,
		    (unsigned long long)o.seed);
	if (r.skipped)
		warnx("%zu of %zu images skipped", r.skipped, r.reached);
	list_free(&in);
	img_stop();
	if (got_signal) {
		warnx("interrupted by signal %d after %llu records",
		    (int)got_signal, (unsigned long long)nrec);
		return 128 + got_signal;
	}
	return r.fail || r.skipped ? RL_EXIT_FAIL : 0;
}

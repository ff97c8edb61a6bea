/*
 * rl-sample: cut Relative-Location grids (3x3 patches) from images and
 * send them as grid records to stdout, an LMDB directory or ZeroMQ.
 *
 * A pool of worker threads decodes and samples the images; the main thread
 * writes their records in input order, so the output does not depend on
 * the thread count. The geometry and colour handling are grid.h's, the
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
// The worker pool

enum { SLOT_FREE, SLOT_DONE };

typedef struct {
	int state;
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
	pthread_mutex_t mu;
	pthread_cond_t done, space;
	size_t next;            /* next image to take */
	size_t consumed;        /* images written (or skipped) so far */
	int stop;
} Pool;

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* Decode image i and cut its K grids into its slot. */
static void
sample_image(Pool *p, size_t i, Slot *s)
{
	const ListItem *it = &p->in->item[i];
	const GridConfig *c = p->cfg;
	Image im;
	int fw, fh, min_short = 0;

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

static void *
worker(void *arg)
{
	Pool *p = arg;

	for (;;) {
		size_t i;
		pthread_mutex_lock(&p->mu);
		while (!p->stop && p->next < p->in->n &&
		    p->next - p->consumed >= p->nslot)
			pthread_cond_wait(&p->space, &p->mu);
		if (p->stop || p->next >= p->in->n) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->mu);

		Slot *s = &p->slot[i % p->nslot];
		sample_image(p, i, s);

		pthread_mutex_lock(&p->mu);
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&p->done);
		pthread_mutex_unlock(&p->mu);
	}
	img_thread_end();
	return NULL;
}

/* Wait until image i's slot is done, or a signal came (NULL). */
static Slot *
wait_slot(Pool *p, size_t i)
{
	Slot *s = &p->slot[i % p->nslot];

	pthread_mutex_lock(&p->mu);
	while (s->state != SLOT_DONE && !got_signal) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;   /* look at signals 10x/s */
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->done, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return s->state == SLOT_DONE ? s : NULL;
}

static void
release_slot(Pool *p, size_t i)
{
	pthread_mutex_lock(&p->mu);
	p->slot[i % p->nslot].state = SLOT_FREE;
	p->consumed = i + 1;
	pthread_cond_broadcast(&p->space);
	pthread_mutex_unlock(&p->mu);
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
    OPT_INSECURE, OPT_KEY, OPT_MAX_PIXELS, OPT_PEER_KEY };

int
main(int argc, char **argv)
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
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "max-pixels", required_argument, NULL, OPT_MAX_PIXELS },
		{ "peer-key", required_argument, NULL, OPT_PEER_KEY },
		{ NULL, 0, NULL, 0 }
	};
	GridGeometry geo = {0};
	GridConfig cfg;
	const char *preset = "mmselfsup", *lmdb = NULL, *zep = NULL;
	const char *listfile = NULL, *preview = NULL, *root = NULL;
	const char *chroma = NULL;
	double gray = -1, down = -1;
	int force = 0, verbose = 0, threads = 2, K = 1, exact = 0, ch;
	uint64_t seed = 0;
	char err[1024];
	List in = {0};
	StreamOptions zopt = {0};       /* -z: keys, --insecure */
	const char *argv0 = argv[0];

	while ((ch = getopt_long(argc, argv, "fhVvj:l:n:o:p:s:z:", lopt,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': force = 1; break;
		case 'h': rl_help(usage_line, options_text);
		case 'V': rl_print_version(); break;
		case 'v': verbose = 1; break;
		case 'j': threads = estrtonum(optarg, 1, 256, "-j threads"); break;
		case 'l': listfile = optarg; break;
		case 'n': K = estrtonum(optarg, 1, 1 << 20, "-n grids"); break;
		case 'o': lmdb = optarg; break;
		case 'p': preset = optarg; break;
		case 's':
			seed = estrtonum(optarg, 0, INT64_MAX, "-s seed");
			break;
		case 'z': zep = optarg; break;
		case OPT_CHROMA: chroma = optarg; break;
		case OPT_CROP:
			geo.crop = estrtonum(optarg, 3, GRID_MAX_SIDE, "--crop");
			break;
		case OPT_DOWN: down = prob(optarg, "--downsample"); break;
		case OPT_EXACT: exact = 1; break;
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
		case OPT_PREVIEW: preview = optarg; break;
		case OPT_RESIZE:
			geo.resize = estrtonum(optarg, 3, GRID_MAX_SIDE,
			    "--resize");
			break;
		case OPT_ROOT: root = optarg; break;
		case OPT_INSECURE: zopt.insecure = 1; break;
		case OPT_KEY: zopt.key_file = optarg; break;
		case OPT_MAX_PIXELS:
			img_set_max_pixels((uint64_t)estrtonum(optarg, 1,
			    INT64_MAX, "--max-pixels"));
			break;
		case OPT_PEER_KEY: zopt.peer_file = optarg; break;
		default: rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	if (lmdb && zep) {
		warnx("-o and -z are exclusive");
		rl_usage(usage_line);
	}
	if (!zep && (zopt.key_file || zopt.peer_file || zopt.insecure))
		errx(RL_EXIT_USAGE, "--insecure, --key and --peer-key are "
		    "for -z");
	if (geo.resize && geo.area_max) {
		warnx("--resize and --pixels are exclusive");
		rl_usage(usage_line);
	}
	if (grid_config_init(&cfg, preset, &geo, err, sizeof err) < 0) {
		warnx("%s", err);
		rl_usage(usage_line);
	}
	if (gray >= 0)
		cfg.gray_p = gray;
	if (down >= 0)
		cfg.down_p = down;
	if (cfg.down_p > 0 && cfg.down_min == 0)
		cfg.down_min = RL_MIN(100, (cfg.patch - 1) * (cfg.patch - 1));
	if (chroma) {
		if (!strcmp(chroma, "none"))
			cfg.chroma = GRID_CHROMA_NONE;
		else if (!strcmp(chroma, "drop"))
			cfg.chroma = GRID_CHROMA_DROP;
		else if (!strcmp(chroma, "project"))
			cfg.chroma = GRID_CHROMA_PROJECT;
		else {
			warnx("--chroma: none, drop or project, not '%s'",
			    chroma);
			rl_usage(usage_line);
		}
	}

	/* Inputs: the list file, then the operands ("-": a list on stdin);
	 * with neither, a list on stdin. */
	if (listfile)
		read_list(&in, listfile, root);
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-"))
			read_list(&in, "-", root);
		else
			list_add(&in, argv[i], NULL, 0);
	}
	if (!listfile && argc == 0)
		read_list(&in, "-", root);

	if (!lmdb && !zep)
		rl_refuse_tty_stdout(force);
	if (img_start(argv0, err, sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);

	RecordSink *sink;
	StreamKind kind = lmdb ? STREAM_LMDB : zep ? STREAM_ZMQ : STREAM_FILE;
	if (sink_open(&sink, kind, lmdb ? lmdb : zep ? zep : "-", &zopt, err,
	    sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	char *meta = meta_json(&cfg, seed, K, exact, in.n);
	if (sink_set_meta(sink, meta, err, sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	free(meta);

	/* Signals go to the main thread only: block them around the
	 * workers' creation. */
	struct sigaction sa;
	sigset_t block, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;     /* a second ^C kills at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);

	Pool p = { .in = &in, .cfg = &cfg, .seed = seed, .K = K,
	    .exact = exact };
	/* Room for every worker to run ahead by one image; with many grids
	 * per image (each slot holds them all) just enough to keep busy. */
	p.nslot = (size_t)threads + (K > 16 ? 1 : threads + 2);
	p.slot = ecalloc(p.nslot, sizeof *p.slot);
	for (size_t i = 0; i < p.nslot; i++) {
		p.slot[i].rec = ecalloc(K, sizeof *p.slot[i].rec);
		p.slot[i].grid = ecalloc(K, sizeof *p.slot[i].grid);
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.done, NULL);
	pthread_cond_init(&p.space, NULL);
	pthread_t *tid = ecalloc(threads, sizeof *tid);
	for (int t = 0; t < threads; t++)
		if (pthread_create(&tid[t], NULL, worker, &p))
			errx(RL_EXIT_FAIL, "cannot start a worker thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	/* The preview: the first grids as the trainer sees them. */
	uint8_t *tile[PREVIEW_GRIDS] = {0};
	int ntile = 0;

	Progress prog;
	size_t skipped = 0, i;
	int fail = 0;           /* a sink failed: reported, stop */
	progress_init(&prog, "images", verbose);
	for (i = 0; i < in.n && !fail; i++) {
		Slot *s = wait_slot(&p, i);
		if (!s)
			break;
		if (!s->ok) {
			warnx("%s: %s", in.item[i].path, s->err);
			skipped++;
		}
		for (int k = 0; s->ok && k < K; k++) {
			if (sink_put(sink, &s->rec[k], err, sizeof err) < 0) {
				/* A ZeroMQ put blocked at the high-water mark
				 * gives up on a signal: that is no failure. */
				if (errno != EINTR || !got_signal) {
					warnx("%s", err);
					fail = 1;
				}
				break;
			}
			if (preview && ntile < PREVIEW_GRIDS) {
				tile[ntile] = emalloc((size_t)cfg.crop *
				    cfg.crop * 3);
				grid_tile(tile[ntile++], &cfg, &s->grid[k],
				    s->rec[k].pixels, 128);
			}
		}
		release_slot(&p, i);
		if (prog.on) {
			char extra[64];
			snprintf(extra, sizeof extra, "%zu skipped", skipped);
			progress_show(&prog, i + 1, in.n, extra);
		}
		if (got_signal)
			break;
	}
	pthread_mutex_lock(&p.mu);
	p.stop = 1;
	pthread_cond_broadcast(&p.space);
	pthread_mutex_unlock(&p.mu);
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	if (prog.on) {
		char extra[64];
		snprintf(extra, sizeof extra, "%zu skipped", skipped);
		progress_end(&prog, i, in.n, extra);
	}

	uint64_t nrec = sink_count(sink);
	/* After a failed put the sink's state is reported already. An
	 * interrupted ZeroMQ stream is left without its end-of-stream marker
	 * (closing would wait for a receiver to take it): the receiver then
	 * reports a sender that ended early, which is what happened. */
	if (got_signal && zep)
		;
	else if (sink_close(sink, err, sizeof err) < 0 && !fail) {
		warnx("%s", err);
		fail = 1;
	}
	if (!lmdb && !zep && !fail)
		fail = fshut(stdout, "<stdout>");
	if (preview && ntile > 0 && img_montage_png(preview,
	    (const uint8_t *const *)tile, ntile, cfg.crop, cfg.crop,
	    PREVIEW_COLS, 8, 255, err, sizeof err) < 0) {
		warnx("%s", err);
		fail = 1;
	}
	if (verbose)
		fprintf(stderr, "rl-sample: %llu records from %zu images, "
		    "%zu skipped, seed %llu\n", (unsigned long long)nrec,
		    i - skipped, skipped, (unsigned long long)seed);
	if (skipped)
		warnx("%zu of %zu images skipped", skipped, i);

	for (int t = 0; t < ntile; t++)
		free(tile[t]);
	for (size_t j = 0; j < p.nslot; j++) {
		for (int k = 0; k < K; k++)
			record_free(&p.slot[j].rec[k]);
		free(p.slot[j].rec);
		free(p.slot[j].grid);
	}
	free(p.slot);
	free(tid);
	list_free(&in);
	img_stop();
	if (got_signal) {
		warnx("interrupted by signal %d after %llu records",
		    (int)got_signal, (unsigned long long)nrec);
		return 128 + got_signal;
	}
	return fail || skipped ? RL_EXIT_FAIL : 0;
}

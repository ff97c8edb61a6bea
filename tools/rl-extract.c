/*
 * rl-extract: the frozen features the benchmarks score (MMSelfSup 0.x
 * extract.py): images of a list through a ResNet in eval mode, Feature1-5
 * pooled as MultiPooling and the global average of layer4, written as
 * float32 .npy files with the list's labels and a JSON sidecar that says
 * how they were made.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "common/blas.h"
#include "common/dist.h"
#include "common/ckpt.h"
#include "common/extract.h"
#include "common/img.h"
#include "common/list.h"
#include "common/npy.h"
#include "common/pool.h"
#include "common/prep.h"
#include "common/util.h"

static const char usage_line[] =
    "usage: rl-extract [-hVv] [-a arch] [-b batch] [-j threads] [-L layers] "
    "[-o dir]\n"
    "                  [-P preset] [-p prefix] [-r root] [--max-pixels n] "
    "[--resize n]\n"
    "                  [--size n]\n"
    "                  -m model | --random-init seed [list]\n";

static const char options_text[] =
    "\n"
    "  list                image list, `path [label ...]` a line; "
    "none or - is stdin\n"
    "  -a, --arch arch     resnet18, resnet34 or resnet50 (default: "
    "the checkpoint's,\n"
    "                      resnet50 with --random-init)\n"
    "  -b, --batch n       images per forward (default 16)\n"
    "  -h, --help          print this help and exit\n"
    "  -j, --threads n     image decoding threads (default 1)\n"
    "  -L, --layers list   features, comma-separated: feat1..feat5, "
    "gap, or all\n"
    "                      (default all)\n"
    "  -m, --model file    safetensors checkpoint with torchvision's "
    "ResNet names\n"
    "  -o, --output dir    write the files into dir (default .)\n"
    "  -P, --preset name   svm (resize, warp; default), center "
    "(resize, centre crop)\n"
    "                      or none (images already size x size)\n"
    "  -p, --prefix name   files prefix_feat1.npy, ... (default: the "
    "list's name)\n"
    "  -r, --root dir      relative image paths are under dir (default: "
    "the list's\n"
    "                      directory)\n"
    "  -V, --version       print the version and exit\n"
    "  -v, --verbose       progress and timing on stderr\n"
    "  --max-pixels n      refuse images of more pixels (default "
    "178956970)\n"
    "  --random-init seed  a randomly initialised network instead of "
    "-m\n"
    "  --resize n          shorter side after the first resize "
    "(default 256)\n"
    "  --size n            network input side (default 224)\n";

enum { OPT_RANDOM = 256, OPT_RESIZE, OPT_SIZE, OPT_MAX_PIXELS };

/* The files being written, for the signal handler to remove. */
static ExtractOutputs *volatile sig_outputs;

static void
on_signal(int sig)
{
	if (sig_outputs)
		extract_outputs_unlink_tmp(sig_outputs);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The default prefix: the list's file name without its directory and
 * extension; "features" for stdin. */
static char *
default_prefix(const char *list)
{
	const char *b;
	char *p, *dot;

	if (list == NULL || strcmp(list, "-") == 0)
		return estrdup("features");
	b = strrchr(list, '/') ? strrchr(list, '/') + 1 : list;
	p = estrdup(*b ? b : "features");
	if ((dot = strrchr(p, '.')) != NULL && dot != p)
		*dot = '\0';
	return p;
}

/* ------------------------------------------------------------------------ */
/* the run */

typedef struct {
	const char *arch, *model, *outdir, *root, *list;
	char *prefix;
	PrepSpec ps;
	unsigned mask;
	int batch, nthreads, verbose, random;
	uint64_t seed;
} Opts;

static void
parse_options(Opts *o, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"arch", required_argument, NULL, 'a'},
		{"batch", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{"threads", required_argument, NULL, 'j'},
		{"layers", required_argument, NULL, 'L'},
		{"model", required_argument, NULL, 'm'},
		{"output", required_argument, NULL, 'o'},
		{"preset", required_argument, NULL, 'P'},
		{"prefix", required_argument, NULL, 'p'},
		{"root", required_argument, NULL, 'r'},
		{"version", no_argument, NULL, 'V'},
		{"verbose", no_argument, NULL, 'v'},
		{"random-init", required_argument, NULL, OPT_RANDOM},
		{"resize", required_argument, NULL, OPT_RESIZE},
		{"size", required_argument, NULL, OPT_SIZE},
		{"max-pixels", required_argument, NULL, OPT_MAX_PIXELS},
		{NULL, 0, NULL, 0},
	};
	ResNetConfig cfg;
	char msg[256];
	int ch;

	memset(o, 0, sizeof *o);
	o->outdir = ".";
	o->ps = (PrepSpec){PREP_SVM, 256, 224};
	o->mask = (1u << POOL_NFEAT) - 1;
	o->batch = 16;
	o->nthreads = 1;
	while ((ch = getopt_long(argc, argv, "a:b:hj:L:m:o:P:p:r:Vv", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (extract_arch_config(&cfg, optarg, msg, sizeof msg))
				errx(RL_EXIT_USAGE, "-a %s", msg);
			o->arch = optarg;
			break;
		case 'b':
			o->batch = (int)estrtonum(optarg, 1, 4096, "batch");
			break;
		case 'h':
			rl_help(usage_line, options_text);
		case 'j':
			o->nthreads = (int)estrtonum(optarg, 1, 256, "threads");
			break;
		case 'L':
			if (pool_parse_list(optarg, &o->mask, msg, sizeof msg))
				errx(RL_EXIT_USAGE, "-L %s", msg);
			break;
		case 'm':
			o->model = optarg;
			break;
		case 'o':
			o->outdir = optarg;
			break;
		case 'P':
			if (prep_parse(optarg, &o->ps.mode))
				errx(RL_EXIT_USAGE, "-P %s: svm, center or none "
				    "expected", optarg);
			break;
		case 'p':
			if (!*optarg || strchr(optarg, '/'))
				errx(RL_EXIT_USAGE, "-p '%s': want a file name "
				    "prefix such as voc07_trainval", optarg);
			free(o->prefix);
			o->prefix = estrdup(optarg);
			break;
		case 'r':
			o->root = optarg;
			break;
		case 'V':
			rl_print_version();
			break;
		case 'v':
			o->verbose = 1;
			break;
		case OPT_RANDOM:
			o->seed = (uint64_t)estrtonum(optarg, 0, INT64_MAX,
			    "seed");
			o->random = 1;
			break;
		case OPT_RESIZE:
			o->ps.resize = (int)estrtonum(optarg, 1, 65536,
			    "resize");
			break;
		case OPT_SIZE:
			o->ps.size = (int)estrtonum(optarg, 1, 65536, "size");
			break;
		case OPT_MAX_PIXELS:
			img_set_max_pixels((uint64_t)estrtonum(optarg, 1,
			    INT64_MAX, "--max-pixels"));
			break;
		default:
			rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || (o->model != NULL) == o->random) {
		if (argc <= 1)
			warnx("give one of -m model and --random-init seed");
		rl_usage(usage_line);
	}
	if (o->ps.mode == PREP_CENTER && o->ps.resize < o->ps.size)
		errx(RL_EXIT_USAGE, "--resize %d is smaller than the %d centre "
		    "crop", o->ps.resize, o->ps.size);
	if (argc == 1 && strcmp(argv[0], "-") != 0)
		o->list = argv[0];
	if (o->prefix == NULL)
		o->prefix = default_prefix(o->list);
}

/* The list and its labels, every image checked readable before any work.
 * Exits 1. */
static void
read_list(List *l, ExtractLabels *lb, const Opts *o)
{
	const char *name = o->list ? o->list : "<stdin>";
	char msg[1024];
	size_t nbad;
	long bad;
	int e;

	if (list_read_file(l, o->list, o->root, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (l->n == 0)
		errx(RL_EXIT_FAIL, "%s: no images", name);
	if (extract_labels(lb, l, name, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if ((bad = extract_check_files(l, &nbad, &e)) >= 0)
		errx(RL_EXIT_FAIL, "%s: %s (line %zu; %zu of %zu images "
		    "unreadable; every image is needed, rows match the list)",
		    l->item[bad].path, strerror(e), l->item[bad].line, nbad,
		    l->n);
}

/* The network of -m or --random-init, and what the sidecar says of it.
 * Exits 1. */
static void
load_model(ExtractModel *m, ExtractSource *mi, const Opts *o)
{
	char msg[CKPT_ERRLEN];
	struct stat st;
	Ckpt *c;

	memset(mi, 0, sizeof *mi);
	mi->seed = o->seed;
	if (o->random) {
		if (extract_model_random(m, o->arch ? o->arch : "resnet50",
		    o->seed, msg, sizeof msg))
			errx(RL_EXIT_FAIL, "%s", msg);
		return;
	}
	if (stat(o->model, &st) != 0)
		err(RL_EXIT_FAIL, "%s", o->model);
	mi->path = o->model;
	mi->size = (long long)st.st_size;
	mi->mtime = (long long)st.st_mtime;
	if (rl_file_crc32(o->model, &mi->crc, msg, sizeof msg) ||
	    ckpt_open(&c, o->model, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (extract_model_load(m, c, o->arch, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (ckpt_meta(c, "step"))
		mi->step = estrdup(ckpt_meta(c, "step"));
	ckpt_close(c);
}

/*
 * Every batch of the loader through the network into the writers.
 * Returns 0, or -1 with a message (an image that failed, a write error).
 */
static int
run(ExtractModel *m, ExtractPlan *plan, ExtractOutputs *op, const List *l,
    const Opts *o, char *msg, size_t msglen)
{
	ExtractLoader *ld;
	Progress prog;
	size_t done = 0;
	double t0 = now_seconds(), tnet = 0;
	int rc = 0;

	if (extract_loader_start(&ld, l, &o->ps, plan->maxB, o->nthreads, msg,
	    msglen))
		return -1;
	progress_init(&prog, "images", o->verbose);
	for (;;) {
		const float *x;
		int nb;
		double t1;

		if ((rc = extract_loader_next(ld, &x, &nb, msg, msglen)) != 0 ||
		    nb == 0)
			break;
		t1 = now_seconds();
		extract_batch(plan, m, x, nb, op->out);
		tnet += now_seconds() - t1;
		if ((rc = extract_outputs_append(op, nb, msg, msglen)) != 0)
			break;
		done += nb;
		progress_show(&prog, done, l->n, NULL);
	}
	progress_end(&prog, done, l->n, NULL);
	if (rc == 0 && o->verbose) {
		double t = now_seconds() - t0;

		fprintf(stderr, "%s: %zu images in %.2f s: %.2f images/s; "
		    "network %.2f s (%.2f images/s), waiting for decoding "
		    "%.2f s; batch %d (%.0f MB of activations), %d decoding "
		    "thread%s, %d BLAS threads (%s)\n", rl_progname(), done,
		    t, done / t, tnet, done / tnet, extract_loader_wait(ld),
		    plan->maxB, resnet_ctx_bytes(plan->ctx) / 1e6,
		    o->nthreads, o->nthreads > 1 ? "s" : "", blas_threads(),
		    blas_corename());
	}
	extract_loader_stop(ld);
	return rc;
}

/*
 * Ranks (mpirun -np P, dist.h): rank r extracts images [r n/P, (r+1) n/P)
 * of the list. A rank r > 0 writes its rows to part files in the output
 * directory (".<prefix>.rank<r>_<feature>.npy", so the directory must be
 * one every rank can write: shared storage); rank 0, once every rank is
 * done, appends the parts after its own rows in rank order, removes them
 * and writes the labels and the sidecar: the files of a one-process run.
 */
static char *
part_prefix(const char *prefix, int r)
{
	char *p = emalloc(strlen(prefix) + 32);

	sprintf(p, ".%s.rank%d", prefix, r);
	return p;
}

/* This rank's range of the list, as a list of its own (borrowed). */
static List
rank_range(const List *l)
{
	size_t P = (size_t)dist_size(), r = (size_t)dist_rank();
	List sub = *l;

	if (l->n < P)
		errx(RL_EXIT_FAIL, "%zu images for %zu ranks: fewer ranks, "
		    "please", l->n, P);
	sub.item = l->item + l->n * r / P;
	sub.n = l->n * (r + 1) / P - l->n * r / P;
	return sub;
}

/* Rank r > 0: its rows into its part files. */
static void
write_part(ExtractModel *m, ExtractPlan *plan, const List *sub, Opts o)
{
	ExtractOutputs op = {0};
	char msg[1024];

	o.prefix = part_prefix(o.prefix, dist_rank());
	o.verbose = 0;
	sig_outputs = &op;
	if (extract_outputs_open(&op, plan, o.outdir, o.prefix, 0, msg,
	    sizeof msg) || run(m, plan, &op, sub, &o, msg, sizeof msg)) {
		extract_outputs_abort(&op);
		errx(RL_EXIT_FAIL, "%s", msg);
	}
	for (int i = 0; i < op.n; i++)
		if (npy_writer_close(&op.w[i], msg, sizeof msg)) {
			extract_outputs_abort(&op);
			errx(RL_EXIT_FAIL, "%s", msg);
		}
	sig_outputs = NULL;
	extract_outputs_free(&op);
	free(o.prefix);
}

/* Rank 0: the other ranks' rows after its own, their parts removed.
 * Exits 1 (with every temp file removed) on a failure. */
static void
gather_parts(ExtractOutputs *op, const ExtractPlan *plan, const List *l,
    const Opts *o)
{
	char msg[1024];
	int P = dist_size(), rc = 0;

	for (int r = 1; r < P; r++) {
		char *pp = part_prefix(o->prefix, r);
		int64_t rows = (int64_t)(l->n * (r + 1) / P - l->n * r / P);

		for (int i = 0; i < plan->nfeat; i++) {
			char *path = rl_concat(o->outdir, "/", pp, "_",
			    plan->feat[i].spec->name, ".npy", NULL);

			if (rc == 0)
				rc = npy_writer_append_file(&op->w[i], path, rows,
				    msg, sizeof msg);
			unlink(path);
			free(path);
		}
		free(pp);
	}
	if (rc) {
		extract_outputs_abort(op);
		errx(RL_EXIT_FAIL, "%s", msg);
	}
}

int
main(int argc, char *argv[])
{
	char msg[1024], *text;
	ExtractSource mi;
	ExtractModel m;
	ExtractPlan plan;
	ExtractOutputs op = {0};
	ExtractLabels lb;
	List l = {0};
	Opts o;
	json_t *js;
	struct stat st;
	List sub;

	blas_init(argv);
	dist_init(&argc, &argv);
	parse_options(&o, argc, argv);
	if (stat(o.outdir, &st) != 0 || !S_ISDIR(st.st_mode))
		errx(RL_EXIT_FAIL, "%s: not a directory", o.outdir);
	read_list(&l, &lb, &o);
	if (img_start(argv[0], msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	load_model(&m, &mi, &o);
	sub = rank_range(&l);
	if (extract_plan(&plan, &m, o.mask, o.ps.size,
	    (int)RL_MIN((size_t)o.batch, sub.n), msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	rl_catch_signals(on_signal, 0, NULL);
	if (dist_rank() > 0) {
		write_part(&m, &plan, &sub, o);
		dist_barrier();                 /* every part is written */
		dist_finish();
		return 0;
	}

	sig_outputs = &op;
	if (extract_outputs_open(&op, &plan, o.outdir, o.prefix, lb.nl > 0,
	    msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (run(&m, &plan, &op, &sub, &o, msg, sizeof msg)) {
		extract_outputs_abort(&op);
		errx(RL_EXIT_FAIL, "%s", msg);
	}
	dist_barrier();                 /* every part is written */
	gather_parts(&op, &plan, &l, &o);
	js = extract_sidecar(&mi, &m, &o.ps, &plan, op.file, op.labels ?
	    strrchr(op.labels, '/') + 1 : NULL, &lb, o.list, l.n);
	text = json_dumps(js, JSON_INDENT(2) | JSON_REAL_PRECISION(7));
	json_decref(js);
	if (extract_outputs_commit(&op, &lb, text, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);

	free(text);
	sig_outputs = NULL;
	extract_outputs_free(&op);
	extract_plan_free(&plan);
	extract_model_free(&m);
	list_free(&l);
	free(lb.data);
	free(o.prefix);
	free((char *)mi.step);
	img_stop();
	dist_finish();
	return fshut(stdout, "<stdout>");
}

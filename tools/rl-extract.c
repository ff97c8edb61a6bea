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
    "                  [-P preset] [-p prefix] [-r root] [--resize n] "
    "[--size n]\n"
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
    "  --random-init seed  a randomly initialised network instead of "
    "-m\n"
    "  --resize n          shorter side after the first resize "
    "(default 256)\n"
    "  --size n            network input side (default 224)\n";

enum { OPT_RANDOM = 256, OPT_RESIZE, OPT_SIZE };

/* ------------------------------------------------------------------------ */
/* outputs: temp files removed on a fatal signal, renamed at the end */

#define MAXOUT (POOL_NFEAT + 2)

static const char *volatile tmpnames[MAXOUT];

static void
on_signal(int sig)
{
	for (int i = 0; i < MAXOUT; i++)
		if (tmpnames[i])
			unlink(tmpnames[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
catch_signals(void)
{
	struct sigaction sa;
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT};

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < RL_NELEM(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

static char *
out_path(const char *dir, const char *prefix, const char *what,
    const char *ext)
{
	size_t n = strlen(dir) + strlen(prefix) + strlen(what) + strlen(ext) +
	    4;
	char *p = emalloc(n);

	snprintf(p, n, "%s/%s_%s%s", dir, prefix, what, ext);
	return p;
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
/* labels */

typedef struct {
	int nl;            /* labels a line: 0 none, 1 a vector, > 1 a matrix */
	void *data;        /* int64 (N) or int32 (N, nl) */
	int64_t shape[2];
} Labels;

/* The list's labels; all lines must carry the same number. Exits 1. */
static void
labels_make(Labels *lb, const List *l, const char *name)
{
	memset(lb, 0, sizeof *lb);
	if (l->n == 0)
		return;
	lb->nl = l->item[0].nlabel;
	for (size_t i = 0; i < l->n; i++)
		if (l->item[i].nlabel != lb->nl)
			errx(RL_EXIT_FAIL, "%s:%zu: %d labels, but line %zu has "
			    "%d (every line needs the same number)", name,
			    l->item[i].line, l->item[i].nlabel, l->item[0].line,
			    lb->nl);
	lb->shape[0] = (int64_t)l->n;
	lb->shape[1] = lb->nl;
	if (lb->nl == 1) {
		int64_t *y = emalloc(l->n * sizeof *y);
		for (size_t i = 0; i < l->n; i++)
			y[i] = l->item[i].label[0];
		lb->data = y;
	} else if (lb->nl > 1) {
		int32_t *y = emalloc(l->n * lb->nl * sizeof *y);
		for (size_t i = 0; i < l->n; i++)
			for (int j = 0; j < lb->nl; j++) {
				long v = l->item[i].label[j];
				if (v < INT32_MIN || v > INT32_MAX)
					errx(RL_EXIT_FAIL, "%s:%zu: label %ld "
					    "out of the int32 range", name,
					    l->item[i].line, v);
				y[i * lb->nl + j] = (int32_t)v;
			}
		lb->data = y;
	}
}

/* ------------------------------------------------------------------------ */
/* the sidecar */

typedef struct {
	const char *path;      /* NULL for --random-init */
	uint64_t seed;
	const char *step;      /* checkpoint metadata, or NULL */
	long long size, mtime;
	unsigned long crc;
} ModelInfo;

static json_t *
sidecar(const ModelInfo *mi, const ExtractModel *m, const PrepSpec *ps,
    const ExtractPlan *plan, char *const *files, const char *labels_file,
    const Labels *lb, const char *list, size_t n)
{
	json_t *o, *model, *feats = json_array(), *pre;
	char dec[96];

	if (mi->path) {
		char crc[16];

		snprintf(crc, sizeof crc, "%08lx", mi->crc);
		model = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "source",
		    "checkpoint", "path", mi->path, "arch", m->arch, "bytes",
		    (json_int_t)mi->size, "mtime", (json_int_t)mi->mtime,
		    "crc32", crc);
		if (mi->step)
			json_object_set_new(model, "step",
			    json_string(mi->step));
		if (*m->prefix)
			json_object_set_new(model, "prefix",
			    json_string(m->prefix));
	} else {
		model = json_pack("{s:s, s:s, s:I}", "source", "random-init",
		    "arch", m->arch, "seed", (json_int_t)mi->seed);
	}
	json_object_set_new(model, "bn", json_string("eval"));
	snprintf(dec, sizeof dec, "libjpeg-turbo (JPEG), libvips %s (other "
	    "formats)", vips_version_string());
	pre = json_pack("{s:s, s:i, s:i, s:[f,f,f], s:[f,f,f], s:s, s:s}",
	    "preset", prep_name(ps->mode), "resize", ps->resize, "size",
	    ps->size, "mean", prep_mean[0], prep_mean[1], prep_mean[2], "std",
	    prep_std[0], prep_std[1], prep_std[2], "resample",
	    "PIL bilinear (antialiased)", "decoder", dec);
	if (ps->mode == PREP_NONE)
		json_object_del(pre, "resize");
	for (int i = 0; i < plan->nfeat; i++) {
		const ExtractFeat *f = &plan->feat[i];
		json_t *fo = json_pack("{s:s, s:s, s:i, s:[i,i,i], s:[i,i,i], "
		    "s:I, s:s, s:s}", "name", f->spec->name, "file", files[i],
		    "stage", f->spec->stage, "input", f->C, f->H, f->W,
		    "output", f->C, f->oh, f->ow, "dim", (json_int_t)f->dim,
		    "dtype", "float32", "order", "CHW (view(N,-1) of NCHW)");
		json_object_set_new(fo, "pool", f->spec->k ?
		    json_pack("{s:s, s:i, s:i, s:i, s:b, s:b}", "op",
		    "AvgPool2d", "kernel", f->spec->k, "stride", f->spec->s,
		    "padding", f->spec->p, "count_include_pad", 1,
		    "ceil_mode", 0) :
		    json_pack("{s:s}", "op", "AdaptiveAvgPool2d(1)"));
		json_array_append_new(feats, fo);
	}
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:{s:s, s:I}}", "tool",
	    "rl-extract", "version", RL_VERSION, "model", model,
	    "preprocess", pre, "features", feats, "list", "path", list ? list :
	    "-", "images", (json_int_t)n);
	if (lb->nl > 0) {
		json_t *shape = json_pack("[I]", (json_int_t)lb->shape[0]);

		if (lb->nl > 1)
			json_array_append_new(shape,
			    json_integer(lb->shape[1]));
		json_object_set_new(o, "labels", json_pack("{s:s, s:s, s:o}",
		    "file", labels_file, "dtype", lb->nl == 1 ? "int64" :
		    "int32", "shape", shape));
	}
	return o;
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
read_list(List *l, Labels *lb, const Opts *o)
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
	labels_make(lb, l, name);
	if ((bad = extract_check_files(l, &nbad, &e)) >= 0)
		errx(RL_EXIT_FAIL, "%s: %s (line %zu; %zu of %zu images "
		    "unreadable; every image is needed, rows match the list)",
		    l->item[bad].path, strerror(e), l->item[bad].line, nbad,
		    l->n);
}

/* The network of -m or --random-init, and what the sidecar says of it.
 * Exits 1. */
static void
load_model(ExtractModel *m, ModelInfo *mi, const Opts *o)
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

/* The files being written: features through temp files, then labels and
 * the sidecar. */
typedef struct {
	int n;
	NpyWriter w[POOL_NFEAT];
	char *path[POOL_NFEAT], *tmp[POOL_NFEAT], *file[POOL_NFEAT];
	float *out[POOL_NFEAT];     /* a batch of each feature */
	char *labels, *json;        /* paths; labels NULL without labels */
} Outputs;

static void
outputs_abort(Outputs *op)
{
	for (int i = 0; i < op->n; i++) {
		tmpnames[i] = NULL;
		npy_writer_abort(&op->w[i]);
	}
}

/* Open a writer per planned feature. Exits 1. */
static void
outputs_open(Outputs *op, const ExtractPlan *plan, const Opts *o, int nl)
{
	char msg[1024];

	memset(op, 0, sizeof *op);
	catch_signals();
	for (int i = 0; i < plan->nfeat; i++) {
		const ExtractFeat *f = &plan->feat[i];
		char *p = out_path(o->outdir, o->prefix, f->spec->name, ".npy");

		op->path[i] = p;
		op->file[i] = strrchr(p, '/') + 1;
		op->out[i] = emalloc_aligned((size_t)plan->maxB * f->dim *
		    sizeof(float));
		// registered before the writer creates it, so a signal
		// between the two cannot leave it behind
		op->tmp[i] = npy_tmp_path(p);
		tmpnames[i] = op->tmp[i];
		if (npy_writer_open(&op->w[i], p, NPY_F32, (int64_t)f->dim,
		    msg, sizeof msg)) {
			outputs_abort(op);
			errx(RL_EXIT_FAIL, "%s", msg);
		}
		op->n++;
	}
	if (nl > 0)
		op->labels = out_path(o->outdir, o->prefix, "labels", ".npy");
	op->json = emalloc(strlen(o->outdir) + strlen(o->prefix) + 8);
	sprintf(op->json, "%s/%s.json", o->outdir, o->prefix);
}

/*
 * Everything computed: rename the features into place, then write the
 * labels and the sidecar text. On a failure, remove what was renamed.
 * Returns 0, or -1 with a message.
 */
static int
outputs_commit(Outputs *op, const Labels *lb, const char *text, char *msg,
    size_t msglen)
{
	int renamed = 0, rc = 0;

	while (renamed < op->n) {
		tmpnames[renamed] = NULL;
		if ((rc = npy_writer_close(&op->w[renamed], msg, msglen)) != 0)
			break;     // that writer's temp file is gone
		renamed++;
	}
	if (rc == 0 && op->labels)
		rc = npy_write(op->labels, lb->nl == 1 ? NPY_I64 : NPY_I32,
		    lb->nl == 1 ? 1 : 2, lb->shape, lb->data, msg, msglen);
	if (rc == 0 && (rc = rl_write_text_atomic(op->json, text, msg,
	    msglen)) != 0 && op->labels)
		unlink(op->labels);
	if (rc != 0) {
		for (int j = 0; j < renamed; j++)
			unlink(op->path[j]);
		for (int j = renamed + 1; j < op->n; j++)
			npy_writer_abort(&op->w[j]);
	}
	return rc;
}

static void
outputs_free(Outputs *op)
{
	for (int i = 0; i < op->n; i++) {
		free(op->out[i]);
		free(op->path[i]);
		free(op->tmp[i]);
	}
	free(op->labels);
	free(op->json);
}

/*
 * Every batch of the loader through the network into the writers.
 * Returns 0, or -1 with a message (an image that failed, a write error).
 */
static int
run(ExtractModel *m, ExtractPlan *plan, Outputs *op, const List *l,
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
		for (int i = 0; i < op->n && rc == 0; i++)
			rc = npy_writer_append(&op->w[i], op->out[i], nb, msg,
			    msglen);
		if (rc != 0)
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

/* Rank 0: append rank r's part of feature i (rows rows of dim floats),
 * then remove the part. 0, or -1 with a message. */
static int
append_part(Outputs *op, int i, const char *path, size_t rows, int dim,
    int maxB, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "rb");
	unsigned char h[12];
	float *buf = emalloc((size_t)maxB * dim * sizeof(float));
	long off = -1;
	int rc = 0;

	if (f && fread(h, 1, 12, f) == 12 && !memcmp(h, "\x93NUMPY", 6))
		off = h[6] == 1 ? 10L + (h[8] | h[9] << 8) : 12L + (h[8] |
		    h[9] << 8 | (long)h[10] << 16 | (long)h[11] << 24);
	if (off < 0 || fseek(f, off, SEEK_SET) != 0) {
		snprintf(msg, msglen, "%s: not a rank's part", path);
		rc = -1;
	}
	for (size_t done = 0; rc == 0 && done < rows; ) {
		size_t k = RL_MIN(rows - done, (size_t)maxB);

		if (fread(buf, (size_t)dim * sizeof(float), k, f) != k) {
			snprintf(msg, msglen, "%s: short part", path);
			rc = -1;
		} else
			rc = npy_writer_append(&op->w[i], buf, (int64_t)k, msg,
			    msglen);
		done += k;
	}
	if (f)
		fclose(f);
	free(buf);
	unlink(path);
	return rc;
}

/* This rank's range of the list, as a list of its own (borrowed). */
static List
rank_range(const List *l, size_t *lo)
{
	size_t P = (size_t)dist_size(), r = (size_t)dist_rank();
	List sub = *l;

	if (l->n < P)
		errx(RL_EXIT_FAIL, "%zu images for %zu ranks: fewer ranks, "
		    "please", l->n, P);
	*lo = l->n * r / P;
	sub.item = l->item + *lo;
	sub.n = l->n * (r + 1) / P - *lo;
	return sub;
}

/* Rank r > 0: its rows into its part files. */
static void
write_part(ExtractModel *m, ExtractPlan *plan, const List *sub, Opts o)
{
	Outputs op;
	char msg[1024];

	o.prefix = part_prefix(o.prefix, dist_rank());
	o.verbose = 0;
	outputs_open(&op, plan, &o, 0);
	if (run(m, plan, &op, sub, &o, msg, sizeof msg)) {
		outputs_abort(&op);
		errx(RL_EXIT_FAIL, "%s", msg);
	}
	for (int i = 0; i < op.n; i++) {
		tmpnames[i] = NULL;
		if (npy_writer_close(&op.w[i], msg, sizeof msg))
			errx(RL_EXIT_FAIL, "%s", msg);
	}
	outputs_free(&op);
	free(o.prefix);
}

/* Rank 0: the other ranks' rows after its own. Exits 1. */
static void
gather_parts(Outputs *op, const ExtractPlan *plan, const List *l,
    const Opts *o)
{
	char msg[1024];
	int P = dist_size();

	for (int r = 1; r < P; r++) {
		char *pp = part_prefix(o->prefix, r);
		size_t rows = l->n * (r + 1) / P - l->n * r / P;

		for (int i = 0; i < plan->nfeat; i++) {
			char *path = out_path(o->outdir, pp,
			    plan->feat[i].spec->name, ".npy");

			if (append_part(op, i, path, rows, plan->feat[i].dim,
			    plan->maxB, msg, sizeof msg)) {
				outputs_abort(op);
				errx(RL_EXIT_FAIL, "%s", msg);
			}
			free(path);
		}
		free(pp);
	}
}

int
main(int argc, char *argv[])
{
	char msg[1024], *text;
	ModelInfo mi;
	ExtractModel m;
	ExtractPlan plan;
	Outputs op;
	Labels lb;
	List l = {0};
	Opts o;
	json_t *js;
	struct stat st;
	List sub;
	size_t lo;
	double sync = 0;

	blas_init(argv);
	dist_init(&argc, &argv);
	parse_options(&o, argc, argv);
	if (stat(o.outdir, &st) != 0 || !S_ISDIR(st.st_mode))
		errx(RL_EXIT_FAIL, "%s: not a directory", o.outdir);
	read_list(&l, &lb, &o);
	if (img_start(argv[0], msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	load_model(&m, &mi, &o);
	sub = rank_range(&l, &lo);
	if (extract_plan(&plan, &m, o.mask, o.ps.size,
	    (int)RL_MIN((size_t)o.batch, sub.n), msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (dist_rank() > 0) {
		write_part(&m, &plan, &sub, o);
		dist_sum_doubles(&sync, 1);     /* every part is written */
		dist_finish();
		return 0;
	}

	outputs_open(&op, &plan, &o, lb.nl);
	if (run(&m, &plan, &op, &sub, &o, msg, sizeof msg)) {
		outputs_abort(&op);
		errx(RL_EXIT_FAIL, "%s", msg);
	}
	dist_sum_doubles(&sync, 1);
	gather_parts(&op, &plan, &l, &o);
	js = sidecar(&mi, &m, &o.ps, &plan, op.file, op.labels ?
	    strrchr(op.labels, '/') + 1 : NULL, &lb, o.list, l.n);
	text = json_dumps(js, JSON_INDENT(2) | JSON_REAL_PRECISION(7));
	json_decref(js);
	if (outputs_commit(&op, &lb, text, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);

	free(text);
	outputs_free(&op);
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

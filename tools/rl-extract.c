/*
 * rl-extract: the frozen features the benchmarks score (MMSelfSup 0.x
 * extract.py): images of a list through a ResNet in eval mode, Feature1-5
 * pooled as MultiPooling and the global average of layer4, written as
 * float32 .npy files with the list's labels and a JSON sidecar that says
 * how they were made.
 */
#include <assert.h>
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

enum { OPT_RANDOM = 256, OPT_RESIZE, OPT_SIZE };

static void
usage(FILE *fp)
{
	fputs(usage_line, fp);
}

static void
help(void)
{
	usage(stdout);
	fputs("\n"
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
	    "  -r, --root dir      relative image paths are under dir\n"
	    "  -V, --version       print the version and exit\n"
	    "  -v, --verbose       progress and timing on stderr\n"
	    "  --random-init seed  a randomly initialised network instead of "
	    "-m\n"
	    "  --resize n          shorter side after the first resize "
	    "(default 256)\n"
	    "  --size n            network input side (default 224)\n", stdout);
	exit(0);
}

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
	char dec[64];

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
	snprintf(dec, sizeof dec, "libvips %s", vips_version_string());
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

static void
model_info(ModelInfo *mi, const char *path)
{
	struct stat st;
	char e[512];

	if (stat(path, &st) != 0)
		err(RL_EXIT_FAIL, "%s", path);
	mi->path = path;
	mi->size = (long long)st.st_size;
	mi->mtime = (long long)st.st_mtime;
	if (extract_file_crc32(path, &mi->crc, e, sizeof e))
		errx(RL_EXIT_FAIL, "%s", e);
}

int
main(int argc, char *argv[])
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
	const char *arch = NULL, *model = NULL, *outdir = ".", *root = NULL;
	const char *list = NULL, *argv0 = argv[0];
	char *prefix = NULL, *files[POOL_NFEAT], *paths[POOL_NFEAT];
	char *tmps[POOL_NFEAT];
	char *labels_path = NULL, *json_path, *text, msg[1024];
	PrepSpec ps = {PREP_SVM, 256, 224};
	unsigned mask = (1u << POOL_NFEAT) - 1;
	int ch, batch = 16, nthreads = 1, verbose = 0, have_seed = 0, rc;
	ModelInfo mi = {0};
	ExtractModel m;
	ExtractPlan plan;
	ExtractLoader *ld;
	NpyWriter w[POOL_NFEAT];
	float *out[POOL_NFEAT];
	Labels lb;
	List l = {0};
	Progress prog;
	json_t *js;
	size_t done = 0, nbad;
	double t0, tnet = 0;
	long bad;
	int bad_errno;
	struct stat st;

	blas_init(argv);
	while ((ch = getopt_long(argc, argv, "a:b:hj:L:m:o:P:p:r:Vv", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			arch = optarg;
			break;
		case 'b':
			batch = (int)estrtonum(optarg, 1, 4096, "batch");
			break;
		case 'h':
			help();
			break;
		case 'j':
			nthreads = (int)estrtonum(optarg, 1, 256, "threads");
			break;
		case 'L':
			if (pool_parse_list(optarg, &mask, msg, sizeof msg))
				errx(RL_EXIT_USAGE, "-L %s", msg);
			break;
		case 'm':
			model = optarg;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'P':
			if (prep_parse(optarg, &ps.mode))
				errx(RL_EXIT_USAGE, "-P %s: svm, center or none "
				    "expected", optarg);
			break;
		case 'p':
			if (!*optarg || strchr(optarg, '/'))
				errx(RL_EXIT_USAGE, "-p '%s': want a file name "
				    "prefix such as voc07_trainval", optarg);
			prefix = estrdup(optarg);
			break;
		case 'r':
			root = optarg;
			break;
		case 'V':
			rl_print_version();
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_RANDOM:
			mi.seed = (uint64_t)estrtonum(optarg, 0, INT64_MAX,
			    "seed");
			have_seed = 1;
			break;
		case OPT_RESIZE:
			ps.resize = (int)estrtonum(optarg, 1, 65536, "resize");
			break;
		case OPT_SIZE:
			ps.size = (int)estrtonum(optarg, 1, 65536, "size");
			break;
		default:
			usage(stderr);
			return RL_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || (model != NULL) == have_seed) {
		if (argc <= 1)
			warnx("give one of -m model and --random-init seed");
		usage(stderr);
		return RL_EXIT_USAGE;
	}
	if (ps.mode == PREP_CENTER && ps.resize < ps.size)
		errx(RL_EXIT_USAGE, "--resize %d is smaller than the %d centre "
		    "crop", ps.resize, ps.size);
	if (argc == 1 && strcmp(argv[0], "-") != 0)
		list = argv[0];
	if (prefix == NULL)
		prefix = default_prefix(list);
	if (stat(outdir, &st) != 0 || !S_ISDIR(st.st_mode))
		errx(RL_EXIT_FAIL, "%s: not a directory", outdir);

	// the list, its labels, and every file readable before any work
	{
		FILE *fp = list ? fopen(list, "r") : stdin;
		if (fp == NULL)
			err(RL_EXIT_FAIL, "%s", list);
		if (list_read(&l, fp, list ? list : "<stdin>", root, msg,
		    sizeof msg))
			errx(RL_EXIT_FAIL, "%s", msg);
		if (list)
			fclose(fp);
	}
	if (l.n == 0)
		errx(RL_EXIT_FAIL, "%s: no images", list ? list : "<stdin>");
	labels_make(&lb, &l, list ? list : "<stdin>");
	if ((bad = extract_check_files(&l, &nbad, &bad_errno)) >= 0)
		errx(RL_EXIT_FAIL, "%s: %s (line %zu; %zu of %zu images "
		    "unreadable; every image is needed, rows match the list)",
		    l.item[bad].path, strerror(bad_errno), l.item[bad].line,
		    nbad, l.n);

	if (img_start(argv0, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (model) {
		Ckpt *c;

		model_info(&mi, model);
		if (ckpt_open(&c, model, msg, sizeof msg))
			errx(RL_EXIT_FAIL, "%s", msg);
		if (extract_model_load(&m, c, arch, msg, sizeof msg))
			errx(RL_EXIT_FAIL, "%s", msg);
		if (ckpt_meta(c, "step"))
			mi.step = estrdup(ckpt_meta(c, "step"));
		ckpt_close(c);
	} else if (extract_model_random(&m, arch ? arch : "resnet50",
	    mi.seed, msg, sizeof msg)) {
		errx(RL_EXIT_USAGE, "-a %s", msg);
	}
	if ((size_t)batch > l.n)
		batch = (int)l.n;
	if (extract_plan(&plan, &m, mask, ps.size, batch, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);

	catch_signals();
	for (int i = 0; i < plan.nfeat; i++) {
		const ExtractFeat *f = &plan.feat[i];

		paths[i] = out_path(outdir, prefix, f->spec->name, ".npy");
		files[i] = strrchr(paths[i], '/') + 1;
		out[i] = emalloc_aligned((size_t)batch * f->dim * sizeof(float));
		// npy.h's temp name, known before the file exists, so a signal
		// between its creation and its registration cannot leave it
		tmps[i] = emalloc(strlen(paths[i]) + 32);
		sprintf(tmps[i], "%s.tmp%ld", paths[i], (long)getpid());
		tmpnames[i] = tmps[i];
		if (npy_writer_open(&w[i], paths[i], NPY_F32, (int64_t)f->dim,
		    msg, sizeof msg)) {
			for (int j = 0; j < i; j++)
				npy_writer_abort(&w[j]);
			errx(RL_EXIT_FAIL, "%s", msg);
		}
		assert(strcmp(w[i].tmp, tmps[i]) == 0);
	}
	if (lb.nl > 0)
		labels_path = out_path(outdir, prefix, "labels", ".npy");
	json_path = emalloc(strlen(outdir) + strlen(prefix) + 8);
	sprintf(json_path, "%s/%s.json", outdir, prefix);

	if (extract_loader_start(&ld, &l, &ps, batch, nthreads, msg,
	    sizeof msg))
		goto fail;
	progress_init(&prog, "images", verbose);
	t0 = now_seconds();
	for (;;) {
		const float *x;
		int nb;
		double t1;

		if (extract_loader_next(ld, &x, &nb, msg, sizeof msg))
			goto fail;
		if (nb == 0)
			break;
		t1 = now_seconds();
		extract_batch(&plan, &m, x, nb, out);
		tnet += now_seconds() - t1;
		for (int i = 0; i < plan.nfeat; i++)
			if (npy_writer_append(&w[i], out[i], nb, msg,
			    sizeof msg))
				goto fail;
		done += nb;
		progress_show(&prog, done, l.n, NULL);
	}
	progress_end(&prog, done, l.n, NULL);
	if (verbose) {
		double t = now_seconds() - t0;
		fprintf(stderr, "%s: %zu images in %.2f s: %.2f images/s; "
		    "network %.2f s (%.2f images/s), waiting for decoding "
		    "%.2f s; batch %d (%.0f MB of activations), %d decoding "
		    "thread%s, %d BLAS threads (%s)\n", rl_progname(), done,
		    t, done / t, tnet, done / tnet, extract_loader_wait(ld),
		    batch, resnet_ctx_bytes(plan.ctx) / 1e6, nthreads,
		    nthreads > 1 ? "s" : "", blas_threads(), blas_corename());
	}
	extract_loader_stop(ld);
	ld = NULL;

	// everything computed: rename the features, then the labels and sidecar
	js = sidecar(&mi, &m, &ps, &plan, files, labels_path ?
	    strrchr(labels_path, '/') + 1 : NULL, &lb, list, l.n);
	text = json_dumps(js, JSON_INDENT(2) | JSON_REAL_PRECISION(7));
	json_decref(js);
	for (int i = 0; i < plan.nfeat; i++) {
		tmpnames[i] = NULL;
		if (npy_writer_close(&w[i], msg, sizeof msg)) {
			for (int j = 0; j < i; j++)
				unlink(paths[j]);
			for (int j = i + 1; j < plan.nfeat; j++)
				npy_writer_abort(&w[j]);
			errx(RL_EXIT_FAIL, "%s", msg);
		}
	}
	rc = 0;
	if (labels_path)
		rc = npy_write(labels_path, lb.nl == 1 ? NPY_I64 : NPY_I32,
		    lb.nl == 1 ? 1 : 2, lb.shape, lb.data, msg, sizeof msg);
	if (rc == 0 && (rc = extract_write_text(json_path, text, msg,
	    sizeof msg)) != 0 && labels_path)
		unlink(labels_path);
	if (rc != 0) {
		for (int i = 0; i < plan.nfeat; i++)
			unlink(paths[i]);
		errx(RL_EXIT_FAIL, "%s", msg);
	}
	free(text);
	for (int i = 0; i < plan.nfeat; i++) {
		free(out[i]);
		free(paths[i]);
		free(tmps[i]);
	}
	extract_plan_free(&plan);
	extract_model_free(&m);
	list_free(&l);
	free(lb.data);
	free(labels_path);
	free(json_path);
	free(prefix);
	free((char *)mi.step);
	img_stop();
	return fshut(stdout, "<stdout>");

fail:
	extract_loader_stop(ld);
	for (int i = 0; i < plan.nfeat; i++) {
		tmpnames[i] = NULL;
		npy_writer_abort(&w[i]);
	}
	errx(RL_EXIT_FAIL, "%s", msg);
}

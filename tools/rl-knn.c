/*
 * rl-knn: the weighted kNN benchmark (DINO, MMSelfSup 0.x test_knn.py) on
 * precomputed features: top-1 and top-5 accuracy of the queries for each
 * k, voting with the bank's labels; optionally a PNG montage of queries
 * beside their nearest neighbours.
 */
#include <err.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "common/fdata.h"
#include "common/img.h"
#include "common/knn.h"
#include "common/list.h"
#include "common/util.h"

#define MAXK 32
#define MONT_ROWS 12     /* queries in a montage */
#define MONT_NEIGH 8     /* neighbours beside each */
#define MONT_TILE 96     /* tile side, pixels */
#define MONT_PAD 4
#define MONT_FRAME 3     /* the right/wrong-label frame of a neighbour */

static const char usage_line[] =
    "usage: rl-knn [-hVv] [--json] [--chunk-bank n] [--chunk-queries n] "
    "[-k list]\n"
    "              [-r root] [-t temp]\n"
    "              [--montage png --bank-list file --query-list file]\n"
    "              bank-feat bank-labels query-feat query-labels\n";

static const char options_text[] =
    "  bank-feat, query-feat    (N, D) float .npy features\n"
    "  bank-labels, query-labels  (N,) integer .npy class labels\n"
    "  --bank-list file   the bank's image paths, a line per row "
    "(--montage)\n"
    "  --chunk-bank n     bank rows per similarity block (default 4096)\n"
    "  --chunk-queries n  query rows per similarity block "
    "(default 1024)\n"
    "  -h, --help         print this help and exit\n"
    "  --json             print the results as JSON instead of a table\n"
    "  -k, --k list       comma-separated neighbour counts "
    "(default 10,20,100,200)\n"
    "  --montage png      draw queries beside their nearest "
    "neighbours\n"
    "  --query-list file  the queries' image paths, a line per row "
    "(--montage)\n"
    "  -r, --root dir     relative paths of both lists are under dir "
    "(default: each\n"
    "                     list's directory)\n"
    "  -t, --temperature temp  vote weight exp(sim/temp) "
    "(default 0.07)\n"
    "  -V, --version      print the version and exit\n"
    "  -v, --verbose      show progress on stderr\n";

enum {
	OPT_JSON = 256, OPT_CHUNK_B, OPT_CHUNK_Q, OPT_MONTAGE, OPT_BANK_LIST,
	OPT_QUERY_LIST
};

static void
show(void *ctx, size_t done)
{
	Progress *p = ctx;

	progress_show(p, done, 0, NULL);
}

/* The paths of list file name (relative ones under root, or else under
 * the list's directory), which must have n of them. */
static void
paths_read(List *l, const char *name, const char *root, size_t n,
    const char *feat)
{
	char msg[1024];

	memset(l, 0, sizeof *l);
	if (list_read_file(l, name, root, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (l->n != n)
		errx(RL_EXIT_FAIL, "%s: %zu paths for the %zu rows of %s", name,
		    l->n, n, feat);
}

/*
 * A MONT_TILE square of the image at path: the shorter side resized to
 * the tile (PIL bilinear), the centre cut out. NULL (and a warning) if the
 * image cannot be read.
 */
static uint8_t *
tile_make(const char *path)
{
	Image im;
	int ow, oh, T = MONT_TILE;
	char err[1024];
	uint8_t *t;

	if (img_load(&im, path, T, NULL, NULL, err, sizeof err)) {
		warnx("%s: %s", path, err);
		return NULL;
	}
	img_short_side_size(im.w, im.h, T, &ow, &oh);
	t = emalloc((size_t)T * T * 3);
	img_resample(t, (ow - T) / 2, (oh - T) / 2, T, T, ow, oh, im.data,
	    im.w, im.h, 3);
	img_free(&im);
	return t;
}

/* Draw a MONT_FRAME-pixel frame of colour rgb inside tile t. */
static void
tile_frame(uint8_t *t, const uint8_t rgb[3])
{
	for (int y = 0; y < MONT_TILE; y++)
		for (int x = 0; x < MONT_TILE; x++) {
			int d = RL_MIN(RL_MIN(x, y), RL_MIN(MONT_TILE - 1 - x,
			    MONT_TILE - 1 - y));
			if (d < MONT_FRAME)
				memcpy(t + ((size_t)y * MONT_TILE + x) * 3, rgb, 3);
		}
}

/*
 * Write the montage: MONT_ROWS queries spread evenly over the query set,
 * each followed by its nearest neighbours, framed green when a
 * neighbour's label is the query's and red otherwise. Returns 0, or 1
 * when an image could not be read or the PNG not written.
 */
static int
montage(const char *png, const List *bl, const List *ql, const FData *bank,
    const FData *query, const int64_t *idx, int kmax, const char *argv0)
{
	static const uint8_t good[3] = {0, 190, 0}, bad[3] = {220, 0, 0};
	int rows = RL_MIN(MONT_ROWS, query->n), cols = 1 + RL_MIN(MONT_NEIGH,
	    kmax), n = rows * cols, ret = 0;
	uint8_t **tile = ecalloc(n, sizeof *tile);
	char err[1024];

	if (img_start(argv0, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
	for (int r = 0; r < rows; r++) {
		size_t q = (size_t)r * query->n / rows;
		tile[r * cols] = tile_make(ql->item[q].path);
		for (int j = 1; j < cols; j++) {
			int64_t b = idx[q * kmax + j - 1];
			uint8_t *t = tile_make(bl->item[b].path);
			if (t)
				tile_frame(t, bank->y[b] == query->y[q] ? good : bad);
			tile[r * cols + j] = t;
		}
	}
	for (int i = 0; i < n; i++)
		ret |= !tile[i];
	if (img_montage_png(png, (const uint8_t *const *)tile, n, MONT_TILE,
	    MONT_TILE, cols, MONT_PAD, 255, err, sizeof err)) {
		warnx("%s", err);
		ret = 1;
	}
	for (int i = 0; i < n; i++)
		free(tile[i]);
	free(tile);
	img_stop();
	return ret;
}

static void
load(FData *d, const char *feat, const char *labels)
{
	char err[512];

	if (fdata_load(d, feat, labels, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
}

static const struct option longopts[] = {
	{"chunk-bank", required_argument, NULL, OPT_CHUNK_B},
	{"chunk-queries", required_argument, NULL, OPT_CHUNK_Q},
	{"bank-list", required_argument, NULL, OPT_BANK_LIST},
	{"help", no_argument, NULL, 'h'},
	{"json", no_argument, NULL, OPT_JSON},
	{"k", required_argument, NULL, 'k'},
	{"montage", required_argument, NULL, OPT_MONTAGE},
	{"query-list", required_argument, NULL, OPT_QUERY_LIST},
	{"root", required_argument, NULL, 'r'},
	{"temperature", required_argument, NULL, 't'},
	{"verbose", no_argument, NULL, 'v'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

int
main(int argc, char *argv[])
{
	int k[MAXK] = {10, 20, 100, 200}, nk = 4, kmax = 0, ch, verbose = 0;
	int json = 0, nclass, ret;
	const char *png = NULL, *blist = NULL, *qlist = NULL, *root = NULL;
	const char *argv0 = argv[0];
	List bl = {0}, ql = {0};
	size_t chunk_q = 0, chunk_b = 0, top1[MAXK], top5[MAXK];
	double temp = KNN_T, t0;
	FData bank, query;
	Progress prog;
	char err[512];
	float *sim;
	int64_t *idx;

	blas_init(argv);
	while ((ch = getopt_long(argc, argv, "hk:r:t:Vv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			rl_help(usage_line, options_text);
		case 'k':
			nk = estrtonum_list(optarg, k, MAXK, 1, 1 << 20, "-k");
			break;
		case 'r':
			root = optarg;
			break;
		case 't':
			temp = estrtod(optarg, 1e-6, 1e6, "temperature");
			break;
		case 'V':
			rl_print_version();
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_CHUNK_B:
			chunk_b = estrtonum(optarg, 1, 1 << 24, "--chunk-bank");
			break;
		case OPT_CHUNK_Q:
			chunk_q = estrtonum(optarg, 1, 1 << 24, "--chunk-queries");
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_MONTAGE:
			png = optarg;
			break;
		case OPT_BANK_LIST:
			blist = optarg;
			break;
		case OPT_QUERY_LIST:
			qlist = optarg;
			break;
		default:
			rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4)
		rl_usage(usage_line);
	if (!png != !blist || !png != !qlist)
		errx(RL_EXIT_USAGE, "--montage, --bank-list and --query-list go "
		    "together");
	if (root && !png)
		errx(RL_EXIT_USAGE, "-r is for the montage's lists; give "
		    "--montage too");
	for (int i = 0; i < nk; i++)
		kmax = RL_MAX(kmax, k[i]);

	load(&bank, argv[0], argv[1]);
	load(&query, argv[2], argv[3]);
	if (fdata_same_dim(&bank, &query, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
	if ((size_t)kmax > bank.n)
		errx(RL_EXIT_FAIL, "%s: k = %d exceeds the bank's %zu rows",
		    argv[0], kmax, bank.n);
	nclass = RL_MAX(bank.nclass, query.nclass);
	if (png) {  // before the long part, to fail early
		paths_read(&bl, blist, root, bank.n, argv[0]);
		paths_read(&ql, qlist, root, query.n, argv[2]);
	}

	t0 = now_seconds();
	knn_normalize(bank.x, bank.n, bank.dim);
	knn_normalize(query.x, query.n, query.dim);
	sim = emalloc(query.n * kmax * sizeof *sim);
	idx = emalloc(query.n * kmax * sizeof *idx);
	progress_init(&prog, "queries", verbose);
	knn_search(sim, idx, query.x, query.n, bank.x, bank.n, bank.dim, kmax,
	    chunk_q, chunk_b, show, &prog);
	progress_end(&prog, query.n, query.n, NULL);
	for (int i = 0; i < nk; i++)
		knn_hits(&top1[i], &top5[i], sim, idx, kmax, query.n, k[i],
		    bank.y, query.y, nclass, temp);
	if (verbose)
		fprintf(stderr, "%s: %zu queries x %zu bank rows in %.1f s\n",
		    rl_progname(), query.n, bank.n, now_seconds() - t0);

	if (json) {
		json_t *res = json_array(), *o;
		for (int i = 0; i < nk; i++)
			json_array_append_new(res, json_pack("{s:i, s:f, s:f, "
			    "s:I, s:I}", "k", k[i],
			    "top1", 100.0 * top1[i] / query.n,
			    "top5", 100.0 * top5[i] / query.n,
			    "top1_hits", (json_int_t)top1[i],
			    "top5_hits", (json_int_t)top5[i]));
		o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:f, s:o}",
		    "bank", argv[0], "queries", argv[2],
		    "bank_rows", (json_int_t)bank.n,
		    "query_rows", (json_int_t)query.n,
		    "dim", (json_int_t)bank.dim, "classes", nclass,
		    "temperature", temp, "results", res);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
		putchar('\n');
		json_decref(o);
	} else {
		printf("# %zu queries, %zu bank rows, dim %zu, %d classes, "
		    "T %g\n", query.n, bank.n, bank.dim, nclass, temp);
		printf("%6s %7s %7s\n", "k", "top1", "top5");
		for (int i = 0; i < nk; i++)
			printf("%6d %7.2f %7.2f\n", k[i],
			    100.0 * top1[i] / query.n, 100.0 * top5[i] / query.n);
	}
	ret = fshut(stdout, "<stdout>");
	if (png) {
		ret |= montage(png, &bl, &ql, &bank, &query, idx, kmax, argv0);
		list_free(&bl);
		list_free(&ql);
	}
	free(sim);
	free(idx);
	fdata_free(&bank);
	fdata_free(&query);
	return ret;
}

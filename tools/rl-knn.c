/*
 * rl-knn: the weighted kNN benchmark (DINO, MMSelfSup 0.x test_knn.py) on
 * precomputed features: top-1 and top-5 accuracy of the queries for each
 * k, voting with the bank's labels.
 */
#include <err.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fdata.h"
#include "common/knn.h"
#include "common/util.h"

#define MAXK 32

static const char usage_line[] =
    "usage: rl-knn [-hVv] [--json] [--chunk-bank n] [--chunk-queries n] "
    "[-k list] [-t temp]\n"
    "              bank-feat bank-labels query-feat query-labels\n";

enum { OPT_JSON = 256, OPT_CHUNK_B, OPT_CHUNK_Q };

static void
usage(FILE *fp)
{
	fputs(usage_line, fp);
}

static void
help(void)
{
	usage(stdout);
	fputs("  bank-feat, query-feat    (N, D) float .npy features\n"
	    "  bank-labels, query-labels  (N,) integer .npy class labels\n"
	    "  --chunk-bank n     bank rows per similarity block (default 4096)\n"
	    "  --chunk-queries n  query rows per similarity block "
	    "(default 1024)\n"
	    "  -h, --help         print this help and exit\n"
	    "  --json             print the results as JSON instead of a table\n"
	    "  -k, --k list       comma-separated neighbour counts "
	    "(default 10,20,100,200)\n"
	    "  -t, --temperature temp  vote weight exp(sim/temp) "
	    "(default 0.07)\n"
	    "  -V, --version      print the version and exit\n"
	    "  -v, --verbose      show progress on stderr\n", stdout);
	exit(0);
}

/* Parse "10,20,100" into k[], returning the count; exit 2 if malformed. */
static int
k_list(const char *arg, int *k)
{
	char *s = estrdup(arg), *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",",
	    &save)) {
		if (n == MAXK)
			errx(RL_EXIT_USAGE, "-k: more than %d values", MAXK);
		k[n++] = estrtonum(tok, 1, 1 << 20, "-k value");
	}
	if (n == 0)
		errx(RL_EXIT_USAGE, "-k '%s': want a list such as 10,20", arg);
	free(s);
	return n;
}

static void
show(void *ctx, size_t done)
{
	Progress *p = ctx;

	progress_show(p, done, 0, NULL);
}

static void
load(FData *d, const char *feat, const char *labels)
{
	char err[512];

	if (fdata_load(d, feat, labels, err, sizeof err))
		errx(RL_EXIT_FAIL, "%s", err);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"chunk-bank", required_argument, NULL, OPT_CHUNK_B},
		{"chunk-queries", required_argument, NULL, OPT_CHUNK_Q},
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"k", required_argument, NULL, 'k'},
		{"temperature", required_argument, NULL, 't'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int k[MAXK] = {10, 20, 100, 200}, nk = 4, kmax = 0, ch, verbose = 0;
	int json = 0, nclass;
	size_t chunk_q = 0, chunk_b = 0, top1[MAXK], top5[MAXK];
	double temp = KNN_T, t0;
	FData bank, query;
	Progress prog;
	char err[512];
	float *sim;
	int64_t *idx;

	while ((ch = getopt_long(argc, argv, "hk:t:Vv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			help();
			break;
		case 'k':
			nk = k_list(optarg, k);
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
		default:
			usage(stderr);
			return RL_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4) {
		usage(stderr);
		return RL_EXIT_USAGE;
	}
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
	free(sim);
	free(idx);
	fdata_free(&bank);
	fdata_free(&query);
	return fshut(stdout, "<stdout>");
}

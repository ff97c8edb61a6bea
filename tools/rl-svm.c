/*
 * rl-svm: MMSelfSup's VOC07 linear-SVM benchmark (per-class cost by
 * 3-fold cross-validation, test AP) and its low-shot variant, on .npy
 * features and labels. The protocols live in common/svmproto; this file
 * parses options, reads the arrays and prints the tables.
 */
#include <err.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/blas.h"
#include "common/npy.h"
#include "common/svmproto.h"
#include "common/util.h"

static const char usage_line[] =
    "usage: rl-svm [-hVv] [--lowshot] [-c costs] [-j threads] [-k shots]\n"
    "              [-n samples] [-s seed] [--json file] [--samples dir]\n"
    "              [--solver name] train-x train-y test-x test-y\n";

static const char options_text[] =
    "  -c costs       base costs, comma-separated; 0.5^4 .. 0.5^19 are "
    "appended\n"
    "                 (default 1,10,100: MMSelfSup's 19 costs)\n"
    "  -h, --help     print this help and exit\n"
    "  -j threads     fits in parallel (default 2)\n"
    "  -k shots       low-shot k values (default 1,2,4,8,16,32,64,96)\n"
    "  -n samples     low-shot samples per k (default 5)\n"
    "  -s seed        seed of the permutations and the low-shot samples "
    "(0)\n"
    "  -V, --version  print the version and exit\n"
    "  -v             progress on stderr\n"
    "  --json file    also write the results as JSON to file\n"
    "  --lowshot      the low-shot protocol instead of the full one\n"
    "  --samples dir  low-shot samples from "
    "dir/train_targets_sample{s}_k{k}.npy\n"
    "  --solver name  auto, gram (kernel form) or dense (liblinear's "
    "form)\n";

static void
on_progress(void *arg, size_t done, size_t total)
{
	progress_show(arg, done, total, NULL);
}

static void
read_npy(const char *path, Npy *a)
{
	char err[1024];

	if (npy_read(path, a, err, sizeof err) == -1)
		errx(RL_EXIT_FAIL, "%s", err);
}

// MMSelfSup's sample files dir/train_targets_sample{s}_k{k}.npy.
static int **
load_samples(const char *dir, const SvmpLowshot *L, const SvmpData *d)
{
	size_t ns = (size_t)L->nsample * (size_t)L->nk;
	int **lab = emalloc(ns * sizeof *lab);

	for (int s = 0; s < L->nsample; s++)
		for (int kk = 0; kk < L->nk; kk++) {
			char path[4096], err[1024];
			int *l = emalloc(d->n * d->ncls * sizeof *l);
			Npy a;

			snprintf(path, sizeof path,
			    "%s/train_targets_sample%d_k%d.npy", dir, s + 1,
			    L->k[kk]);
			read_npy(path, &a);
			if (svmp_sample_load(l, &a, d, path, err,
			    sizeof err) == -1)
				errx(RL_EXIT_FAIL, "%s", err);
			npy_free(&a);
			lab[s * L->nk + kk] = l;
		}
	return lab;
}

static json_t *
jnum(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

// The cost list.
static json_t *
jcosts(const SvmpOpt *o)
{
	json_t *a = json_array();

	for (int j = 0; j < o->ncost; j++)
		json_array_append_new(a, json_real(o->cost[j]));
	return a;
}

// A rows x cols table of fractions as nested arrays of percentages.
static json_t *
jtable(const double *v, size_t rows, size_t cols)
{
	json_t *t = json_array();

	for (size_t i = 0; i < rows; i++) {
		json_t *row = json_array();

		for (size_t j = 0; j < cols; j++)
			json_array_append_new(row, jnum(100 * v[i * cols + j]));
		json_array_append_new(t, row);
	}
	return t;
}

static void
write_json(json_t *j, const char *path)
{
	if (json_dump_file(j, path, JSON_INDENT(1) | JSON_REAL_PRECISION(10))
	    == -1)
		errx(RL_EXIT_FAIL, "%s: cannot write JSON", path);
	json_decref(j);
}

static const char *
status_text(int status)
{
	return status == SVMP_NO_TEST_POS ? "no positive test row, AP "
	    "undefined" : "no positive or no negative training row";
}

static int
report_full(const SvmpResult *r, const SvmpOpt *o, const char *jpath)
{
	json_t *jap = json_array(), *jcost = json_array();
	json_t *jcv = jtable(r->cv, r->ncls, (size_t)r->ncost);
	size_t nok = 0;
	int rc = 0;

	printf("%5s  %-14s %7s %7s\n", "class", "cost", "cv-AP", "AP");
	for (size_t c = 0; c < r->ncls; c++) {
		json_array_append_new(jap, jnum(100 * r->ap[c]));
		json_array_append_new(jcost, jnum(r->cost[c]));
		if (r->status[c] != SVMP_OK) {
			warnx("class %zu: %s: skipped", c,
			    status_text(r->status[c]));
			printf("%5zu  %-14s %7s %7s\n", c, "-", "-", "-");
			rc = RL_EXIT_FAIL;
			continue;
		}
		nok++;
		printf("%5zu  %-14.9g %7.2f %7.2f\n", c, r->cost[c],
		    100 * r->cv[c * (size_t)r->ncost + (size_t)r->best[c]],
		    100 * r->ap[c]);
	}
	if (nok)
		printf("mAP    %.2f  (%zu of %zu classes)\n", 100 * r->map,
		    nok, r->ncls);
	else
		printf("mAP    -  (no class could be scored)\n");
	printf("fits   %zu, %zu stopped at %d iterations\n", r->nfit,
	    r->nmaxiter, o->max_iter);
	if (jpath)
		write_json(json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:i, s:i}",
		    "protocol", "voc07-svm", "costs", jcosts(o),
		    "map", jnum(100 * r->map),
		    "ap", jap, "cost", jcost, "cv_ap", jcv,
		    "fits", (json_int_t)r->nfit,
		    "fits_at_max_iter", (json_int_t)r->nmaxiter), jpath);
	else {
		json_decref(jap);
		json_decref(jcost);
		json_decref(jcv);
	}
	return rc;
}

static json_t *
jstat(int k, double cost, const double *st)
{
	return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "k", k,
	    "cost", jnum(cost), "mean", jnum(100 * st[0]),
	    "min", jnum(100 * st[1]), "max", jnum(100 * st[2]),
	    "std", jnum(100 * st[3]));
}

static int
report_lowshot(const SvmpLowshot *L, const SvmpOpt *o, const SvmpData *d,
    const char *jpath)
{
	json_t *jt = json_array(), *jc = json_array(), *jm = json_array();
	size_t nc = (size_t)o->ncost, ns = (size_t)L->nsample;
	int rc = 0;

	for (size_t c = 0; c < d->ncls; c++)
		if (L->status[c] != SVMP_OK) {
			warnx("class %zu: %s: left out of every mAP", c,
			    status_text(L->status[c]));
			rc = RL_EXIT_FAIL;
		}
	for (int kk = 0; kk < L->nk; kk++)
		for (size_t c = 0; c < d->ncls; c++)
			if (L->status[c] == SVMP_OK &&
			    L->npos_short[(size_t)kk * d->ncls + c] >= 0)
				warnx("k = %d, class %zu: only %d positives: "
				    "all of them used", L->k[kk], c,
				    L->npos_short[(size_t)kk * d->ncls + c]);
	printf("%4s  %-45s  %s\n", "", "test-selected (optimistic, as "
	    "MMSelfSup)", "CV-selected (per class)");
	printf("%4s  %-13s %7s %7s %7s %7s  %7s %7s %7s %7s\n", "k", "cost",
	    "mean", "min", "max", "std", "mean", "min", "max", "std");
	for (int kk = 0; kk < L->nk; kk++) {
		const double *t = L->test_stat + kk * 4, *c = L->cv_stat +
		    kk * 4;
		double cost = o->cost[L->test_cost[kk]];

		printf("%4d  %-13.9g %7.2f %7.2f %7.2f %7.2f  %7.2f %7.2f "
		    "%7.2f %7.2f\n", L->k[kk], cost, 100 * t[0], 100 * t[1],
		    100 * t[2], 100 * t[3], 100 * c[0], 100 * c[1],
		    100 * c[2], 100 * c[3]);
		json_array_append_new(jt, jstat(L->k[kk], cost, t));
		json_array_append_new(jm, jtable(L->map + (size_t)kk * ns * nc,
		    ns, nc));
		json_array_append_new(jc, jstat(L->k[kk], NAN, c));
		if (isnan(t[0]))
			rc = RL_EXIT_FAIL;
	}
	printf("fits  %zu, %zu stopped at %d iterations\n", L->nfit,
	    L->nmaxiter, o->max_iter);
	if (jpath)
		write_json(json_pack("{s:s, s:o, s:i, s:o, s:o, s:o}",
		    "protocol", "voc07-lowshot-svm", "costs", jcosts(o),
		    "samples", L->nsample,
		    "test_selected", jt, "cv_selected", jc, "map", jm), jpath);
	else {
		json_decref(jt);
		json_decref(jc);
		json_decref(jm);
	}
	return rc;
}

int
main(int argc, char *argv[])
{
	enum { OPT_JSON = 256, OPT_LOWSHOT, OPT_SAMPLES, OPT_SOLVER };
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"json", required_argument, NULL, OPT_JSON},
		{"lowshot", no_argument, NULL, OPT_LOWSHOT},
		{"samples", required_argument, NULL, OPT_SAMPLES},
		{"solver", required_argument, NULL, OPT_SOLVER},
		{NULL, 0, NULL, 0}
	};
	const char *jpath = NULL, *sdir = NULL;
	int ch, lowshot = 0, verbose = 0, kset = 0, nset = 0, rc;
	char err[1024];
	SvmpOpt o;
	SvmpLowshot L = {.nk = 8, .nsample = 5,
	    .k = {1, 2, 4, 8, 16, 32, 64, 96}};
	SvmpData d;
	Npy a[4];
	Progress pr;
	double t0;

	blas_init(argv);
	svmp_opt_init(&o);
	while ((ch = getopt_long(argc, argv, "c:hj:k:n:s:Vv", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (svmp_parse_costs(&o, optarg, err, sizeof err))
				errx(RL_EXIT_USAGE, "-c: %s", err);
			break;
		case 'h':
			rl_help(usage_line, options_text);
		case 'j':
			o.threads = (int)estrtonum(optarg, 1, 1024, "-j");
			break;
		case 'k':
			L.nk = estrtonum_list(optarg, L.k, SVMP_MAXK, 1,
			    1000000, "-k");
			kset = 1;
			break;
		case 'n':
			L.nsample = (int)estrtonum(optarg, 1, 1000, "-n");
			nset = 1;
			break;
		case 's':
			o.seed = (uint64_t)estrtonum(optarg, 0, INT64_MAX,
			    "-s");
			break;
		case 'V':
			rl_print_version();
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_JSON:
			jpath = optarg;
			break;
		case OPT_LOWSHOT:
			lowshot = 1;
			break;
		case OPT_SAMPLES:
			sdir = optarg;
			break;
		case OPT_SOLVER:
			if (!strcmp(optarg, "auto"))
				o.solver = SVMP_AUTO;
			else if (!strcmp(optarg, "gram"))
				o.solver = SVMP_GRAM;
			else if (!strcmp(optarg, "dense"))
				o.solver = SVMP_DENSE;
			else
				errx(RL_EXIT_USAGE, "--solver: '%s' is not "
				    "auto, gram or dense", optarg);
			break;
		default:
			rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4)
		rl_usage(usage_line);
	if ((sdir || kset || nset) && !lowshot)
		errx(RL_EXIT_USAGE, "%s needs --lowshot", sdir ? "--samples" :
		    kset ? "-k" : "-n");

	for (int i = 0; i < 4; i++)
		read_npy(argv[i], &a[i]);
	if (svmp_data_load(&d, &a[0], &a[1], &a[2], &a[3],
	    (const char *const *)argv, err, sizeof err) == -1)
		errx(RL_EXIT_FAIL, "%s", err);
	for (int i = 0; i < 4; i++)
		npy_free(&a[i]);

	progress_init(&pr, "fits", verbose);
	o.progress = on_progress;
	o.progress_arg = &pr;
	t0 = now_seconds();
	printf("# rl-svm %s: %zu classes, train %zu x %zu, test %zu, "
	    "%d costs, seed %llu\n", lowshot ? "low-shot" : "VOC07 SVM",
	    d.ncls, d.n, d.d, d.m, o.ncost, (unsigned long long)o.seed);
	if (!lowshot) {
		SvmpResult r;

		if (svmp_full(&r, &d, &o, err, sizeof err) == -1)
			errx(RL_EXIT_FAIL, "%s", err);
		progress_end(&pr, r.nfit, r.nfit, NULL);
		rc = report_full(&r, &o, jpath);
		svmp_result_free(&r);
	} else {
		int **lab = sdir ? load_samples(sdir, &L, &d) : NULL;

		if (svmp_lowshot(&L, &d, &o, (const int *const *)lab, err,
		    sizeof err) == -1)
			errx(RL_EXIT_FAIL, "%s", err);
		progress_end(&pr, L.nfit, L.nfit, NULL);
		rc = report_lowshot(&L, &o, &d, jpath);
		for (int i = 0; lab && i < L.nsample * L.nk; i++)
			free(lab[i]);
		free(lab);
		svmp_lowshot_free(&L);
	}
	if (verbose)
		fprintf(stderr, "rl-svm: %.1f s\n", now_seconds() - t0);
	svmp_data_free(&d);
	return rc | fshut(stdout, "<stdout>");
}

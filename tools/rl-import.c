/*
 * rl-import: turn a packaged data set into image files and `path label`
 * list files (list.h), the form every rl-* tool reads.
 *
 * One subcommand per data set; each knows where its files live and which
 * splits it has. Today: fashion-mnist (the IDX files of Debian's
 * dataset-fashion-mnist). A new data set is a new entry in `sets`.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/idx.h"
#include "common/img.h"
#include "common/util.h"

static const char usage_line[] =
    "usage: rl-import [-hVv] [-d dir] [-n count] dataset outdir\n";

static const char options_text[] =
    "  -h          this help\n"
    "  -V          print the version\n"
    "  -v          progress on stderr\n"
    "  -d dir      read the data set from dir instead of its default\n"
    "  -n count    import at most count images per split\n"
    "data sets:\n";

typedef struct {
	const char *name, *dflt_dir, *about;
	int (*run)(const char *dir, const char *out, long limit, int verbose);
} DataSet;

static int import_fashion_mnist(const char *, const char *, long, int);

static const DataSet sets[] = {
	{ "fashion-mnist", "/usr/share/datasets/fashion-mnist",
	    "Zalando's Fashion-MNIST, 28x28 grey, 10 classes "
	    "(train 60000, test 10000)", import_fashion_mnist },
};

/* -h: the options, then the data sets (rl_help ends with the options). */
static void
help(void)
{
	fputs(usage_line, stdout);
	fputs(options_text, stdout);
	for (size_t i = 0; i < RL_NELEM(sets); i++)
		printf("  %-13s %s\n  %-13s from %s\n", sets[i].name,
		    sets[i].about, "", sets[i].dflt_dir);
	exit(fshut(stdout, "<stdout>"));
}

static void
mkdir_or_die(const char *path)
{
	if (mkdir(path, 0777) < 0 && errno != EEXIST)
		err(RL_EXIT_FAIL, "%s", path);
}

// ----------------------------------------------------------------------------
// Fashion-MNIST

static const char *fashion_classes[10] = { "T-shirt/top", "Trouser",
    "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot" };

/* One split: images and labels IDX files -> out/split/NNNNN.png and
 * out/split.txt. Returns the number of images written. */
static size_t
fashion_split(const char *dir, const char *prefix, const char *out,
    const char *split, long limit, int verbose)
{
	char path[4096], msg[4400];
	Idx im, lab;
	size_t n, bad = 0;
	RlAtomic a;
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
	if (idx_read(&im, path, 3, msg, sizeof msg) < 0)
		errx(RL_EXIT_FAIL, "%s", msg);
	snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
	if (idx_read(&lab, path, 1, msg, sizeof msg) < 0)
		errx(RL_EXIT_FAIL, "%s", msg);
	if (lab.dim[0] != im.dim[0])
		errx(RL_EXIT_FAIL, "%s: %u labels for %u images", path,
		    lab.dim[0], im.dim[0]);
	for (size_t i = 0; i < lab.n; i++)
		if (lab.data[i] > 9)
			errx(RL_EXIT_FAIL, "%s: label %u of image %zu is not "
			    "0..9", path, lab.data[i], i);
	n = im.dim[0];
	if (limit >= 0 && (size_t)limit < n)
		n = limit;

	int w = im.dim[2], h = im.dim[1];
	snprintf(path, sizeof path, "%s/%s", out, split);
	mkdir_or_die(path);
	Progress prog;
	progress_init(&prog, split, verbose);
	/* The first write error stops the others (a full disk): one line. */
	char first[1024] = "";
	int failed = 0;
	#pragma omp parallel for schedule(dynamic, 256) reduction(+:bad)
	for (size_t i = 0; i < n; i++) {
		char p[4096], e[1024];
		int f;
		#pragma omp atomic read
		f = failed;
		if (f)
			continue;
		snprintf(p, sizeof p, "%s/%s/%05zu.png", out, split, i);
		if (img_save_png(p, im.data + i * w * h, w, h, 1, e,
		    sizeof e) < 0) {
			#pragma omp critical
			{
				if (!first[0])
					snprintf(first, sizeof first, "%s", e);
				#pragma omp atomic write
				failed = 1;
			}
			bad++;
		}
		if (i % 1024 == 0 && prog.on) {
			#pragma omp critical
			progress_show(&prog, i, n, NULL);
		}
	}
	progress_end(&prog, n, n, NULL);
	if (bad)
		errx(RL_EXIT_FAIL, "%s", first);

	/* The list last, atomically: it exists only when complete. */
	snprintf(path, sizeof path, "%s/%s.txt", out, split);
	if (!(fp = rl_atomic_open(&a, path, msg, sizeof msg)))
		errx(RL_EXIT_FAIL, "%s", msg);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s/%05zu.png %u\n", split, i, lab.data[i]);
	if (rl_atomic_close(&a, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	idx_free(&im);
	idx_free(&lab);
	return n;
}

static int
import_fashion_mnist(const char *dir, const char *out, long limit,
    int verbose)
{
	char path[4096], msg[4400];
	size_t ntrain, ntest;
	RlAtomic a;
	FILE *fp;

	ntrain = fashion_split(dir, "train", out, "train", limit, verbose);
	ntest = fashion_split(dir, "t10k", out, "test", limit, verbose);
	snprintf(path, sizeof path, "%s/classes.txt", out);
	if (!(fp = rl_atomic_open(&a, path, msg, sizeof msg)))
		errx(RL_EXIT_FAIL, "%s", msg);
	for (int i = 0; i < 10; i++)
		fprintf(fp, "%d %s\n", i, fashion_classes[i]);
	if (rl_atomic_close(&a, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
	if (verbose)
		fprintf(stderr, "rl-import: %zu train and %zu test images in "
		    "%s\n", ntrain, ntest, out);
	return 0;
}

// ----------------------------------------------------------------------------

int
main(int argc, char **argv)
{
	static const struct option lopt[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *dir = NULL;
	long limit = -1;
	int verbose = 0, ch, rc;
	char err[1024];

	while ((ch = getopt_long(argc, argv, "hVvd:n:", lopt, NULL)) != -1) {
		switch (ch) {
		case 'h': help(); break;
		case 'V': rl_print_version(); break;
		case 'v': verbose = 1; break;
		case 'd': dir = optarg; break;
		case 'n': limit = estrtonum(optarg, 0, 1L << 40, "-n count"); break;
		default: rl_usage(usage_line);
		}
	}
	if (argc - optind != 2)
		rl_usage(usage_line);
	const DataSet *ds = NULL;
	for (size_t i = 0; i < RL_NELEM(sets); i++)
		if (!strcmp(argv[optind], sets[i].name))
			ds = &sets[i];
	if (!ds) {
		warnx("unknown data set '%s' (rl-import -h lists them)",
		    argv[optind]);
		rl_usage(usage_line);
	}
	if (img_start(argv[0], err, sizeof err) < 0)
		errx(RL_EXIT_FAIL, "%s", err);
	mkdir_or_die(argv[optind + 1]);
	rc = ds->run(dir ? dir : ds->dflt_dir, argv[optind + 1], limit,
	    verbose);
	img_stop();
	return rc;
}

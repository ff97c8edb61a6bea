/*
 * rl-voc: turn a PASCAL VOC tree into the list files and label matrices
 * the benchmark tools read (rl-extract, rl-svm), as MMSelfSup's
 * prepare_voc07_cls.sh does: for each split, <split>.txt (an image path
 * a line, ids ascending), <split>_labels.npy (N x 20 int32, 1 present,
 * 0 absent, -1 difficult) and, for several splits, their concatenation
 * (trainvaltest.txt).
 */
#define _DEFAULT_SOURCE /* realpath (XSI) */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/npy.h"
#include "common/util.h"
#include "common/voc.h"

#define MAXSPLIT 8

static const char usage_line[] =
    "usage: rl-voc [-hnV] [-o dir] voc-dir [split ...]\n";

static const char options_text[] =
    "  voc-dir        VOC2007 directory (ImageSets/Main, JPEGImages), "
    "or a VOCdevkit holding one\n"
    "  split          ImageSets/Main splits, in output order "
    "(default: trainval test)\n"
    "  -h, --help     print this help and exit\n"
    "  -n, --no-check do not check that every JPEGImages/<id>.jpg "
    "exists\n"
    "  -o, --output dir  write the files into dir (default .)\n"
    "  -V, --version  print the version and exit\n";

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory holding ImageSets/Main: arg itself, or arg/VOC2007. */
static char *
voc_dir(const char *arg)
{
	char *dirs[2] = {estrdup(arg), rl_concat(arg, "/VOC2007", NULL)};
	char *found = NULL, real[PATH_MAX];

	for (int i = 0; i < 2 && !found; i++) {
		char *m = rl_concat(dirs[i], "/ImageSets/Main", NULL);
		if (is_dir(m))
			found = dirs[i];
		free(m);
	}
	if (!found)
		errx(RL_EXIT_FAIL, "%s: no ImageSets/Main here or in "
		    "%s/VOC2007 (want a VOC2007 or VOCdevkit directory)", arg,
		    arg);
	/* absolute paths make the lists usable from any directory */
	if (!realpath(found, real))
		err(RL_EXIT_FAIL, "%s", found);
	free(dirs[0]);
	free(dirs[1]);
	return estrdup(real);
}

/* Exit 1 naming the first missing image, and how many are missing. */
static void
check_images(const char *dir, const VocSplit *s)
{
	size_t missing = 0;
	char *first = NULL;
	int first_errno = 0;

	for (size_t i = 0; i < s->n; i++) {
		char *p = voc_image_path(dir, s->id[i]);
		if (access(p, R_OK) == 0) {
			free(p);
			continue;
		}
		if (missing++ == 0) {
			first = p;
			first_errno = errno;
		} else {
			free(p);
		}
	}
	if (missing)
		errx(RL_EXIT_FAIL, "%s: %s (%zu of %zu images unreadable; -n "
		    "skips this check)", first, strerror(first_errno), missing,
		    s->n);
}

/* Write the image paths of splits s[0..n) to path, atomically. Exits 1. */
static void
list_write(const char *path, const char *dir, const VocSplit *s, int n)
{
	char msg[PATH_MAX + 256];
	RlAtomic a;
	FILE *fp;

	if (!(fp = rl_atomic_open(&a, path, msg, sizeof msg)))
		errx(RL_EXIT_FAIL, "%s", msg);
	for (int k = 0; k < n; k++)
		for (size_t i = 0; i < s[k].n; i++) {
			char *p = voc_image_path(dir, s[k].id[i]);
			fprintf(fp, "%s\n", p);
			free(p);
		}
	if (rl_atomic_close(&a, msg, sizeof msg))
		errx(RL_EXIT_FAIL, "%s", msg);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"no-check", no_argument, NULL, 'n'},
		{"output", required_argument, NULL, 'o'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *outdir = ".", *defsplit[] = {"trainval", "test"};
	const char **split;
	VocSplit s[MAXSPLIT];
	char err[512], *dir, *path, *cat;
	int ch, nsplit, check = 1;

	while ((ch = getopt_long(argc, argv, "hno:V", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			rl_help(usage_line, options_text);
		case 'n':
			check = 0;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'V':
			rl_print_version();
			break;
		default:
			rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc - 1 > MAXSPLIT)
		rl_usage(usage_line);
	split = argc > 1 ? (const char **)argv + 1 : defsplit;
	nsplit = argc > 1 ? argc - 1 : 2;
	for (int k = 0; k < nsplit; k++)
		if (!*split[k] || strchr(split[k], '/'))
			errx(RL_EXIT_USAGE, "split '%s': want a name such as "
			    "trainval", split[k]);
	if (!is_dir(outdir))
		errx(RL_EXIT_FAIL, "%s: not a directory", outdir);
	dir = voc_dir(argv[0]);

	for (int k = 0; k < nsplit; k++) {
		if (voc_split_read(&s[k], dir, split[k], err, sizeof err))
			errx(RL_EXIT_FAIL, "%s", err);
		if (check)
			check_images(dir, &s[k]);
	}
	for (int k = 0; k < nsplit; k++) {
		int64_t shape[2] = {(int64_t)s[k].n, VOC_NCLASS};
		char *base = rl_concat(outdir, "/", split[k], NULL);

		path = rl_concat(base, ".txt", NULL);
		list_write(path, dir, &s[k], 1);
		free(path);
		path = rl_concat(base, "_labels.npy", NULL);
		if (npy_write(path, NPY_I32, 2, shape, s[k].label, err,
		    sizeof err))
			errx(RL_EXIT_FAIL, "%s", err);
		free(path);
		free(base);
	}
	if (nsplit > 1) {
		cat = estrdup("");
		for (int k = 0; k < nsplit; k++) {
			char *c = rl_concat(cat, split[k], NULL);
			free(cat);
			cat = c;
		}
		path = rl_concat(outdir, "/", cat, NULL);
		free(cat);
		cat = rl_concat(path, ".txt", NULL);
		list_write(cat, dir, s, nsplit);
		free(cat);
		free(path);
	}
	for (int k = 0; k < nsplit; k++) {
		printf("%s: %zu images\n", split[k], s[k].n);
		voc_split_free(&s[k]);
	}
	free(dir);
	return fshut(stdout, "<stdout>");
}

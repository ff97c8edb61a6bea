/* voc: VOC ImageSets/Main class files to ids and labels. See voc.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/voc.h"

const char *const voc_class[VOC_NCLASS] = {
	"aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
	"chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
	"pottedplant", "sheep", "sofa", "train", "tvmonitor",
};

/* One parsed line of a class file. */
typedef struct {
	char *id;
	int value;        /* as in the file: 1, -1, 0 */
	size_t line;
} Entry;

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const Entry *)a)->id, ((const Entry *)b)->id);
}

static void
entries_free(Entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].id);
	free(e);
}

/*
 * Parse the class file path into *out (sorted by id), *nout entries.
 * Returns 0, or -1 with "path[:line]: reason" in err.
 */
static int
class_file_read(const char *path, Entry **out, size_t *nout, char *err,
    size_t errlen)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0, lineno = 0, n = 0, ncap = 0;
	Entry *e = NULL;

	if (!(fp = fopen(path, "r"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, fp) >= 0) {
		char *tok[3], *save = NULL, *s = line;
		int ntok = 0;

		lineno++;
		while (ntok < 3 && (tok[ntok] = strtok_r(s, " \t\r\n", &save)))
			ntok++, s = NULL;
		if (ntok == 0)
			continue;   /* a blank line */
		if (ntok != 2) {
			snprintf(err, errlen, "%s:%zu: want `id value`, got %d "
			    "field%s", path, lineno, ntok, ntok == 1 ? "" : "s");
			goto fail;
		}
		if (strcmp(tok[1], "1") && strcmp(tok[1], "0") &&
		    strcmp(tok[1], "-1")) {
			snprintf(err, errlen, "%s:%zu: value '%.20s' is not 1, 0 "
			    "or -1", path, lineno, tok[1]);
			goto fail;
		}
		if (n == ncap) {
			ncap = ncap ? 2 * ncap : 1024;
			e = erealloc(e, ncap * sizeof *e);
		}
		e[n].id = estrdup(tok[0]);
		e[n].value = atoi(tok[1]);
		e[n].line = lineno;
		n++;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no images listed", path);
		goto fail;
	}
	qsort(e, n, sizeof *e, entry_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(e[i - 1].id, e[i].id)) {
			size_t l = RL_MAX(e[i - 1].line, e[i].line);
			snprintf(err, errlen, "%s:%zu: id %.40s listed twice",
			    path, l, e[i].id);
			goto fail;
		}
	free(line);
	fclose(fp);
	*out = e;
	*nout = n;
	return 0;
fail:
	free(line);
	fclose(fp);
	entries_free(e, n);
	return -1;
}

/*
 * Compare the sorted ids of b (from file bpath) with those of a (from
 * apath); on the first difference write a message and return -1.
 */
static int
ids_agree(const Entry *a, size_t na, const char *apath, const Entry *b,
    size_t nb, const char *bpath, char *err, size_t errlen)
{
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].id, b[j].id);
		if (c < 0) {
			snprintf(err, errlen, "%s: lacks id %.40s, which %s "
			    "lists (line %zu)", bpath, a[i].id, apath, a[i].line);
			return -1;
		}
		if (c > 0) {
			snprintf(err, errlen, "%s:%zu: id %.40s is not in %s",
			    bpath, b[j].line, b[j].id, apath);
			return -1;
		}
		i++, j++;
	}
	return 0;
}

static char *
class_path(const char *dir, const char *cls, const char *split)
{
	return rl_concat(dir, "/ImageSets/Main/", cls, "_", split, ".txt",
	    NULL);
}

int
voc_split_read(VocSplit *s, const char *dir, const char *split, char *err,
    size_t errlen)
{
	Entry *first = NULL, *e = NULL;
	size_t nfirst = 0, ne = 0;
	char *fpath = NULL, *path = NULL;

	memset(s, 0, sizeof *s);
	for (int c = 0; c < VOC_NCLASS; c++) {
		path = class_path(dir, voc_class[c], split);
		if (class_file_read(path, &e, &ne, err, errlen))
			goto fail;
		if (c == 0) {
			first = e, nfirst = ne, fpath = path;
			s->n = ne;
			s->id = emalloc(ne * sizeof *s->id);
			s->label = emalloc(ne * VOC_NCLASS * sizeof *s->label);
			for (size_t i = 0; i < ne; i++)
				s->id[i] = estrdup(e[i].id);
			e = NULL, ne = 0, path = NULL;
		} else if (ids_agree(first, nfirst, fpath, e, ne, path, err,
		    errlen)) {
			goto fail;
		}
		/* VOC: 1 present, -1 absent, 0 difficult; SVMLabels: 1, 0, -1 */
		for (size_t i = 0; i < s->n; i++) {
			int v = (c == 0 ? first : e)[i].value;
			s->label[i * VOC_NCLASS + c] = v == 1 ? 1 : v == -1 ? 0 : -1;
		}
		entries_free(e, ne);
		e = NULL, ne = 0;
		free(path);
		path = NULL;
	}
	entries_free(first, nfirst);
	free(fpath);
	return 0;
fail:
	entries_free(e, ne);
	entries_free(first, nfirst);
	free(path);
	free(fpath);
	voc_split_free(s);
	return -1;
}

void
voc_split_free(VocSplit *s)
{
	for (size_t i = 0; s->id && i < s->n; i++)
		free(s->id[i]);
	free(s->id);
	free(s->label);
	memset(s, 0, sizeof *s);
}

char *
voc_image_path(const char *dir, const char *id)
{
	return rl_concat(dir, "/JPEGImages/", id, ".jpg", NULL);
}

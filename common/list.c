/* list: `path [label ...]` list files. See list.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/util.h"

void
list_add(List *l, const char *path, const long *label, int nlabel)
{
	ListItem *it;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->item = erealloc(l->item, l->cap * sizeof *l->item);
	}
	it = &l->item[l->n++];
	it->path = estrdup(path);
	it->nlabel = nlabel;
	it->label = NULL;
	it->line = l->n;
	if (nlabel > 0) {
		it->label = emalloc(nlabel * sizeof *label);
		memcpy(it->label, label, nlabel * sizeof *label);
	}
}

/* Is s[0..n) an optionally signed decimal integer? */
static int
is_int(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+'));

	if (i == n)
		return 0;
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* The first control byte of s (C0 but tab, or DEL), or -1: such a byte
 * has no business in a path and would drive the terminal it is printed to. */
static int
control_byte(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return (unsigned char)*s;
	return -1;
}

int
list_read(List *l, FILE *fp, const char *name, const char *root,
    char *err, size_t errlen)
{
	char *line = NULL, *path = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	long lab[64];
	int ret = 0;

	while ((len = getline(&line, &cap, fp)) >= 0) {
		char *end;
		int nlab = 0, k;

		lineno++;
		if (memchr(line, '\0', len) != NULL) {
			snprintf(err, errlen, "%s:%zu: a NUL byte in the line "
			    "(not a text list)", name, lineno);
			ret = -1;
			break;
		}
		while (len > 0 && isspace((unsigned char)line[len - 1]))
			line[--len] = '\0';
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if ((k = control_byte(s)) >= 0) {
			snprintf(err, errlen, "%s:%zu: control byte 0x%02x in "
			    "the line (not a text list)", name, lineno, k);
			ret = -1;
			break;
		}
		/* Peel integer tokens off the end while a path remains. */
		end = s + strlen(s);
		for (;;) {
			char *tok = end;
			while (tok > s && !isspace((unsigned char)tok[-1]))
				tok--;
			if (tok == s || !is_int(tok, end - tok) ||
			    nlab == (int)RL_NELEM(lab))
				break;
			errno = 0;
			lab[nlab++] = strtol(tok, NULL, 10);
			if (errno == ERANGE) {
				snprintf(err, errlen, "%s:%zu: label %.*s out of "
				    "range", name, lineno, (int)RL_MIN(end - tok,
				    40), tok);
				ret = -1;
				goto out;
			}
			end = tok;
			while (end > s && isspace((unsigned char)end[-1]))
				end--;
		}
		*end = '\0';
		for (k = 0; k < nlab / 2; k++) {  /* peeled in reverse */
			long t = lab[k];
			lab[k] = lab[nlab - 1 - k];
			lab[nlab - 1 - k] = t;
		}
		if (root && *root && s[0] != '/') {
			size_t n = strlen(root) + strlen(s) + 2;
			path = erealloc(path, n);
			snprintf(path, n, "%s/%s", root, s);
			list_add(l, path, lab, nlab);
		} else {
			list_add(l, s, lab, nlab);
		}
		l->item[l->n - 1].line = lineno;
	}
	if (ret == 0 && ferror(fp)) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		ret = -1;
	}
out:
	free(line);
	free(path);
	return ret;
}

/* The directory part of path ("." for none), malloc'd. */
static char *
dir_of(const char *path)
{
	const char *sl = strrchr(path, '/');
	char *d;

	if (sl == NULL)
		return estrdup(".");
	if (sl == path)
		return estrdup("/");
	d = estrdup(path);
	d[sl - path] = '\0';
	return d;
}

int
list_read_file(List *l, const char *name, const char *root, char *err,
    size_t errlen)
{
	int in = name == NULL || strcmp(name, "-") == 0;
	FILE *fp = in ? stdin : fopen(name, "r");
	char *dir = NULL;
	int rc;

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return -1;
	}
	if (root == NULL && !in)
		root = dir = dir_of(name);
	if (root != NULL && strcmp(root, ".") == 0)
		root = NULL;
	rc = list_read(l, fp, in ? "<stdin>" : name, root, err, errlen);
	if (!in)
		fclose(fp);
	free(dir);
	return rc;
}

void
list_free(List *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->item[i].path);
		free(l->item[i].label);
	}
	free(l->item);
	memset(l, 0, sizeof *l);
}

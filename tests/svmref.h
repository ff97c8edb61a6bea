/*
 * svmref.h: reads tests/ref/svm_ref.txt, the scikit-learn reference values
 * that tests/ref/gen_svm_ref.py writes (its docstring gives the format),
 * for t_svm, t_svmproto and t_metric. Header-only: static functions.
 */
#ifndef RL_TESTS_SVMREF_H
#define RL_TESTS_SVMREF_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVMREF_PATH "tests/ref/svm_ref.txt"

typedef struct {
	char kind[16], name[64];
	size_t n, d, m;
	double C;
	double *x;     /* svm: (n + m) x d */
	int *y;        /* svm: n labels; folds: n labels; ap: n labels */
	double *dec;   /* svm: n + m decision values; ap: n scores */
	int *fold;     /* folds: n fold numbers */
	double value;  /* svm: primal objective; ap: the AP */
} SvmRef;

static void
svmref_free(SvmRef *r)
{
	free(r->x);
	free(r->y);
	free(r->dec);
	free(r->fold);
	memset(r, 0, sizeof *r);
}

static int
svmref_doubles(FILE *fp, double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fscanf(fp, "%lf", &v[i]) != 1)
			return -1;
	return 0;
}

static int
svmref_ints(FILE *fp, int *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fscanf(fp, "%d", &v[i]) != 1)
			return -1;
	return 0;
}

/*
 * The next record of fp (comment lines skipped) into r: returns 1, 0 at
 * the end, -1 on a malformed file.
 */
static int
svmref_next(FILE *fp, SvmRef *r)
{
	int c;

	memset(r, 0, sizeof *r);
	while ((c = getc(fp)) == '#' || c == '\n')
		if (c == '#')
			while ((c = getc(fp)) != EOF && c != '\n')
				;
	if (c == EOF)
		return 0;
	ungetc(c, fp);
	if (fscanf(fp, "%15s %63s %zu", r->kind, r->name, &r->n) != 3)
		return -1;
	if (!strcmp(r->kind, "svm")) {
		if (fscanf(fp, "%zu %zu %lf", &r->d, &r->m, &r->C) != 3)
			return -1;
		r->x = calloc((r->n + r->m) * r->d, sizeof *r->x);
		r->y = calloc(r->n, sizeof *r->y);
		r->dec = calloc(r->n + r->m, sizeof *r->dec);
		for (size_t i = 0; i < r->n + r->m; i++) {
			if (svmref_doubles(fp, r->x + i * r->d, r->d))
				return -1;
			if (i < r->n && svmref_ints(fp, r->y + i, 1))
				return -1;
		}
		if (svmref_doubles(fp, r->dec, r->n + r->m) ||
		    svmref_doubles(fp, &r->value, 1))
			return -1;
	} else if (!strcmp(r->kind, "folds")) {
		r->y = calloc(r->n, sizeof *r->y);
		r->fold = calloc(r->n, sizeof *r->fold);
		if (svmref_ints(fp, r->y, r->n) ||
		    svmref_ints(fp, r->fold, r->n))
			return -1;
	} else if (!strcmp(r->kind, "ap")) {
		r->dec = calloc(r->n, sizeof *r->dec);
		r->y = calloc(r->n, sizeof *r->y);
		if (svmref_doubles(fp, r->dec, r->n) ||
		    svmref_ints(fp, r->y, r->n) ||
		    svmref_doubles(fp, &r->value, 1))
			return -1;
	} else
		return -1;
	return 1;
}

/*
 * SVMREF_EACH(r, "kind") stmt: runs stmt for each record of that kind in
 * the reference file, r holding it; stmt must svmref_free(&r). Runs it
 * no times when the file is missing, which the callers' case counts catch.
 */
#define SVMREF_EACH(r, k) \
	for (FILE *svmref_fp_ = fopen(SVMREF_PATH, "r"); svmref_fp_; \
	    fclose(svmref_fp_), svmref_fp_ = NULL) \
		while (svmref_next(svmref_fp_, &(r)) == 1) \
			if (strcmp((r).kind, (k))) \
				svmref_free(&(r)); \
			else

#endif

/* fdata: features and labels from .npy, checked. See fdata.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fdata.h"
#include "common/npy.h"
#include "common/util.h"

static const char *const type_name[] = {
	[NPY_U8] = "uint8", [NPY_I32] = "int32", [NPY_I64] = "int64",
	[NPY_F32] = "float32", [NPY_F64] = "float64",
};

/* Take the features out of a (freed here) into d. */
static int
features_take(FData *d, Npy *a, const char *path, char *err, size_t errlen)
{
	size_t dim = 1;

	if (a->type != NPY_F32 && a->type != NPY_F64) {
		snprintf(err, errlen, "%s: %s features; want float32 or float64",
		    path, type_name[a->type]);
		return -1;
	}
	if (a->ndim < 2 || a->shape[0] == 0) {
		snprintf(err, errlen, "%s: want an (N, D) feature array with "
		    "N > 0, got %d-D with %lld rows", path, a->ndim,
		    a->ndim ? (long long)a->shape[0] : 0LL);
		return -1;
	}
	for (int i = 1; i < a->ndim; i++)
		dim *= a->shape[i];
	if (dim == 0) {
		snprintf(err, errlen, "%s: features of width 0", path);
		return -1;
	}
	d->n = a->shape[0];
	d->dim = dim;
	if (a->type == NPY_F32) {
		d->x = a->data;
		a->data = NULL;
	} else {
		d->x = emalloc(a->count * sizeof *d->x);
		for (size_t i = 0; i < a->count; i++)
			d->x[i] = ((const double *)a->data)[i];
	}
	for (size_t i = 0; i < a->count; i++)
		if (!isfinite(d->x[i])) {
			snprintf(err, errlen, "%s: row %zu, column %zu is %s "
			    "(rows and columns count from 0)", path, i / dim,
			    i % dim, isnan(d->x[i]) ? "NaN" : "infinite");
			return -1;
		}
	return 0;
}

static int
labels_take(FData *d, Npy *a, const char *path, char *err, size_t errlen)
{
	int max = -1;

	if (a->type == NPY_F32 || a->type == NPY_F64) {
		snprintf(err, errlen, "%s: %s labels; want an integer vector",
		    path, type_name[a->type]);
		return -1;
	}
	if (a->ndim < 1 || a->ndim > 2 || (a->ndim == 2 && a->shape[1] != 1)) {
		snprintf(err, errlen, "%s: want an (N,) label vector, got a "
		    "%d-D array%s", path, a->ndim, a->ndim == 2 ?
		    " with several columns (multi-label data is rl-svm's)" : "");
		return -1;
	}
	if ((size_t)a->shape[0] != d->n) {
		snprintf(err, errlen, "%s: %lld labels for the %zu rows of %s",
		    path, (long long)a->shape[0], d->n, d->path);
		return -1;
	}
	d->y = emalloc(d->n * sizeof *d->y);
	for (size_t i = 0; i < d->n; i++) {
		double v = npy_get(a, i);
		if (v < 0 || v > INT32_MAX - 1) {
			snprintf(err, errlen, "%s: label %zu is %.0f; want a class "
			    "index 0..%d", path, i, v, INT32_MAX - 1);
			return -1;
		}
		d->y[i] = (int)v;
		max = RL_MAX(max, d->y[i]);
	}
	d->nclass = max + 1;
	return 0;
}

int
fdata_load(FData *d, const char *feat, const char *labels, char *err,
    size_t errlen)
{
	Npy a;

	memset(d, 0, sizeof *d);
	d->path = estrdup(feat);
	if (npy_read(feat, &a, err, errlen))
		goto fail;
	if (features_take(d, &a, feat, err, errlen)) {
		npy_free(&a);
		goto fail;
	}
	npy_free(&a);
	if (!labels)
		return 0;
	if (npy_read(labels, &a, err, errlen))
		goto fail;
	if (labels_take(d, &a, labels, err, errlen)) {
		npy_free(&a);
		goto fail;
	}
	npy_free(&a);
	return 0;
fail:
	fdata_free(d);
	return -1;
}

void
fdata_free(FData *d)
{
	free(d->x);
	free(d->y);
	free(d->path);
	memset(d, 0, sizeof *d);
}

int
fdata_same_dim(const FData *a, const FData *b, char *err, size_t errlen)
{
	if (a->dim == b->dim)
		return 0;
	snprintf(err, errlen, "%s: rows of %zu features, but %s has %zu",
	    b->path, b->dim, a->path, a->dim);
	return -1;
}

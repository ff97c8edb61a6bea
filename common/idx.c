/* idx: IDX (MNIST) file reading through zlib. See idx.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/idx.h"
#include "common/util.h"

#define IDX_UBYTE 0x08
#define IDX_MAXBYTES ((size_t)1 << 34)   /* 16 GiB: a sanity bound */

/* Read exactly n bytes; returns the count read, or -1 on a zlib error. */
static long long
gz_full(gzFile gz, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		unsigned chunk = (unsigned)RL_MIN(n - got, (size_t)1 << 30);
		int k = gzread(gz, (char *)buf + got, chunk);
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		got += k;
	}
	return (long long)got;
}

/*
 * Read n bytes into *buf, malloc'd and grown as the data comes (doubling
 * from 1 MiB), so that a header claiming gigabytes of a short file costs
 * no more than the file. Returns the count read, or -1 on a zlib error.
 */
static long long
gz_grow(gzFile gz, uint8_t **buf, size_t n)
{
	size_t got = 0, cap = 0;
	long long k;

	for (;;) {
		size_t want = RL_MIN(n, RL_MAX(cap * 2, (size_t)1 << 20));

		*buf = erealloc(*buf, want ? want : 1);
		cap = want;
		if ((k = gz_full(gz, *buf + got, cap - got)) < 0)
			return -1;
		got += k;
		if (got < cap || cap == n)
			return (long long)got;
	}
}

static void
gz_err(gzFile gz, const char *path, const char *what, char *err,
    size_t errlen)
{
	int zerr;
	const char *msg = gzerror(gz, &zerr);

	if (zerr == Z_ERRNO)
		msg = strerror(errno);
	snprintf(err, errlen, "%s: %s: %s", path, what, msg);
}

int
idx_read(Idx *x, const char *path, int want_ndim, char *err, size_t errlen)
{
	unsigned char hd[4 + 4 * IDX_MAXDIM], extra;
	gzFile gz;
	long long got;

	memset(x, 0, sizeof *x);
	if (!(gz = gzopen(path, "rb"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno :
		    ENOMEM));
		return -1;
	}
	if ((got = gz_full(gz, hd, 4)) < 0) {
		gz_err(gz, path, "header", err, errlen);
		goto fail;
	}
	if (got < 4 || hd[0] != 0 || hd[1] != 0 || hd[3] < 1 ||
	    hd[3] > IDX_MAXDIM) {
		snprintf(err, errlen, "%s: bad magic: not an IDX file", path);
		goto fail;
	}
	if (hd[2] != IDX_UBYTE) {
		snprintf(err, errlen, "%s: IDX type 0x%02x, only unsigned "
		    "bytes (0x08) are read", path, hd[2]);
		goto fail;
	}
	x->ndim = hd[3];
	if (want_ndim > 0 && x->ndim != want_ndim) {
		snprintf(err, errlen, "%s: %d dimensions, want %d", path,
		    x->ndim, want_ndim);
		goto fail;
	}
	if ((got = gz_full(gz, hd + 4, 4 * x->ndim)) != 4 * x->ndim) {
		if (got < 0)
			gz_err(gz, path, "header", err, errlen);
		else
			snprintf(err, errlen, "%s: truncated in the header",
			    path);
		goto fail;
	}
	x->n = 1;
	for (int i = 0; i < x->ndim; i++) {
		const unsigned char *p = hd + 4 + 4 * i;
		x->dim[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		if (x->dim[i] == 0 || x->n > IDX_MAXBYTES / x->dim[i]) {
			snprintf(err, errlen, "%s: bad dimension %u", path,
			    x->dim[i]);
			goto fail;
		}
		x->n *= x->dim[i];
	}
	if ((got = gz_grow(gz, &x->data, x->n)) < 0) {
		char what[64];
		snprintf(what, sizeof what, "truncated or corrupt data "
		    "(want %zu bytes)", x->n);
		gz_err(gz, path, what, err, errlen);
		goto fail;
	}
	if ((size_t)got != x->n) {
		snprintf(err, errlen, "%s: truncated: %lld of %zu data bytes",
		    path, got, x->n);
		goto fail;
	}
	if (gz_full(gz, &extra, 1) != 0) {
		snprintf(err, errlen, "%s: trailing bytes after %zu data "
		    "bytes", path, x->n);
		goto fail;
	}
	gzclose(gz);
	return 0;
fail:
	gzclose(gz);
	idx_free(x);
	return -1;
}

void
idx_free(Idx *x)
{
	free(x->data);
	memset(x, 0, sizeof *x);
}

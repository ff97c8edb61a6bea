/* npy: NumPy .npy read and atomic write. See npy.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/npy.h"
#include "common/util.h"

#define NPY_HDR 128   /* our headers: magic + len + dict, padded to 128 */
#define NPY_HDR_MAX (1 << 20)   /* the longest header read */

static const struct {
	const char *descr;
	size_t size;
} dtypes[] = {
	[NPY_U8] = {"|u1", 1}, [NPY_I32] = {"<i4", 4}, [NPY_I64] = {"<i8", 8},
	[NPY_F32] = {"<f4", 4}, [NPY_F64] = {"<f8", 8},
};

size_t
npy_elsize(NpyType t)
{
	return dtypes[t].size;
}

double
npy_get(const Npy *a, size_t i)
{
	switch (a->type) {
	case NPY_U8: return ((const uint8_t *)a->data)[i];
	case NPY_I32: return ((const int32_t *)a->data)[i];
	case NPY_I64: return (double)((const int64_t *)a->data)[i];
	case NPY_F32: return ((const float *)a->data)[i];
	case NPY_F64: return ((const double *)a->data)[i];
	}
	return 0;
}

void
npy_free(Npy *a)
{
	free(a->data);
	memset(a, 0, sizeof *a);
}

/* Format the header for (t, shape) into buf (NPY_HDR bytes). */
static int
header_make(char *buf, NpyType t, int ndim, const int64_t *shape)
{
	char sh[96] = "";
	int n = 0;

	for (int i = 0; i < ndim; i++)
		n += snprintf(sh + n, sizeof sh - n, "%lld,%s",
		    (long long)shape[i], (i + 1 < ndim) ? " " : "");
	if (ndim > 1)   /* "(3, 4)" not "(3, 4,)" */
		sh[--n] = '\0';
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	n = snprintf(buf + 10, NPY_HDR - 10,
	    "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
	    dtypes[t].descr, sh);
	if (n < 0 || n >= NPY_HDR - 11)
		return -1;
	memset(buf + 10 + n, ' ', NPY_HDR - 10 - n - 1);
	buf[NPY_HDR - 1] = '\n';
	buf[8] = (NPY_HDR - 10) & 0xff;
	buf[9] = (NPY_HDR - 10) >> 8;
	return 0;
}

/* The first occurrence of the string key in [p, end), or NULL. */
static const char *
memfind(const char *p, const char *end, const char *key)
{
	size_t k = strlen(key);

	for (; (size_t)(end - p) >= k; p++)
		if (!memcmp(p, key, k))
			return p;
	return NULL;
}

int
npy_header(const char *path, const void *buf, size_t len, Npy *a,
    size_t *off, char *err, size_t errlen)
{
	const unsigned char *b = buf;
	const char *p, *end;
	size_t hlen, pre, lim;
	int t = -1, ver;

	memset(a, 0, sizeof *a);
	if (len < 10 || memcmp(b, "\x93NUMPY", 6)) {
		snprintf(err, errlen, "%s: not a .npy file", path);
		return -1;
	}
	ver = b[6];
	if (ver == 1) {
		pre = 10;
		hlen = b[8] | b[9] << 8;
	} else if (ver == 2 || ver == 3) {
		if (len < 12)
			goto trunc;
		pre = 12;
		hlen = b[8] | b[9] << 8 | (size_t)b[10] << 16 |
		    (size_t)b[11] << 24;
		if (hlen > NPY_HDR_MAX)
			goto bad;
	} else {
		snprintf(err, errlen, "%s: .npy format version %d unsupported",
		    path, ver);
		return -1;
	}
	if (len - pre < hlen)
		goto trunc;
	p = (const char *)b + pre;
	end = p + hlen;
	for (size_t i = 0; i < RL_NELEM(dtypes); i++) {
		char key[32];
		snprintf(key, sizeof key, "'descr': '%s'", dtypes[i].descr);
		if (memfind(p, end, key))
			t = i;
	}
	if (t < 0) {
		snprintf(err, errlen, "%s: unsupported dtype (want u1, i4, i8, "
		    "f4 or f8, little-endian)", path);
		return -1;
	}
	if (!memfind(p, end, "'fortran_order': False")) {
		snprintf(err, errlen, "%s: Fortran-order arrays unsupported",
		    path);
		return -1;
	}
	if (!(p = memfind(p, end, "'shape': (")))
		goto bad;
	p += 10;
	a->type = t;
	a->count = 1;
	// every dimension (zero ones counted as one) multiplied within what
	// an address space can hold as doubles, so that no product of them a
	// reader forms (rows * cols * sizeof(double)) wraps
	lim = (SIZE_MAX >> 1) / sizeof(double);
	for (size_t span = 1;;) {
		uint64_t v = 0;
		const char *q;
		while (p < end && (*p == ' ' || *p == ','))
			p++;
		if (p == end)
			goto bad;
		if (*p == ')')
			break;
		for (q = p; q < end && *q >= '0' && *q <= '9'; q++) {
			if (v > lim / 10)
				goto big;
			v = v * 10 + (*q - '0');
		}
		if (q == p || a->ndim == NPY_MAXDIM)
			goto bad;
		if (v > lim || (v && span > lim / v))
			goto big;
		span *= v ? v : 1;
		a->shape[a->ndim++] = v;
		a->count *= v;
		p = q;
	}
	*off = pre + hlen;
	return 0;
big:
	snprintf(err, errlen, "%s: the header's shape is too large for any "
	    "file (corrupt)", path);
	memset(a, 0, sizeof *a);
	return -1;
bad:
	snprintf(err, errlen, "%s: malformed .npy header", path);
	memset(a, 0, sizeof *a);
	return -1;
trunc:
	snprintf(err, errlen, "%s: truncated .npy file", path);
	memset(a, 0, sizeof *a);
	return -1;
}

int
npy_read(const char *path, Npy *a, char *err, size_t errlen)
{
	FILE *fp;
	unsigned char *hdr = NULL;
	size_t n, off, need;
	long fsize;

	memset(a, 0, sizeof *a);
	if (!(fp = fopen(path, "rb"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	hdr = emalloc(12 + NPY_HDR_MAX);
	n = fread(hdr, 1, 12 + NPY_HDR_MAX, fp);
	if (npy_header(path, hdr, n, a, &off, err, errlen))
		goto fail;
	free(hdr);
	hdr = NULL;
	need = a->count * dtypes[a->type].size;
	if (fseek(fp, 0, SEEK_END) || (fsize = ftell(fp)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((size_t)fsize < off || (size_t)fsize - off != need) {
		snprintf(err, errlen, "%s: file is %ld bytes, the header's shape "
		    "needs %zu (truncated or corrupt; regenerate it)", path, fsize,
		    need + off);
		goto fail;
	}
	fseek(fp, off, SEEK_SET);
	a->data = emalloc(need ? need : 1);
	if (fread(a->data, 1, need, fp) != need) {
		snprintf(err, errlen, "%s: truncated .npy file", path);
		goto fail;
	}
	fclose(fp);
	return 0;
fail:
	free(hdr);
	npy_free(a);
	fclose(fp);
	return -1;
}

char *
npy_tmp_path(const char *path)
{
	return rl_tmp_path(path);
}

int
npy_writer_open(NpyWriter *w, const char *path, NpyType t, int64_t cols,
    char *err, size_t errlen)
{
	char hdr[NPY_HDR];
	int64_t shape[2] = {0, cols};

	memset(w, 0, sizeof *w);
	w->type = t;
	w->cols = cols;
	if (!rl_atomic_open(&w->a, path, err, errlen))
		return -1;
	// a placeholder until the row count is known; a failed write here
	// shows at the close
	header_make(hdr, t, cols < 0 ? 1 : 2, shape);
	fwrite(hdr, 1, NPY_HDR, w->a.fp);
	return 0;
}

int
npy_writer_append(NpyWriter *w, const void *data, int64_t nrows, char *err,
    size_t errlen)
{
	size_t n = nrows * (w->cols < 0 ? 1 : w->cols);

	if (fwrite(data, dtypes[w->type].size, n, w->a.fp) != n) {
		snprintf(err, errlen, "%s: %s", w->a.path, strerror(errno));
		return -1;
	}
	w->rows += nrows;
	return 0;
}

int
npy_writer_append_file(NpyWriter *w, const char *path, int64_t rows,
    char *err, size_t errlen)
{
	FILE *fp;
	unsigned char *buf = emalloc(12 + NPY_HDR_MAX);
	size_t n, off, rowbytes, left;
	Npy a;
	int rc = -1;

	if (!(fp = fopen(path, "rb"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		return -1;
	}
	n = fread(buf, 1, 12 + NPY_HDR_MAX, fp);
	if (npy_header(path, buf, n, &a, &off, err, errlen))
		goto out;
	if (a.type != w->type || a.ndim != (w->cols < 0 ? 1 : 2) ||
	    a.shape[0] != rows || (w->cols >= 0 && a.shape[1] != w->cols)) {
		snprintf(err, errlen, "%s: not the %lld rows of %s expected",
		    path, (long long)rows, w->a.path);
		goto out;
	}
	rowbytes = dtypes[w->type].size * (w->cols < 0 ? 1 : (size_t)w->cols);
	left = (size_t)rows * rowbytes;
	if (fseek(fp, (long)off, SEEK_SET)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	free(buf);
	buf = emalloc(1 << 20);
	while (left > 0) {
		size_t k = RL_MIN(left, (size_t)1 << 20);

		if (fread(buf, 1, k, fp) != k) {
			snprintf(err, errlen, "%s: truncated .npy file", path);
			goto out;
		}
		if (fwrite(buf, 1, k, w->a.fp) != k) {
			snprintf(err, errlen, "%s: %s", w->a.path,
			    strerror(errno));
			goto out;
		}
		left -= k;
	}
	w->rows += rows;
	rc = 0;
out:
	free(buf);
	fclose(fp);
	return rc;
}

/* Put the final header hdr in place and finish w's temp file (synced,
 * closed, not renamed). */
static int
writer_seal(NpyWriter *w, const char *hdr, char *err, size_t errlen)
{
	if (fseek(w->a.fp, 0, SEEK_SET) ||
	    fwrite(hdr, 1, NPY_HDR, w->a.fp) != NPY_HDR) {
		snprintf(err, errlen, "%s: %s", w->a.path, strerror(errno));
		rl_atomic_abort(&w->a);
		return -1;
	}
	return rl_atomic_finish(&w->a, err, errlen);
}

/* The same, then renamed into place. */
static int
writer_finish(NpyWriter *w, const char *hdr, char *err, size_t errlen)
{
	RlAtomic *a = &w->a;

	if (writer_seal(w, hdr, err, errlen))
		return -1;
	return rl_atomic_commit(&a, 1, err, errlen);
}

/* w's final header in hdr. */
static void
writer_header(const NpyWriter *w, char *hdr)
{
	int64_t shape[2] = {w->rows, w->cols};

	header_make(hdr, w->type, w->cols < 0 ? 1 : 2, shape);
}

int
npy_writer_close(NpyWriter *w, char *err, size_t errlen)
{
	char hdr[NPY_HDR];

	writer_header(w, hdr);
	return writer_finish(w, hdr, err, errlen);
}

int
npy_writer_finish(NpyWriter *w, char *err, size_t errlen)
{
	char hdr[NPY_HDR];

	writer_header(w, hdr);
	return writer_seal(w, hdr, err, errlen);
}

void
npy_writer_abort(NpyWriter *w)
{
	rl_atomic_abort(&w->a);
}

int
npy_write(const char *path, NpyType t, int ndim, const int64_t *shape,
    const void *data, char *err, size_t errlen)
{
	NpyWriter w;
	RlAtomic *a = &w.a;

	if (npy_write_finished(&w, path, t, ndim, shape, data, err, errlen))
		return -1;
	return rl_atomic_commit(&a, 1, err, errlen);
}

int
npy_write_finished(NpyWriter *w, const char *path, NpyType t, int ndim,
    const int64_t *shape, const void *data, char *err, size_t errlen)
{
	int64_t rows = ndim > 0 ? shape[0] : 1, cols = 1;
	char hdr[NPY_HDR];

	if (ndim < 1 || ndim > NPY_MAXDIM || header_make(hdr, t, ndim, shape)) {
		snprintf(err, errlen, "%s: cannot write a %d-D array", path, ndim);
		return -1;
	}
	for (int i = 1; i < ndim; i++)
		cols *= shape[i];
	if (npy_writer_open(w, path, t, ndim == 1 ? -1 : cols, err, errlen))
		return -1;
	if (npy_writer_append(w, data, rows, err, errlen)) {
		npy_writer_abort(w);
		return -1;
	}
	return writer_seal(w, hdr, err, errlen);    /* the N-D header */
}

/* ckpt: safetensors checkpoints, read and atomic write. See ckpt.h. */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/ckpt.h"
#include "common/util.h"

/* Appended to every "this file is malformed" message. */
#define HINT "; not a valid checkpoint: regenerate it (rl-train writes " \
	"them; rl-ckpt(5) shows how to convert a PyTorch state_dict)"

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[CKPT_U8] = {"U8", 1}, [CKPT_I32] = {"I32", 4}, [CKPT_I64] = {"I64", 8},
	[CKPT_F32] = {"F32", 4}, [CKPT_F64] = {"F64", 8},
};

const char *
ckpt_dtype_name(CkptDtype t)
{
	return dtypes[t].name;
}

size_t
ckpt_dtype_size(CkptDtype t)
{
	return dtypes[t].size;
}

/* jansson returns NULL only when out of memory: die as emalloc does. */
static json_t *
json_oom(json_t *j)
{
	if (!j)
		emalloc(SIZE_MAX);
	return j;
}

static int
host_is_le(void)
{
	uint16_t x = 1;

	return *(unsigned char *)&x == 1;
}

/* "[a,b,c]" into buf. */
static void
shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t n = 0;

	n += snprintf(buf, len, "[");
	for (int i = 0; i < ndim && n < len; i++)
		n += snprintf(buf + n, len - n, "%s%" PRId64, i ? "," : "",
		    shape[i]);
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

/*
 * The element count of a shape, or -1 if a size is negative or the byte
 * count would overflow size_t.
 */
static int
shape_count(int ndim, const int64_t *shape, size_t elsize, size_t *count)
{
	size_t c = 1;

	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return -1;
		if (shape[i] && c > SIZE_MAX / elsize / (uint64_t)shape[i])
			return -1;
		c *= (size_t)shape[i];
	}
	*count = c;
	return 0;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
	char *name;
	CkptDtype dtype;
	int ndim;
	int64_t shape[CKPT_MAXDIM];
	size_t nbytes;
	const void *data;
} WEntry;

struct CkptWriter {
	WEntry *t;
	size_t n, cap;
	json_t *meta;    /* object of strings, in the order set */
};

void
ckpt_writer_create(CkptWriter **out)
{
	CkptWriter *w = ecalloc(1, sizeof *w);

	w->meta = json_oom(json_object());
	*out = w;
}

void
ckpt_writer_free(CkptWriter *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->t[i].name);
	free(w->t);
	json_decref(w->meta);
	free(w);
}

int
ckpt_writer_add(CkptWriter *w, const char *name, CkptDtype dtype, int ndim,
    const int64_t *shape, const void *data, char *err, size_t errlen)
{
	WEntry *e;
	size_t count;

	if (!*name || !strcmp(name, "__metadata__")) {
		snprintf(err, errlen, "tensor name \"%s\" not allowed", name);
		return -1;
	}
	if (ndim < 0 || ndim > CKPT_MAXDIM ||
	    (unsigned)dtype >= RL_NELEM(dtypes) ||
	    shape_count(ndim, shape, dtypes[dtype].size, &count)) {
		snprintf(err, errlen, "%s: bad dtype, ndim or shape", name);
		return -1;
	}
	/* jansson holds keys to valid UTF-8: check it here, not at write */
	json_t *probe = json_string(name);
	if (!probe) {
		snprintf(err, errlen, "tensor name \"%s\" is not UTF-8", name);
		return -1;
	}
	json_decref(probe);
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->t[i].name, name)) {
			snprintf(err, errlen, "%s: tensor added twice", name);
			return -1;
		}
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->t = erealloc(w->t, w->cap * sizeof *w->t);
	}
	e = &w->t[w->n++];
	memset(e, 0, sizeof *e);
	e->name = estrdup(name);
	e->dtype = dtype;
	e->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		e->shape[i] = shape[i];
	e->nbytes = count * dtypes[dtype].size;
	e->data = data;
	return 0;
}

int
ckpt_writer_meta(CkptWriter *w, const char *key, const char *value,
    char *err, size_t errlen)
{
	json_t *v = json_string(value);

	if (!v || json_object_set_new(w->meta, key, v)) {
		snprintf(err, errlen, "metadata \"%s\": key or value not UTF-8",
		    key);
		return -1;
	}
	return 0;
}

/*
 * The JSON header of w, padded with spaces so that 8 + its length is a
 * multiple of 8; its length in *len. NULL when too large.
 */
static char *
header_build(const CkptWriter *w, size_t *len)
{
	json_t *root = json_oom(json_object());
	char *s, *pad;
	size_t n, off = 0;

	if (json_object_size(w->meta))
		json_object_set(root, "__metadata__", w->meta);
	for (size_t i = 0; i < w->n; i++) {
		const WEntry *e = &w->t[i];
		json_t *shape = json_oom(json_array());
		for (int d = 0; d < e->ndim; d++)
			json_array_append_new(shape,
			    json_oom(json_integer(e->shape[d])));
		/* names were checked for UTF-8 in ckpt_writer_add */
		json_object_set_new(root, e->name, json_oom(json_pack(
		    "{s:s, s:o, s:[I,I]}", "dtype", dtypes[e->dtype].name,
		    "shape", shape, "data_offsets", (json_int_t)off,
		    (json_int_t)(off + e->nbytes))));
		off += e->nbytes;
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		emalloc(SIZE_MAX);    /* out of memory, as json_oom */
	n = strlen(s);
	if (n > CKPT_MAX_HEADER - 8) {
		free(s);
		return NULL;
	}
	*len = (n + 7) / 8 * 8;
	pad = emalloc(*len);
	memcpy(pad, s, n);
	memset(pad + n, ' ', *len - n);
	free(s);
	return pad;
}

int
ckpt_writer_write(CkptWriter *w, const char *path, char *err, size_t errlen)
{
	unsigned char lenbuf[8];
	size_t hlen;
	RlAtomic a;
	char *hdr;
	FILE *fp;
	int rc;

	if (!host_is_le()) {
		snprintf(err, errlen, "%s: big-endian hosts unsupported", path);
		return -1;
	}
	if (!(hdr = header_build(w, &hlen))) {
		snprintf(err, errlen, "%s: header over %d bytes", path,
		    CKPT_MAX_HEADER);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		lenbuf[i] = (uint64_t)hlen >> (8 * i) & 0xff;
	if (!(fp = rl_atomic_open(&a, path, err, errlen))) {
		free(hdr);
		return -1;
	}
	// the close reports a failed write (with its errno), so stop at one
	if (fwrite(lenbuf, 1, 8, fp) == 8 && fwrite(hdr, 1, hlen, fp) == hlen)
		for (size_t i = 0; i < w->n; i++)
			if (w->t[i].nbytes && fwrite(w->t[i].data, 1,
			    w->t[i].nbytes, fp) != w->t[i].nbytes)
				break;
	rc = rl_atomic_close(&a, err, errlen);
	free(hdr);
	return rc;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
	CkptTensor t;
	uint64_t begin, end;    /* data_offsets */
} REntry;

struct Ckpt {
	char *path;
	REntry *t;              /* in offset order */
	size_t n;
	REntry **byname;        /* into t, sorted by name */
	char **meta;            /* key, value, key, value, ... */
	size_t nmeta;
	unsigned char *data;    /* the bytes after the header, 64-aligned */
	void **copies;          /* tensors moved out of data to align them */
	size_t ncopies;
};

/* Format "path: message" + HINT into err and return -1. */
static int
bad(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	char msg[CKPT_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s" HINT, path, msg);
	return -1;
}

/* A JSON array of non-negative integers into v (at most max). */
static int
int_array(json_t *a, int64_t *v, int max)
{
	size_t i;
	json_t *x;

	if (!json_is_array(a) || json_array_size(a) > (size_t)max)
		return -1;
	json_array_foreach(a, i, x) {
		if (!json_is_integer(x) || json_integer_value(x) < 0)
			return -1;
		v[i] = json_integer_value(x);
	}
	return (int)json_array_size(a);
}

static int
dtype_parse(const char *s)
{
	for (size_t i = 0; i < RL_NELEM(dtypes); i++)
		if (!strcmp(s, dtypes[i].name))
			return (int)i;
	return -1;
}

/* One header entry, name -> {"dtype", "shape", "data_offsets"}, into e. */
static int
entry_parse(REntry *e, const char *name, json_t *v, uint64_t datalen,
    const char *path, char *err, size_t errlen)
{
	json_t *jd = json_object_get(v, "dtype");
	int64_t off[3];
	int dt;
	size_t count;
	char sh[256];

	memset(e, 0, sizeof *e);
	e->t.name = estrdup(name);
	if (!json_is_object(v))
		return bad(err, errlen, path, "%s: header entry is not an object",
		    name);
	if (!json_is_string(jd))
		return bad(err, errlen, path, "%s: no dtype", name);
	if ((dt = dtype_parse(json_string_value(jd))) < 0)
		return bad(err, errlen, path, "%s: dtype %s unsupported (U8, "
		    "I32, I64, F32 or F64 are)", name, json_string_value(jd));
	e->t.dtype = dt;
	e->t.ndim = int_array(json_object_get(v, "shape"), e->t.shape,
	    CKPT_MAXDIM);
	if (e->t.ndim < 0)
		return bad(err, errlen, path, "%s: shape is not a list of at "
		    "most %d sizes >= 0", name, CKPT_MAXDIM);
	if (int_array(json_object_get(v, "data_offsets"), off, 3) != 2 ||
	    off[0] > off[1])
		return bad(err, errlen, path, "%s: data_offsets is not "
		    "[begin, end] with 0 <= begin <= end", name);
	e->begin = off[0];
	e->end = off[1];
	shape_str(sh, sizeof sh, e->t.ndim, e->t.shape);
	if (shape_count(e->t.ndim, e->t.shape, dtypes[dt].size, &count) ||
	    count * dtypes[dt].size != e->end - e->begin)
		return bad(err, errlen, path, "%s: dtype %s and shape %s do not "
		    "fit data_offsets [%" PRIu64 ",%" PRIu64 "] (%" PRIu64
		    " bytes)", name, dtypes[dt].name, sh, e->begin, e->end,
		    e->end - e->begin);
	if (e->end > datalen)
		return bad(err, errlen, path, "%s: data_offsets [%" PRIu64 ",%"
		    PRIu64 "] run past the %" PRIu64 " bytes of data (a "
		    "truncated file?)", name, e->begin, e->end, datalen);
	e->t.count = count;
	e->t.nbytes = e->end - e->begin;
	return 0;
}

static int
cmp_offset(const void *a, const void *b)
{
	const REntry *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

static int
cmp_name(const void *a, const void *b)
{
	const REntry *const *x = a, *const *y = b;

	return strcmp((*x)->t.name, (*y)->t.name);
}

/* The metadata object: strings to strings, copied into c->meta. */
static int
meta_parse(Ckpt *c, json_t *m, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	size_t i = 0;

	if (!json_is_object(m))
		return bad(err, errlen, c->path, "__metadata__ is not an object");
	c->meta = ecalloc(2 * json_object_size(m) + 1, sizeof *c->meta);
	json_object_foreach(m, k, v) {
		if (!json_is_string(v))
			return bad(err, errlen, c->path, "__metadata__: the value "
			    "of \"%s\" is not a string", k);
		c->meta[i++] = estrdup(k);
		c->meta[i++] = estrdup(json_string_value(v));
		c->nmeta++;
	}
	return 0;
}

/* Check the entries, sorted by offset, tile the data exactly. */
static int
layout_check(Ckpt *c, uint64_t datalen, char *err, size_t errlen)
{
	uint64_t at = 0;

	for (size_t i = 0; i < c->n; i++) {
		const REntry *e = &c->t[i];
		if (e->begin < at)
			return bad(err, errlen, c->path, "%s: data_offsets [%"
			    PRIu64 ",%" PRIu64 "] overlap %s", e->t.name,
			    e->begin, e->end, c->t[i - 1].t.name);
		if (e->begin > at)
			return bad(err, errlen, c->path, "%s: a gap of %" PRIu64
			    " bytes before it (tensors must be contiguous)",
			    e->t.name, e->begin - at);
		at = e->end;
	}
	if (at != datalen)
		return bad(err, errlen, c->path, "%" PRIu64 " bytes of data "
		    "after the last tensor", datalen - at);
	return 0;
}

/* Point each tensor at its data, copying the misaligned ones. */
static void
data_point(Ckpt *c)
{
	for (size_t i = 0; i < c->n; i++) {
		CkptTensor *t = &c->t[i].t;
		unsigned char *p = c->data + c->t[i].begin;
		if (c->t[i].begin % dtypes[t->dtype].size) {
			void *q = emalloc(t->nbytes ? t->nbytes : 1);
			memcpy(q, p, t->nbytes);
			c->copies = erealloc(c->copies,
			    (c->ncopies + 1) * sizeof *c->copies);
			c->copies[c->ncopies++] = q;
			p = q;
		}
		t->data = p;
	}
}

/* Parse and check the header (hdr, hlen bytes) against datalen bytes. */
static int
header_parse(Ckpt *c, const char *hdr, size_t hlen, uint64_t datalen,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *k;
	int rc = -1;

	if (hlen == 0 || hdr[0] != '{')
		return bad(err, errlen, c->path, "the header does not start "
		    "with '{' (not a safetensors file?)");
	if (!(root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr)))
		return bad(err, errlen, c->path, "header JSON: %s (line %d, "
		    "column %d)", jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root)) {
		bad(err, errlen, c->path, "header JSON is not an object");
		goto out;
	}
	c->t = ecalloc(json_object_size(root) + 1, sizeof *c->t);
	json_object_foreach(root, k, v) {
		if (!strcmp(k, "__metadata__")) {
			if (meta_parse(c, v, err, errlen))
				goto out;
			continue;
		}
		if (!*k) {
			bad(err, errlen, c->path, "a tensor with an empty name");
			goto out;
		}
		if (entry_parse(&c->t[c->n++], k, v, datalen, c->path, err,
		    errlen))
			goto out;
	}
	qsort(c->t, c->n, sizeof *c->t, cmp_offset);
	if (layout_check(c, datalen, err, errlen))
		goto out;
	c->byname = emalloc((c->n + 1) * sizeof *c->byname);
	for (size_t i = 0; i < c->n; i++)
		c->byname[i] = &c->t[i];
	qsort(c->byname, c->n, sizeof *c->byname, cmp_name);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
ckpt_open(Ckpt **out, const char *path, char *err, size_t errlen)
{
	unsigned char lenbuf[8];
	uint64_t hlen = 0, datalen;
	struct stat st;
	char *hdr = NULL;
	FILE *fp;
	Ckpt *c;

	*out = NULL;
	if (!host_is_le()) {
		snprintf(err, errlen, "%s: big-endian hosts unsupported", path);
		return -1;
	}
	if (!(fp = fopen(path, "rb"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	c = ecalloc(1, sizeof *c);
	c->path = estrdup(path);
	if (fstat(fileno(fp), &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size < 8 || fread(lenbuf, 1, 8, fp) != 8) {
		bad(err, errlen, path, "%lld bytes, shorter than the 8-byte "
		    "header length", (long long)st.st_size);
		goto fail;
	}
	for (int i = 0; i < 8; i++)
		hlen |= (uint64_t)lenbuf[i] << (8 * i);
	if (hlen > CKPT_MAX_HEADER) {
		bad(err, errlen, path, "header length %" PRIu64 " over the "
		    "%d-byte limit", hlen, CKPT_MAX_HEADER);
		goto fail;
	}
	if (hlen > (uint64_t)st.st_size - 8) {
		bad(err, errlen, path, "header length %" PRIu64 " runs past "
		    "the end of the file (%lld bytes; truncated?)", hlen,
		    (long long)st.st_size);
		goto fail;
	}
	datalen = (uint64_t)st.st_size - 8 - hlen;
	if (datalen > SIZE_MAX - 64) {
		snprintf(err, errlen, "%s: too large for memory", path);
		goto fail;
	}
	hdr = emalloc(hlen + 1);
	c->data = emalloc_aligned(datalen ? datalen : 1);
	if (fread(hdr, 1, hlen, fp) != hlen ||
	    fread(c->data, 1, datalen, fp) != datalen) {
		snprintf(err, errlen, "%s: %s", path, ferror(fp) ?
		    strerror(errno) : "file shrank while being read");
		goto fail;
	}
	if (header_parse(c, hdr, hlen, datalen, err, errlen))
		goto fail;
	data_point(c);
	free(hdr);
	fclose(fp);
	*out = c;
	return 0;
fail:
	free(hdr);
	fclose(fp);
	ckpt_close(c);
	return -1;
}

void
ckpt_close(Ckpt *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free((char *)c->t[i].t.name);
	for (size_t i = 0; i < 2 * c->nmeta; i++)
		free(c->meta[i]);
	for (size_t i = 0; i < c->ncopies; i++)
		free(c->copies[i]);
	free(c->copies);
	free(c->meta);
	free(c->byname);
	free(c->t);
	free(c->data);
	free(c->path);
	free(c);
}

const char *
ckpt_path(const Ckpt *c)
{
	return c->path;
}

size_t
ckpt_ntensors(const Ckpt *c)
{
	return c->n;
}

const CkptTensor *
ckpt_tensor(const Ckpt *c, size_t i)
{
	return i < c->n ? &c->t[i].t : NULL;
}

const CkptTensor *
ckpt_find(const Ckpt *c, const char *name)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->byname[mid]->t.name);
		if (r == 0)
			return &c->byname[mid]->t;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const void *
ckpt_expect(const Ckpt *c, const char *name, CkptDtype dtype, int ndim,
    const int64_t *shape, char *err, size_t errlen)
{
	const CkptTensor *t = ckpt_find(c, name);
	char have[256], want[256];
	int same;

	if (!t) {
		snprintf(err, errlen, "%s: %s: no such tensor", c->path, name);
		return NULL;
	}
	if (t->dtype != dtype) {
		snprintf(err, errlen, "%s: %s: dtype %s in file, %s expected",
		    c->path, name, dtypes[t->dtype].name, dtypes[dtype].name);
		return NULL;
	}
	same = t->ndim == ndim;
	for (int i = 0; same && i < ndim; i++)
		same = t->shape[i] == shape[i];
	if (!same) {
		shape_str(have, sizeof have, t->ndim, t->shape);
		shape_str(want, sizeof want, ndim, shape);
		snprintf(err, errlen, "%s: %s: shape %s in file, %s expected",
		    c->path, name, have, want);
		return NULL;
	}
	return t->data;
}

const char *
ckpt_meta(const Ckpt *c, const char *key)
{
	for (size_t i = 0; i < c->nmeta; i++)
		if (!strcmp(c->meta[2 * i], key))
			return c->meta[2 * i + 1];
	return NULL;
}

size_t
ckpt_nmeta(const Ckpt *c)
{
	return c->nmeta;
}

void
ckpt_meta_at(const Ckpt *c, size_t i, const char **key, const char **value)
{
	*key = c->meta[2 * i];
	*value = c->meta[2 * i + 1];
}

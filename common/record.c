/*
 * record: the grid record's msgpack encoding (man rl-record.5).
 *
 * A record is one map with the string keys of `fields` below, always
 * written in that order, integers in their shortest msgpack form, so the
 * same record always gives the same bytes. Decoding is strict: every
 * field is checked for type and range before anything in the caller's
 * Record changes. Keys this version does not know are skipped, so a later
 * writer may add fields without breaking older readers; a change to an
 * existing field bumps RECORD_VERSION, which readers refuse.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/record.h"
#include "common/util.h"

/* The map's keys, in writing order. */
enum {
	F_VERSION, F_ID, F_SAMPLE, F_SOURCE, F_LABEL, F_SRC_W, F_SRC_H,
	F_PATCH, F_CELL, F_GRAY, F_BOXES, F_PIXELS, F_COUNT
};
static const char *const fields[F_COUNT] = {
	"version", "id", "sample", "source", "label", "src_w", "src_h",
	"patch", "cell", "gray", "boxes", "pixels"
};

// ---- checking

/* Every field of r except the buffers' presence. */
static int
check_fields(const Record *r, char *err, size_t errlen)
{
	int i, k;

	if (r->version != RECORD_VERSION) {
		snprintf(err, errlen, "unsupported record version %u "
		    "(this program reads version %d)", (unsigned)r->version,
		    RECORD_VERSION);
		return -1;
	}
	if (r->label < -1) {
		snprintf(err, errlen, "label %lld: negative (-1 is unknown)",
		    (long long)r->label);
		return -1;
	}
	if (r->src_w < 1 || r->src_h < 1) {
		snprintf(err, errlen, "source size %ux%u: empty",
		    (unsigned)r->src_w, (unsigned)r->src_h);
		return -1;
	}
	if (r->patch < 1 || r->patch > RECORD_PATCH_MAX) {
		snprintf(err, errlen, "patch %u: not in [1, %d]",
		    (unsigned)r->patch, RECORD_PATCH_MAX);
		return -1;
	}
	if (r->cell < 1) {
		snprintf(err, errlen, "cell 0: must be at least 1");
		return -1;
	}
	if (r->gray > 1) {
		snprintf(err, errlen, "gray %u: not 0 or 1", (unsigned)r->gray);
		return -1;
	}
	for (i = 0; i < RECORD_NPATCH; i++) {
		const float *b = r->box[i];

		for (k = 0; k < 4; k++)
			if (!isfinite(b[k])) {
				snprintf(err, errlen, "box %d: not finite", i);
				return -1;
			}
		if (!(b[0] < b[2] && b[1] < b[3])) {
			snprintf(err, errlen, "box %d (%g,%g,%g,%g): empty "
			    "(want x0 < x1, y0 < y1)", i, b[0], b[1], b[2],
			    b[3]);
			return -1;
		}
	}
	return 0;
}

int
record_check(const Record *r, char *err, size_t errlen)
{
	if (r->source == NULL || r->pixels == NULL) {
		snprintf(err, errlen, "record without %s",
		    r->source == NULL ? "source" : "pixels");
		return -1;
	}
	return check_fields(r, err, errlen);
}

// ---- packing

static int
pack_key(msgpack_packer *pk, int f)
{
	size_t n = strlen(fields[f]);

	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, fields[f], n);
}

int
record_pack(const Record *r, msgpack_sbuffer *sb, char *err, size_t errlen)
{
	msgpack_packer pk;
	size_t n, start = sb->size;
	int i, k, rc;

	if (record_check(r, err, errlen) == -1)
		return -1;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	n = strlen(r->source);
	rc = msgpack_pack_map(&pk, F_COUNT) ||
	    pack_key(&pk, F_VERSION) || msgpack_pack_uint32(&pk, r->version) ||
	    pack_key(&pk, F_ID) || msgpack_pack_uint64(&pk, r->id) ||
	    pack_key(&pk, F_SAMPLE) || msgpack_pack_uint32(&pk, r->sample) ||
	    pack_key(&pk, F_SOURCE) || msgpack_pack_str(&pk, n) ||
	    msgpack_pack_str_body(&pk, r->source, n) ||
	    pack_key(&pk, F_LABEL) || (r->label < 0 ? msgpack_pack_nil(&pk) :
	    msgpack_pack_int64(&pk, r->label)) ||
	    pack_key(&pk, F_SRC_W) || msgpack_pack_uint32(&pk, r->src_w) ||
	    pack_key(&pk, F_SRC_H) || msgpack_pack_uint32(&pk, r->src_h) ||
	    pack_key(&pk, F_PATCH) || msgpack_pack_uint32(&pk, r->patch) ||
	    pack_key(&pk, F_CELL) || msgpack_pack_uint32(&pk, r->cell) ||
	    pack_key(&pk, F_GRAY) || (r->gray ? msgpack_pack_true(&pk) :
	    msgpack_pack_false(&pk)) ||
	    pack_key(&pk, F_BOXES) || msgpack_pack_array(&pk, RECORD_NPATCH);
	for (i = 0; !rc && i < RECORD_NPATCH; i++) {
		rc = msgpack_pack_array(&pk, 4);
		for (k = 0; !rc && k < 4; k++)
			rc = msgpack_pack_float(&pk, r->box[i][k]);
	}
	n = record_pixel_bytes(r->patch);
	rc = rc || pack_key(&pk, F_PIXELS) || msgpack_pack_bin(&pk, n) ||
	    msgpack_pack_bin_body(&pk, r->pixels, n);
	if (rc) {
		sb->size = start;
		snprintf(err, errlen, "cannot pack record: out of memory");
		return -1;
	}
	return 0;
}

// ---- unpacking

static const char *
type_name(msgpack_object_type t)
{
	switch (t) {
	case MSGPACK_OBJECT_NIL: return "nil";
	case MSGPACK_OBJECT_BOOLEAN: return "bool";
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return "uint";
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative int";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return "float";
	case MSGPACK_OBJECT_STR: return "str";
	case MSGPACK_OBJECT_ARRAY: return "array";
	case MSGPACK_OBJECT_MAP: return "map";
	case MSGPACK_OBJECT_BIN: return "bin";
	case MSGPACK_OBJECT_EXT: return "ext";
	}
	return "unknown";
}

static int
bad_type(int f, const msgpack_object *o, const char *want, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "field '%s': %s, want %s", fields[f],
	    type_name(o->type), want);
	return -1;
}

/* A non-negative integer <= max. */
static int
get_uint(int f, const msgpack_object *o, uint64_t max, uint64_t *out,
    char *err, size_t errlen)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return bad_type(f, o, "uint", err, errlen);
	if (o->via.u64 > max) {
		snprintf(err, errlen, "field '%s': %llu too large (max %llu)",
		    fields[f], (unsigned long long)o->via.u64,
		    (unsigned long long)max);
		return -1;
	}
	*out = o->via.u64;
	return 0;
}

static int
get_u32(int f, const msgpack_object *o, uint32_t *out, char *err,
    size_t errlen)
{
	uint64_t v;

	if (get_uint(f, o, UINT32_MAX, &v, err, errlen) == -1)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* boxes: an array of 9 arrays of 4 numbers (float, or int). */
static int
get_boxes(const msgpack_object *o, float box[RECORD_NPATCH][4], char *err,
    size_t errlen)
{
	uint32_t i, k;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size !=
	    RECORD_NPATCH) {
		snprintf(err, errlen, "field 'boxes': want an array of %d "
		    "arrays of 4 numbers", RECORD_NPATCH);
		return -1;
	}
	for (i = 0; i < RECORD_NPATCH; i++) {
		const msgpack_object *b = &o->via.array.ptr[i];

		if (b->type != MSGPACK_OBJECT_ARRAY || b->via.array.size != 4) {
			snprintf(err, errlen, "field 'boxes': box %u: want an "
			    "array of 4 numbers", (unsigned)i);
			return -1;
		}
		for (k = 0; k < 4; k++) {
			const msgpack_object *v = &b->via.array.ptr[k];

			switch (v->type) {
			case MSGPACK_OBJECT_FLOAT32:
			case MSGPACK_OBJECT_FLOAT64:
				box[i][k] = (float)v->via.f64;
				break;
			case MSGPACK_OBJECT_POSITIVE_INTEGER:
				box[i][k] = (float)v->via.u64;
				break;
			case MSGPACK_OBJECT_NEGATIVE_INTEGER:
				box[i][k] = (float)v->via.i64;
				break;
			default:
				snprintf(err, errlen, "field 'boxes': box %u: "
				    "%s, want a number", (unsigned)i,
				    type_name(v->type));
				return -1;
			}
		}
	}
	return 0;
}

/* Find the field index of a key, -1 when unknown (skipped). */
static int
field_of(const msgpack_object *k)
{
	int f;

	if (k->type != MSGPACK_OBJECT_STR)
		return -1;
	for (f = 0; f < F_COUNT; f++)
		if (strlen(fields[f]) == k->via.str.size &&
		    memcmp(fields[f], k->via.str.ptr, k->via.str.size) == 0)
			return f;
	return -1;
}

int
record_unpack(const msgpack_object *o, Record *r, char *err, size_t errlen)
{
	const msgpack_object *val[F_COUNT] = {0};
	const msgpack_object *v;
	Record t = {0};
	uint64_t u;
	size_t need;
	uint32_t i;
	int f;

	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "%s, want a map", type_name(o->type));
		return -1;
	}
	for (i = 0; i < o->via.map.size; i++) {
		if ((f = field_of(&o->via.map.ptr[i].key)) == -1)
			continue;
		if (val[f] != NULL) {
			snprintf(err, errlen, "field '%s' twice", fields[f]);
			return -1;
		}
		val[f] = &o->via.map.ptr[i].val;
	}
	/* The version first: another version's fields may mean other things. */
	for (f = 0; f < F_COUNT; f++) {
		if (val[f] == NULL && f != F_LABEL) {
			snprintf(err, errlen, "field '%s' missing", fields[f]);
			return -1;
		}
		if (f == F_VERSION) {
			if (get_u32(f, val[f], &t.version, err, errlen) == -1)
				return -1;
			if (t.version != RECORD_VERSION)
				return check_fields(&t, err, errlen);
		}
	}
	if (get_uint(F_ID, val[F_ID], UINT64_MAX, &t.id, err, errlen) == -1 ||
	    get_u32(F_SAMPLE, val[F_SAMPLE], &t.sample, err, errlen) == -1 ||
	    get_u32(F_SRC_W, val[F_SRC_W], &t.src_w, err, errlen) == -1 ||
	    get_u32(F_SRC_H, val[F_SRC_H], &t.src_h, err, errlen) == -1 ||
	    get_u32(F_PATCH, val[F_PATCH], &t.patch, err, errlen) == -1 ||
	    get_u32(F_CELL, val[F_CELL], &t.cell, err, errlen) == -1)
		return -1;
	t.label = -1;
	if ((v = val[F_LABEL]) != NULL && v->type != MSGPACK_OBJECT_NIL) {
		if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			snprintf(err, errlen, "field 'label': negative "
			    "(write nil for unknown)");
			return -1;
		}
		if (get_uint(F_LABEL, v, INT64_MAX, &u, err, errlen) == -1)
			return -1;
		t.label = (int64_t)u;
	}
	if (val[F_GRAY]->type != MSGPACK_OBJECT_BOOLEAN)
		return bad_type(F_GRAY, val[F_GRAY], "bool", err, errlen);
	t.gray = val[F_GRAY]->via.boolean;
	v = val[F_SOURCE];
	if (v->type != MSGPACK_OBJECT_STR)
		return bad_type(F_SOURCE, v, "str", err, errlen);
	if (memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL) {
		snprintf(err, errlen, "field 'source': contains a NUL byte");
		return -1;
	}
	if (get_boxes(val[F_BOXES], t.box, err, errlen) == -1 ||
	    check_fields(&t, err, errlen) == -1)
		return -1;
	v = val[F_PIXELS];
	if (v->type != MSGPACK_OBJECT_BIN)
		return bad_type(F_PIXELS, v, "bin", err, errlen);
	need = record_pixel_bytes(t.patch);
	if (v->via.bin.size != need) {
		snprintf(err, errlen, "field 'pixels': %lu bytes, want "
		    "9*%u*%u*3 = %zu", (unsigned long)v->via.bin.size,
		    (unsigned)t.patch, (unsigned)t.patch, need);
		return -1;
	}

	/* All checked: now change r. */
	t.source = erealloc(r->source, val[F_SOURCE]->via.str.size + 1);
	memcpy(t.source, val[F_SOURCE]->via.str.ptr,
	    val[F_SOURCE]->via.str.size);
	t.source[val[F_SOURCE]->via.str.size] = '\0';
	t.pixels = erealloc(r->pixels, need);
	memcpy(t.pixels, v->via.bin.ptr, need);
	*r = t;
	return 0;
}

/* Big-endian unsigned of n bytes at p. */
static uint64_t
be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

ptrdiff_t
record_frame(const void *buf, size_t len, char *err, size_t errlen)
{
	const unsigned char *b = buf;
	uint64_t pending = 1, objects = 1;
	size_t pos = 0;

	while (pending > 0) {
		unsigned c;
		uint64_t body = 0, items = 0;
		int hdr = 1, lenb = 0;

		if (pos >= len)
			return 0;
		c = b[pos];
		if (c <= 0x7f || c >= 0xe0 || (c >= 0xc0 && c <= 0xc3 &&
		    c != 0xc1))
			;                               /* one byte */
		else if (c <= 0x8f)
			items = 2 * (uint64_t)(c & 0x0f);
		else if (c <= 0x9f)
			items = c & 0x0f;
		else if (c <= 0xbf)
			body = c & 0x1f;
		else if (c >= 0xc4 && c <= 0xc6)        /* bin 8/16/32 */
			lenb = 1 << (c - 0xc4);
		else if (c >= 0xc7 && c <= 0xc9)        /* ext 8/16/32 */
			lenb = 1 << (c - 0xc7), body = 1;
		else if (c >= 0xca && c <= 0xd3)        /* numbers */
			body = (c == 0xca) ? 4 : (c == 0xcb) ? 8 :
			    1u << ((c - 0xcc) & 3);
		else if (c >= 0xd4 && c <= 0xd8)        /* fixext */
			body = 1 + (1u << (c - 0xd4));
		else if (c >= 0xd9 && c <= 0xdb)        /* str 8/16/32 */
			lenb = 1 << (c - 0xd9);
		else if (c >= 0xdc && c <= 0xdf)        /* array, map 16/32 */
			lenb = (c & 1) ? 4 : 2;
		else {
			snprintf(err, errlen, "not msgpack (corrupt: byte 0x%02x at "
			    "%zu)", c, pos);
			return -1;
		}
		if (len - pos < (size_t)hdr + lenb)
			return 0;
		if (lenb) {
			uint64_t n = be(b + pos + 1, lenb);
			if (c >= 0xdc && c <= 0xdf)
				items = c >= 0xde ? 2 * n : n;
			else
				body += n;
		}
		objects += items;
		if (objects > RECORD_OBJECTS_MAX || body > RECORD_BYTES_MAX) {
			snprintf(err, errlen, "a msgpack header at byte %zu "
			    "claims %llu %s, more than any record holds "
			    "(corrupt)", pos, (unsigned long long)(items ? items :
			    body), items ? "entries" : "bytes");
			return -1;
		}
		pos += hdr + lenb;
		if (pos > RECORD_BYTES_MAX || body > RECORD_BYTES_MAX - pos) {
			snprintf(err, errlen, "a record over %zu bytes "
			    "(corrupt)", (size_t)RECORD_BYTES_MAX);
			return -1;
		}
		if (len - pos < body)
			return 0;
		pos += body;
		pending += items - 1;
	}
	return (ptrdiff_t)pos;
}

int
record_decode(const void *buf, size_t len, Record *r, char *err,
    size_t errlen)
{
	msgpack_unpacked up;
	size_t off = 0;
	ptrdiff_t sz;
	int rc;

	// the headers bounded first: msgpack reserves what they claim
	if ((sz = record_frame(buf, len, err, errlen)) <= 0) {
		if (sz == 0)
			snprintf(err, errlen, "truncated record (%zu bytes)",
			    len);
		return -1;
	}
	msgpack_unpacked_init(&up);
	switch (msgpack_unpack_next(&up, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		if (off != len) {
			snprintf(err, errlen, "%zu bytes after the record",
			    len - off);
			rc = -1;
		} else
			rc = record_unpack(&up.data, r, err, errlen);
		break;
	case MSGPACK_UNPACK_CONTINUE:
		snprintf(err, errlen, "truncated record (%zu bytes)", len);
		rc = -1;
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		snprintf(err, errlen, "out of memory decoding a record");
		rc = -1;
		break;
	default:
		snprintf(err, errlen, "not msgpack (corrupt record)");
		rc = -1;
		break;
	}
	msgpack_unpacked_destroy(&up);
	return rc;
}

// ---- copies

void
record_copy(Record *dst, const Record *src)
{
	char *s = dst->source;
	uint8_t *p = dst->pixels;

	if (src->source != NULL) {
		s = erealloc(s, strlen(src->source) + 1);
		strcpy(s, src->source);
	} else {
		free(s);
		s = NULL;
	}
	if (src->pixels != NULL) {
		p = erealloc(p, record_pixel_bytes(src->patch));
		memcpy(p, src->pixels, record_pixel_bytes(src->patch));
	} else {
		free(p);
		p = NULL;
	}
	*dst = *src;
	dst->source = s;
	dst->pixels = p;
}

void
record_free(Record *r)
{
	free(r->source);
	free(r->pixels);
	memset(r, 0, sizeof *r);
}

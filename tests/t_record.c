/*
 * t_record: the msgpack record format (common/record.c, man rl-record.5).
 * Round trips of every field, byte-stable encoding, and refusal with a
 * message of truncated, mistyped, incomplete and wrong-version maps. The
 * malformed maps are written here by hand, key by key, as the man page
 * describes the format, independently of record_pack.
 */
#include <string.h>

#include "common/record.h"
#include "tests/check.h"
#include "tests/record_fixture.h"

/* How pack_map departs from a valid record. */
typedef struct {
	const char *skip;       /* leave this key out */
	const char *dup;        /* write this key twice */
	int version;            /* 0: RECORD_VERSION */
	long pixdelta;          /* add to the pixel bin's length */
	int patch_as_str;       /* write "patch" as a str */
	int label_neg;          /* label -5 instead of nil/uint */
	int extra;              /* add an unknown key "comment" */
	int float64_boxes;      /* boxes as float64 (as Python writes) */
} Mutation;

static void
key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str(pk, strlen(k));
	msgpack_pack_str_body(pk, k, strlen(k));
}

/* Write one field of r under k. */
static void
field(msgpack_packer *pk, const Record *r, const char *k, const Mutation *m)
{
	size_t n;
	int i, j;

	key(pk, k);
	if (strcmp(k, "version") == 0)
		msgpack_pack_uint32(pk, m->version ? (uint32_t)m->version :
		    RECORD_VERSION);
	else if (strcmp(k, "id") == 0)
		msgpack_pack_uint64(pk, r->id);
	else if (strcmp(k, "sample") == 0)
		msgpack_pack_uint32(pk, r->sample);
	else if (strcmp(k, "source") == 0) {
		msgpack_pack_str(pk, strlen(r->source));
		msgpack_pack_str_body(pk, r->source, strlen(r->source));
	} else if (strcmp(k, "label") == 0) {
		if (m->label_neg)
			msgpack_pack_int64(pk, -5);
		else if (r->label < 0)
			msgpack_pack_nil(pk);
		else
			msgpack_pack_int64(pk, r->label);
	} else if (strcmp(k, "src_w") == 0)
		msgpack_pack_uint32(pk, r->src_w);
	else if (strcmp(k, "src_h") == 0)
		msgpack_pack_uint32(pk, r->src_h);
	else if (strcmp(k, "patch") == 0) {
		if (m->patch_as_str) {
			msgpack_pack_str(pk, 2);
			msgpack_pack_str_body(pk, "12", 2);
		} else
			msgpack_pack_uint32(pk, r->patch);
	} else if (strcmp(k, "cell") == 0)
		msgpack_pack_uint32(pk, r->cell);
	else if (strcmp(k, "gray") == 0)
		r->gray ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	else if (strcmp(k, "boxes") == 0) {
		msgpack_pack_array(pk, 9);
		for (i = 0; i < 9; i++) {
			msgpack_pack_array(pk, 4);
			for (j = 0; j < 4; j++)
				if (m->float64_boxes)
					msgpack_pack_double(pk, r->box[i][j]);
				else
					msgpack_pack_float(pk, r->box[i][j]);
		}
	} else if (strcmp(k, "pixels") == 0) {
		n = (size_t)((long)record_pixel_bytes(r->patch) + m->pixdelta);
		msgpack_pack_bin(pk, n);
		msgpack_pack_bin_body(pk, r->pixels, RL_MIN(n,
		    record_pixel_bytes(r->patch)));
		for (; n > record_pixel_bytes(r->patch); n--)
			msgpack_pack_bin_body(pk, "", 1);
	}
}

static const char *const keys[] = { "version", "id", "sample", "source",
    "label", "src_w", "src_h", "patch", "cell", "gray", "boxes", "pixels" };

static void
pack_map(msgpack_sbuffer *sb, const Record *r, const Mutation *m)
{
	msgpack_packer pk;
	size_t i, n = RL_NELEM(keys);

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	n += (m->skip != NULL ? -1 : 0) + (m->dup != NULL) + (m->extra != 0);
	msgpack_pack_map(&pk, n);
	if (m->extra) {
		key(&pk, "comment");
		msgpack_pack_array(&pk, 2);
		msgpack_pack_int(&pk, -1);
		msgpack_pack_str(&pk, 0);
	}
	for (i = 0; i < RL_NELEM(keys); i++)
		if (m->skip == NULL || strcmp(m->skip, keys[i]) != 0)
			field(&pk, r, keys[i], m);
	if (m->dup != NULL)
		field(&pk, r, m->dup, m);
}

/* Decode a hand-made map: the return value and the message. */
static int
decode_mut(const Mutation *m, char *err, size_t errlen)
{
	Record r = {0}, out = {0};
	msgpack_sbuffer sb;
	int rc;

	fixture_record(&r, 4, 5);
	msgpack_sbuffer_init(&sb);
	pack_map(&sb, &r, m);
	err[0] = '\0';
	rc = record_decode(sb.data, sb.size, &out, err, errlen);
	if (rc == 0 && !record_same(&r, &out))
		rc = 99;
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
	record_free(&out);
	return rc;
}

TEST(round_trip)
{
	Record r = {0}, out = {0};
	msgpack_sbuffer sb;
	char err[256];
	uint64_t k;

	msgpack_sbuffer_init(&sb);
	/* Varying patch sizes: out's buffers are reused and resized. */
	for (k = 0; k < 6; k++) {
		fixture_record(&r, k, (uint32_t)(1 + 7 * k));
		msgpack_sbuffer_clear(&sb);
		CHECK(record_pack(&r, &sb, err, sizeof err) == 0, "%s", err);
		CHECK(record_decode(sb.data, sb.size, &out, err, sizeof err) == 0,
		    "record %llu: %s", (unsigned long long)k, err);
		CHECK(record_same(&r, &out), "record %llu differs",
		    (unsigned long long)k);
	}
	CHECK(out.label == r.label && out.gray == 1 && out.patch == 36,
	    "label %lld gray %u patch %u", (long long)out.label,
	    (unsigned)out.gray, (unsigned)out.patch);
	/* Extremes of the ranges. */
	r.id = UINT64_MAX;
	r.sample = UINT32_MAX;
	r.label = INT64_MAX;
	r.source[0] = '\0';
	msgpack_sbuffer_clear(&sb);
	CHECK(record_pack(&r, &sb, err, sizeof err) == 0, "%s", err);
	CHECK(record_decode(sb.data, sb.size, &out, err, sizeof err) == 0,
	    "%s", err);
	CHECK(record_same(&r, &out), "extreme record differs");
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
	record_free(&out);
}

TEST(stable_bytes)
{
	Record r = {0}, c = {0};
	msgpack_sbuffer a, b;
	char err[256];

	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	fixture_record(&r, 7, 4);
	record_copy(&c, &r);
	CHECK(c.source != r.source && c.pixels != r.pixels, "shallow copy");
	CHECK(record_pack(&r, &a, err, sizeof err) == 0, "%s", err);
	CHECK(record_pack(&c, &b, err, sizeof err) == 0, "%s", err);
	CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0,
	    "a copy packs to other bytes");
	/* The hand-written map of the man page is byte-identical. */
	msgpack_sbuffer_clear(&b);
	pack_map(&b, &r, &(Mutation){0});
	CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0,
	    "record_pack differs from the documented layout");
	/* 12 keys, a fixmap. */
	CHECK((unsigned char)a.data[0] == 0x8c, "first byte 0x%02x",
	    (unsigned char)a.data[0]);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	record_free(&r);
	record_free(&c);
	CHECK(r.source == NULL && r.pixels == NULL && r.patch == 0,
	    "record_free leaves state");
}

TEST(truncated)
{
	Record r = {0}, out = {0};
	msgpack_sbuffer sb;
	char err[256];
	size_t cut;
	int bad = 0;

	msgpack_sbuffer_init(&sb);
	fixture_record(&r, 2, 3);
	CHECK(record_pack(&r, &sb, err, sizeof err) == 0, "%s", err);
	for (cut = 0; cut < sb.size; cut++) {
		err[0] = '\0';
		if (record_decode(sb.data, cut, &out, err, sizeof err) != -1 ||
		    err[0] == '\0')
			bad++;
		// record_frame: "read more" at every cut
		bad += record_frame(sb.data, cut, err, sizeof err) != 0;
	}
	CHECK(record_frame(sb.data, sb.size, err, sizeof err) ==
	    (ptrdiff_t)sb.size, "whole record: %s", err);
	CHECK(bad == 0, "%d truncations accepted", bad);
	CHECK(record_decode(sb.data, sb.size / 2, &out, err, sizeof err) == -1 &&
	    strstr(err, "truncated") != NULL, "message: %s", err);
	/* Trailing bytes are refused too. */
	msgpack_sbuffer_write(&sb, "\xc0", 1);
	CHECK(record_decode(sb.data, sb.size, &out, err, sizeof err) == -1 &&
	    strstr(err, "after") != NULL, "trailing byte: %s", err);
	CHECK(record_frame(sb.data, sb.size, err, sizeof err) ==
	    (ptrdiff_t)sb.size - 1, "a record then more bytes");
	/* Not msgpack at all. */
	CHECK(record_decode("\xc1\xc1\xc1", 3, &out, err, sizeof err) == -1,
	    "0xc1 accepted");
	CHECK(out.source == NULL && out.pixels == NULL, "failed decodes wrote");
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
}

/* A container or string header claiming more than a record holds is
 * refused at its own bytes by record_frame, before msgpack reserves for
 * it (dd ff ff ff ff used to make rl-cat ask for 128 GB). */
TEST(frame_bounds)
{
	static const struct { const char *b; size_t n; } bad[] = {
		{"\xdd\xff\xff\xff\xff", 5},          /* array32 2^32-1 */
		{"\xdf\xff\xff\xff\xff", 5},          /* map32 */
		{"\xde\x02\x00", 3},                   /* map16 of 512 pairs */
		{"\x81\xa1k\xdc\x04\x01", 6},          /* nested 1025 */
		{"\xc6\xff\xff\xff\xff", 5},          /* bin32 4 GB */
		{"\xdb\x7f\xff\xff\xff", 5},          /* str32 2 GB */
		{"\xc1", 1},
	};
	Record out = {0};
	char err[256];

	for (size_t i = 0; i < RL_NELEM(bad); i++) {
		err[0] = '\0';
		CHECK(record_frame(bad[i].b, bad[i].n, err, sizeof err) == -1 &&
		    err[0], "bad %zu: not refused", i);
		CHECK(record_decode(bad[i].b, bad[i].n, &out, err,
		    sizeof err) == -1 && (strstr(err, "more than any record") ||
		    strstr(err, "not msgpack")), "decode %zu: %s", i, err);
	}
}

TEST(pixel_length)
{
	char err[256];

	CHECK(decode_mut(&(Mutation){ .pixdelta = -1 }, err, sizeof err) == -1 &&
	    strstr(err, "pixels") != NULL && strstr(err, "674") != NULL &&
	    strstr(err, "675") != NULL, "short bin: %s", err);
	CHECK(decode_mut(&(Mutation){ .pixdelta = 3 }, err, sizeof err) == -1 &&
	    strstr(err, "pixels") != NULL, "long bin: %s", err);
}

TEST(version)
{
	char err[256];

	CHECK(decode_mut(&(Mutation){ .version = 2 }, err, sizeof err) == -1 &&
	    strstr(err, "version 2") != NULL, "version 2: %s", err);
	/* A later version is refused first, whatever else it lacks. */
	CHECK(decode_mut(&(Mutation){ .version = 2, .skip = "pixels" }, err,
	    sizeof err) == -1 && strstr(err, "version 2") != NULL,
	    "version 2 without pixels: %s", err);
	CHECK(decode_mut(&(Mutation){ .skip = "version" }, err, sizeof err) ==
	    -1 && strstr(err, "'version' missing") != NULL, "%s", err);
}

TEST(missing_fields)
{
	char err[256];
	size_t i;

	for (i = 0; i < RL_NELEM(keys); i++) {
		int rc = decode_mut(&(Mutation){ .skip = keys[i] }, err,
		    sizeof err);

		if (strcmp(keys[i], "label") == 0) {
			/* Optional: absent means unknown, and record 4's
			 * label is known, so the decoded record differs. */
			CHECK(rc == 99, "no label: rc %d %s", rc, err);
			continue;
		}
		CHECK(rc == -1 && strstr(err, keys[i]) != NULL &&
		    strstr(err, "missing") != NULL, "without %s: rc %d '%s'",
		    keys[i], rc, err);
	}
}

TEST(types_and_ranges)
{
	Record r = {0};
	msgpack_sbuffer sb;
	char err[256];

	CHECK(decode_mut(&(Mutation){ .patch_as_str = 1 }, err, sizeof err) ==
	    -1 && strstr(err, "'patch': str, want uint") != NULL, "%s", err);
	CHECK(decode_mut(&(Mutation){ .dup = "id" }, err, sizeof err) == -1 &&
	    strstr(err, "twice") != NULL, "%s", err);
	CHECK(decode_mut(&(Mutation){ .label_neg = 1 }, err, sizeof err) == -1 &&
	    strstr(err, "label") != NULL, "%s", err);
	/* Forward compatible: an unknown key is skipped; float64 boxes
	 * (what Python writes) are read. */
	CHECK(decode_mut(&(Mutation){ .extra = 1 }, err, sizeof err) == 0,
	    "unknown key: %s", err);
	CHECK(decode_mut(&(Mutation){ .float64_boxes = 1 }, err, sizeof err) ==
	    0, "float64 boxes: %s", err);
	/* record_pack refuses a bad record and appends nothing. */
	msgpack_sbuffer_init(&sb);
	fixture_record(&r, 1, 2);
	r.gray = 2;
	CHECK(record_pack(&r, &sb, err, sizeof err) == -1 && sb.size == 0 &&
	    strstr(err, "gray") != NULL, "gray 2: %s", err);
	r.gray = 0;
	r.box[3][2] = r.box[3][0];
	CHECK(record_pack(&r, &sb, err, sizeof err) == -1 &&
	    strstr(err, "box 3") != NULL, "empty box: %s", err);
	fixture_record(&r, 1, RECORD_PATCH_MAX + 1);
	CHECK(record_pack(&r, &sb, err, sizeof err) == -1 &&
	    strstr(err, "patch") != NULL, "patch too big: %s", err);
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
}

TEST(failed_decode_keeps_record)
{
	Record r = {0}, out = {0};
	msgpack_sbuffer sb;
	char err[256];

	fixture_record(&r, 3, 6);
	record_copy(&out, &r);
	msgpack_sbuffer_init(&sb);
	fixture_record(&r, 8, 2);
	pack_map(&sb, &r, &(Mutation){ .pixdelta = 1 });
	CHECK(record_decode(sb.data, sb.size, &out, err, sizeof err) == -1,
	    "bad record accepted");
	fixture_record(&r, 3, 6);
	CHECK(record_same(&r, &out), "a failed decode changed the record");
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
	record_free(&out);
}

/* The committed stream tests/data/grid10.rec (used by the CLI tests) is
 * what this version writes: a change of encoding shows up here. */
TEST(committed_stream)
{
	Record r = {0};
	msgpack_sbuffer sb;
	char err[256], buf[8192];
	size_t len = 0;
	uint64_t k;
	FILE *fp;

	msgpack_sbuffer_init(&sb);
	for (k = 0; k < 10; k++) {
		fixture_record(&r, k, 4);
		CHECK(record_pack(&r, &sb, err, sizeof err) == 0, "%s", err);
	}
	if ((fp = fopen("tests/data/grid10.rec", "rb")) != NULL) {
		len = fread(buf, 1, sizeof buf, fp);
		fclose(fp);
	}
	CHECK(fp != NULL && len == sb.size && memcmp(buf, sb.data, len) == 0,
	    "tests/data/grid10.rec: %zu bytes, want %zu", len, sb.size);
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
}

int
main(void)
{
	RUN(round_trip);
	RUN(stable_bytes);
	RUN(truncated);
	RUN(frame_bounds);
	RUN(pixel_length);
	RUN(version);
	RUN(missing_fields);
	RUN(types_and_ranges);
	RUN(failed_decode_keeps_record);
	RUN(committed_stream);
	return check_summary();
}

/*
 * t_ckpt: safetensors round trip, every kind of malformed file refused with
 * a message naming the file, and atomic writes that never leave a temp file
 * or a partial file in place of a good one.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/ckpt.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

static char dir[256];

/* The path of name in the scratch directory, in buf (PATH_LEN bytes). */
#define PATH_LEN 512
static const char *
path_in(char *buf, const char *name)
{
	snprintf(buf, PATH_LEN, "%s/%s", dir, name);
	return buf;
}

/* Write 8-byte length + hdr (length hlen, or strlen if negative) + data. */
static void
raw_write(const char *path, uint64_t hlen, const char *hdr, size_t hdrbytes,
    const void *data, size_t ndata)
{
	FILE *fp = fopen(path, "wb");
	unsigned char len[8];

	for (int i = 0; i < 8; i++)
		len[i] = hlen >> (8 * i) & 0xff;
	fwrite(len, 1, 8, fp);
	fwrite(hdr, 1, hdrbytes, fp);
	if (ndata)
		fwrite(data, 1, ndata, fp);
	fclose(fp);
}

/* A file with this JSON header and ndata bytes of data. */
static void
json_file(const char *path, const char *hdr, size_t ndata)
{
	static const unsigned char zeros[64];

	raw_write(path, strlen(hdr), hdr, strlen(hdr), zeros, ndata);
}

/* ckpt_open refuses path with a message naming it, saying what, and how
 * to regenerate it. */
static void
refused(const char *path, const char *what)
{
	char err[CKPT_ERRLEN] = "";
	Ckpt *c = (Ckpt *)&c;

	CHECK(ckpt_open(&c, path, err, sizeof err) == -1, "%s: accepted", what);
	CHECK(c == NULL, "%s: *out not NULL", what);
	CHECK(strstr(err, path) != NULL, "no path in \"%s\"", err);
	CHECK(strstr(err, what) != NULL, "\"%s\" lacks \"%s\"", err, what);
	CHECK(strstr(err, "regenerate") != NULL, "no hint in \"%s\"", err);
}

/* The names of the files in dir, sorted, as "a b c". */
static void
dir_list(char *buf, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char names[16][256];
	int n = 0;

	buf[0] = '\0';
	while ((e = readdir(d)) && n < 16)
		if (e->d_name[0] != '.')
			snprintf(names[n++], 256, "%s", e->d_name);
	closedir(d);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char t[256];
				memcpy(t, names[i], 256);
				memcpy(names[i], names[j], 256);
				memcpy(names[j], t, 256);
			}
	for (int i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "",
		    names[i]);
}

static void
dir_clean(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_LEN];

	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			remove(path_in(p, e->d_name));
	closedir(d);
}

/* ------------------------------------------------------------------------ */

static float f32[6] = {-1, -0.5f, 0, 0.5f, 1, 1.5f};
static int64_t nbt = 123456789012LL;
static uint8_t u8[5] = {0, 1, 127, 128, 255};
static int64_t i64[3] = {-1, INT64_MAX, INT64_MIN};
static double f64[4] = {1e-300, -2.5, 3.25, 1e300};
static int32_t i32[3] = {-7, 0, 7};

static const struct {
	const char *name;
	CkptDtype dtype;
	int ndim;
	int64_t shape[4];
	const void *data;
} rt[] = {
	{"conv1.weight", CKPT_F32, 4, {2, 3, 1, 1}, f32},
	{"bn1.num_batches_tracked", CKPT_I64, 0, {0}, &nbt},
	{"bytes", CKPT_U8, 1, {5}, u8},
	{"misaligned.i64", CKPT_I64, 1, {3}, i64},   /* offset 37 */
	{"d", CKPT_F64, 2, {2, 2}, f64},
	{"empty", CKPT_F32, 2, {0, 4}, f32},
	{"optim.momentum.conv1.weight", CKPT_I32, 1, {3}, i32},
};

static const char config[] = "{\"lr\": 0.2, \"name\": \"a \\\"q\\\" \xc3\xbc\"}";

/* The round-trip file, written by the module. */
static void
write_good(const char *path)
{
	CkptWriter *w;
	char err[CKPT_ERRLEN];
	int rc = 0;

	ckpt_writer_create(&w);
	for (size_t i = 0; i < RL_NELEM(rt); i++)
		rc |= ckpt_writer_add(w, rt[i].name, rt[i].dtype, rt[i].ndim,
		    rt[i].shape, rt[i].data, err, sizeof err);
	rc |= ckpt_writer_meta(w, "arch", "resnet50", err, sizeof err);
	rc |= ckpt_writer_meta(w, "step", "1200", err, sizeof err);
	rc |= ckpt_writer_meta(w, "config", config, err, sizeof err);
	rc |= ckpt_writer_meta(w, "step", "1300", err, sizeof err);
	CHECK(rc == 0, "building: %s", err);
	CHECK(ckpt_writer_write(w, path, err, sizeof err) == 0, "%s", err);
	ckpt_writer_free(w);
}

TEST(round_trip)
{
	char p[PATH_LEN], err[CKPT_ERRLEN], hdr[4096];
	unsigned char len[8];
	uint64_t hlen = 0;
	const char *k, *v;
	FILE *fp;
	Ckpt *c;

	write_good(path_in(p, "rt.safetensors"));
	/* the layout: LE length, JSON from '{', data 8-aligned */
	fp = fopen(p, "rb");
	CHECK(fp && fread(len, 1, 8, fp) == 8, "short file");
	for (int i = 0; i < 8; i++)
		hlen |= (uint64_t)len[i] << (8 * i);
	CHECK(hlen % 8 == 0 && hlen < sizeof hdr, "header length %llu",
	    (unsigned long long)hlen);
	CHECK(fread(hdr, 1, hlen, fp) == hlen && hdr[0] == '{', "header");
	fclose(fp);

	if (ckpt_open(&c, p, err, sizeof err)) {
		CHECK(0, "%s", err);
		return;
	}
	CHECK(ckpt_ntensors(c) == RL_NELEM(rt), "%zu tensors",
	    ckpt_ntensors(c));
	for (size_t i = 0; i < RL_NELEM(rt) && i < ckpt_ntensors(c); i++) {
		const CkptTensor *t = ckpt_tensor(c, i);
		size_t count = 1;
		CHECK(!strcmp(t->name, rt[i].name), "order: %s at %zu", t->name,
		    i);
		CHECK(ckpt_find(c, rt[i].name) == t, "find %s", rt[i].name);
		CHECK(t->dtype == rt[i].dtype && t->ndim == rt[i].ndim, "%s",
		    t->name);
		for (int d = 0; d < t->ndim; d++) {
			CHECK(t->shape[d] == rt[i].shape[d], "%s dim %d", t->name, d);
			count *= rt[i].shape[d];
		}
		CHECK(t->count == count, "%s count %zu", t->name, t->count);
		CHECK(t->nbytes == count * ckpt_dtype_size(t->dtype), "%s",
		    t->name);
		CHECK(memcmp(t->data, rt[i].data, t->nbytes) == 0, "%s data",
		    t->name);
		CHECK((uintptr_t)t->data % ckpt_dtype_size(t->dtype) == 0,
		    "%s misaligned", t->name);
	}
	CHECK(ckpt_find(c, "nope") == NULL && ckpt_find(c, "") == NULL, "find");
	CHECK(ckpt_tensor(c, RL_NELEM(rt)) == NULL, "past the end");
	CHECK(ckpt_nmeta(c) == 3, "%zu metadata", ckpt_nmeta(c));
	CHECK(ckpt_meta(c, "step") && !strcmp(ckpt_meta(c, "step"), "1300"),
	    "step replaced");
	CHECK(ckpt_meta(c, "config") && !strcmp(ckpt_meta(c, "config"),
	    config), "config");
	CHECK(ckpt_meta(c, "epoch") == NULL, "no epoch");
	ckpt_meta_at(c, 0, &k, &v);
	CHECK(!strcmp(k, "arch") && !strcmp(v, "resnet50"), "meta 0 %s", k);
	CHECK(!strcmp(ckpt_path(c), p), "path");
	ckpt_close(c);
}

TEST(empty_file)
{
	char p[PATH_LEN], err[CKPT_ERRLEN];
	CkptWriter *w;
	Ckpt *c;

	path_in(p, "empty.safetensors");
	ckpt_writer_create(&w);
	CHECK(ckpt_writer_write(w, p, err, sizeof err) == 0, "%s", err);
	ckpt_writer_free(w);
	CHECK(ckpt_open(&c, p, err, sizeof err) == 0, "%s", err);
	if (c) {
		CHECK(ckpt_ntensors(c) == 0 && ckpt_nmeta(c) == 0, "not empty");
		ckpt_close(c);
	}
}

TEST(writer_refuses)
{
	char err[CKPT_ERRLEN];
	int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-2};
	CkptWriter *w;

	ckpt_writer_create(&w);
	CHECK(ckpt_writer_add(w, "a", CKPT_F32, 1, shape, f32, err,
	    sizeof err) == 0, "%s", err);
	CHECK(ckpt_writer_add(w, "a", CKPT_F32, 1, shape, f32, err,
	    sizeof err) == -1 && strstr(err, "twice"), "duplicate");
	CHECK(ckpt_writer_add(w, "", CKPT_F32, 1, shape, f32, err,
	    sizeof err) == -1, "empty name");
	CHECK(ckpt_writer_add(w, "__metadata__", CKPT_F32, 1, shape, f32, err,
	    sizeof err) == -1, "__metadata__");
	CHECK(ckpt_writer_add(w, "b", CKPT_F32, 9, shape, f32, err,
	    sizeof err) == -1, "ndim 9");
	CHECK(ckpt_writer_add(w, "b", CKPT_F32, 1, neg, f32, err,
	    sizeof err) == -1, "negative size");
	CHECK(ckpt_writer_add(w, "\xff\xfe", CKPT_F32, 1, shape, f32, err,
	    sizeof err) == -1, "not UTF-8");
	CHECK(ckpt_writer_meta(w, "k", "\xff", err, sizeof err) == -1,
	    "metadata not UTF-8");
	ckpt_writer_free(w);
}

TEST(expect)
{
	char p[PATH_LEN], err[CKPT_ERRLEN], want[CKPT_ERRLEN];
	int64_t good[4] = {2, 3, 1, 1}, wrong[2] = {3, 2};
	Ckpt *c;

	path_in(p, "rt.safetensors");
	if (ckpt_open(&c, p, err, sizeof err)) {
		CHECK(0, "%s", err);
		return;
	}
	CHECK(ckpt_expect(c, "conv1.weight", CKPT_F32, 4, good, err,
	    sizeof err) == ckpt_find(c, "conv1.weight")->data, "%s", err);
	CHECK(ckpt_expect(c, "bn1.num_batches_tracked", CKPT_I64, 0, NULL,
	    err, sizeof err) != NULL, "%s", err);
	CHECK(ckpt_expect(c, "conv1.weight", CKPT_F32, 2, wrong, err,
	    sizeof err) == NULL, "wrong shape accepted");
	snprintf(want, sizeof want, "%s: conv1.weight: shape [2,3,1,1] in "
	    "file, [3,2] expected", p);
	CHECK(!strcmp(err, want), "\"%s\"", err);
	CHECK(ckpt_expect(c, "bn1.num_batches_tracked", CKPT_F32, 0, NULL,
	    err, sizeof err) == NULL, "wrong dtype accepted");
	snprintf(want, sizeof want, "%s: bn1.num_batches_tracked: dtype I64 "
	    "in file, F32 expected", p);
	CHECK(!strcmp(err, want), "\"%s\"", err);
	CHECK(ckpt_expect(c, "bn1.num_batches_tracked", CKPT_I64, 1, good,
	    err, sizeof err) == NULL && strstr(err, "shape [] in file, [2] "
	    "expected"), "\"%s\"", err);
	CHECK(ckpt_expect(c, "fc.weight", CKPT_F32, 1, good, err,
	    sizeof err) == NULL && strstr(err, "fc.weight: no such tensor"),
	    "\"%s\"", err);
	ckpt_close(c);
}

TEST(bad_files)
{
	char p[PATH_LEN], q[PATH_LEN], err[CKPT_ERRLEN];
	unsigned char buf[4096];
	FILE *fp;
	Ckpt *c;
	size_t n;

	path_in(p, "bad.safetensors");
	fp = fopen(p, "wb");
	fputs("abc", fp);
	fclose(fp);
	refused(p, "shorter than the 8-byte");
	raw_write(p, 1000, "{}      ", 8, NULL, 0);
	refused(p, "runs past the end of the file");
	raw_write(p, UINT64_MAX, "{}      ", 8, NULL, 0);
	refused(p, "over the 100000000-byte limit");

	/* truncate a good file: in the data, then in the header */
	write_good(path_in(q, "rt.safetensors"));
	fp = fopen(q, "rb");
	n = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	fp = fopen(p, "wb");
	fwrite(buf, 1, n - 4, fp);
	fclose(fp);
	refused(p, "run past the");
	refused(p, "truncated");
	fp = fopen(p, "wb");
	fwrite(buf, 1, 40, fp);
	fclose(fp);
	refused(p, "runs past the end of the file");

	json_file(p, "{\"a\": ", 0);
	refused(p, "header JSON");
	json_file(p, "[1, 2]", 0);
	refused(p, "does not start with '{'");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], "
	    "\"data_offsets\": [0, 4]}} x", 4);
	refused(p, "header JSON");
	json_file(p, "{\"a\": 3}", 0);
	refused(p, "not an object");
	json_file(p, "{\"a\": {\"dtype\": \"F16\", \"shape\": [2], "
	    "\"data_offsets\": [0, 4]}}", 4);
	refused(p, "dtype F16 unsupported");
	json_file(p, "{\"a\": {\"shape\": [2], \"data_offsets\": [0, 4]}}", 4);
	refused(p, "no dtype");
	/* dtype and shape against the byte length */
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], "
	    "\"data_offsets\": [0, 12]}}", 12);
	refused(p, "a: dtype F32 and shape [2,2] do not fit data_offsets "
	    "[0,12]");
	json_file(p, "{\"a\": {\"dtype\": \"I64\", \"shape\": [], "
	    "\"data_offsets\": [0, 4]}}", 4);
	refused(p, "do not fit");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], "
	    "\"data_offsets\": [0, 4]}}", 4);
	refused(p, "shape is not");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], "
	    "\"data_offsets\": [0, 4]}}", 4);
	refused(p, "shape is not");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,"
	    "1,1], \"data_offsets\": [0, 4]}}", 4);
	refused(p, "shape is not");
	json_file(p, "{\"a\": {\"dtype\": \"U8\", \"shape\": [4294967296, "
	    "4294967296], \"data_offsets\": [0, 4]}}", 4);
	refused(p, "do not fit");
	/* offsets */
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], "
	    "\"data_offsets\": [8, 0]}}", 8);
	refused(p, "data_offsets is not");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], "
	    "\"data_offsets\": [0, 8, 9]}}", 8);
	refused(p, "data_offsets is not");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], "
	    "\"data_offsets\": [0, 8]}}", 4);
	refused(p, "a: data_offsets [0,8] run past the 4 bytes of data");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], "
	    "\"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": "
	    "[2], \"data_offsets\": [4, 12]}}", 12);
	refused(p, "b: data_offsets [4,12] overlap a");
	json_file(p, "{\"b\": {\"dtype\": \"F32\", \"shape\": [1], "
	    "\"data_offsets\": [8, 12]}, \"a\": {\"dtype\": \"F32\", \"shape\": "
	    "[1], \"data_offsets\": [0, 4]}}", 12);
	refused(p, "b: a gap of 4 bytes");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], "
	    "\"data_offsets\": [0, 4]}}", 8);
	refused(p, "4 bytes of data after the last tensor");
	json_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], "
	    "\"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", \"shape\": "
	    "[1], \"data_offsets\": [4, 8]}}", 8);
	refused(p, "duplicate");
	json_file(p, "{\"\": {\"dtype\": \"F32\", \"shape\": [1], "
	    "\"data_offsets\": [0, 4]}}", 4);
	refused(p, "empty name");
	json_file(p, "{\"__metadata__\": {\"step\": 3}}", 0);
	refused(p, "value of \"step\" is not a string");
	json_file(p, "{\"__metadata__\": [1]}", 0);
	refused(p, "__metadata__ is not an object");

	CHECK(ckpt_open(&c, dir, err, sizeof err) == -1 &&
	    strstr(err, "not a regular file"), "\"%s\"", err);
	/* a missing file: the system's reason, no hint */
	CHECK(ckpt_open(&c, path_in(q, "missing"), err, sizeof err) == -1 &&
	    strstr(err, "missing: No such file") && !strstr(err, "regenerate"),
	    "\"%s\"", err);
	/* a file padded like ours but with the header's trailing spaces
	 * counted is still good */
	json_file(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
	    "\"data_offsets\":[0,1]}}      ", 1);
	CHECK(ckpt_open(&c, p, err, sizeof err) == 0, "%s", err);
	ckpt_close(c);
}

TEST(atomic_write)
{
	char good[PATH_LEN], q[PATH_LEN], err[CKPT_ERRLEN], names[1024];
	int64_t big = 1 << 18;
	float *data = ecalloc(big, sizeof *data);
	struct rlimit rl, small;
	CkptWriter *w;
	Ckpt *c;

	dir_clean();
	write_good(path_in(good, "good.safetensors"));
	dir_list(names, sizeof names);
	CHECK(!strcmp(names, "good.safetensors"), "after a write: %s", names);

	/* into a directory that does not exist: a clean error */
	ckpt_writer_create(&w);
	ckpt_writer_add(w, "x", CKPT_F32, 1, &big, data, err, sizeof err);
	CHECK(ckpt_writer_write(w, path_in(q, "nodir/x.safetensors"), err,
	    sizeof err) == -1, "wrote into a missing directory");
	CHECK(strstr(err, "nodir/x.safetensors") && strstr(err, "No such"),
	    "\"%s\"", err);

	/* onto a directory: the rename fails, the temp file goes */
	mkdir(path_in(q, "adir"), 0755);
	CHECK(ckpt_writer_write(w, q, err, sizeof err) == -1,
	    "replaced a directory");
	dir_list(names, sizeof names);
	CHECK(!strcmp(names, "adir good.safetensors"), "left: %s", names);

	/* a write that fails half-way (file size limit) leaves the old file */
	getrlimit(RLIMIT_FSIZE, &rl);
	small = rl;
	small.rlim_cur = 65536;
	signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit");
	CHECK(ckpt_writer_write(w, good, err, sizeof err) == -1,
	    "wrote 1 MiB under a 64 KiB limit");
	setrlimit(RLIMIT_FSIZE, &rl);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(strstr(err, good) && strstr(err, "too large"), "\"%s\"", err);
	dir_list(names, sizeof names);
	CHECK(!strcmp(names, "adir good.safetensors"), "left: %s", names);
	CHECK(ckpt_open(&c, good, err, sizeof err) == 0, "old file: %s", err);
	if (c) {
		CHECK(ckpt_find(c, "conv1.weight") && !ckpt_find(c, "x"),
		    "old file replaced");
		ckpt_close(c);
	}

	/* and the same writer then succeeds */
	CHECK(ckpt_writer_write(w, good, err, sizeof err) == 0, "%s", err);
	CHECK(ckpt_open(&c, good, err, sizeof err) == 0, "%s", err);
	if (c) {
		CHECK(ckpt_find(c, "x") && ckpt_find(c, "x")->count ==
		    (size_t)big, "new file");
		ckpt_close(c);
	}
	ckpt_writer_free(w);
	rmdir(path_in(q, "adir"));
	free(data);
}

/* The committed reference data (tests/ref/README) reads back, and its
 * layouts are as documented: NCHW activations, [out, in] linear weights. */
static void
ref_check(const char *path, int64_t B, int64_t C, int64_t K)
{
	char err[CKPT_ERRLEN];
	int64_t gs[2] = {B, C}, ls[2] = {B, K}, ws[2] = {K, C};
	const CkptTensor *l4;
	const float *gap, *logits, *w, *b;
	const int64_t *n0, *n1;
	Ckpt *c;

	if (ckpt_open(&c, path, err, sizeof err)) {
		CHECK(0, "%s", err);
		return;
	}
	n0 = ckpt_expect(c, "bn1.num_batches_tracked", CKPT_I64, 0, NULL, err,
	    sizeof err);
	n1 = ckpt_expect(c, "updated.bn1.num_batches_tracked", CKPT_I64, 0,
	    NULL, err, sizeof err);
	CHECK(n0 && n1 && *n0 == 5 && *n1 == 6, "num_batches_tracked");
	CHECK(ckpt_expect(c, "train.loss", CKPT_F32, 0, NULL, err, sizeof err),
	    "%s", err);
	l4 = ckpt_find(c, "eval.layer4");
	gap = ckpt_expect(c, "eval.gap", CKPT_F32, 2, gs, err, sizeof err);
	logits = ckpt_expect(c, "eval.logits", CKPT_F32, 2, ls, err,
	    sizeof err);
	w = ckpt_expect(c, "head.fc.weight", CKPT_F32, 2, ws, err, sizeof err);
	b = ckpt_expect(c, "head.fc.bias", CKPT_F32, 1, &K, err, sizeof err);
	CHECK(l4 && l4->ndim == 4 && l4->shape[0] == B && l4->shape[1] == C &&
	    gap && logits && w && b, "%s: %s", path, err);
	if (!(l4 && l4->ndim == 4 && gap && logits && w && b)) {
		ckpt_close(c);
		return;
	}
	for (int64_t n = 0; n < B; n++) {
		int64_t hw = l4->shape[2] * l4->shape[3];
		const float *x = (const float *)l4->data + n * C * hw;
		for (int64_t ch = 0; ch < C; ch++) {
			double m = 0;
			for (int64_t i = 0; i < hw; i++)
				m += x[ch * hw + i];
			CHECK_NEAR(gap[n * C + ch], m / hw, 1e-6, 1e-5);
		}
		for (int64_t k = 0; k < K; k++) {
			double z = b[k];
			for (int64_t ch = 0; ch < C; ch++)
				z += w[k * C + ch] * gap[n * C + ch];
			CHECK_NEAR(logits[n * K + k], z, 1e-5, 1e-5);
		}
	}
	ckpt_close(c);
}

TEST(ref_files)
{
	int64_t u8[4] = {1, 3, 224, 224}, f1[2] = {1, 288};
	char err[CKPT_ERRLEN];
	Ckpt *c;

	ref_check("tests/ref/basic.safetensors", 4, 16, 5);
	ref_check("tests/ref/bottleneck.safetensors", 2, 64, 5);
	if (ckpt_open(&c, "tests/ref/bottleneck.safetensors", err, sizeof err))
		return;
	CHECK(ckpt_expect(c, "pool.input_u8", CKPT_U8, 4, u8, err, sizeof err),
	    "%s", err);
	CHECK(ckpt_expect(c, "pool.feat1", CKPT_F32, 2, f1, err, sizeof err),
	    "%s", err);
	CHECK(ckpt_meta(c, "pool_specs") != NULL, "no pool_specs");
	ckpt_close(c);
}

int
main(void)
{
	th_scratch_dir(dir, sizeof dir, "t_ckpt");
	RUN(round_trip);
	RUN(empty_file);
	RUN(writer_refuses);
	RUN(expect);
	RUN(bad_files);
	RUN(atomic_write);
	RUN(ref_files);
	dir_clean();
	rmdir(dir);
	return check_summary();
}

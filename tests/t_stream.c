/*
 * t_stream: the same records through a file, LMDB and ZeroMQ (common/
 * stream.c, common/store.c), with real files, a real LMDB environment and
 * real sockets on 127.0.0.1 (ephemeral ports). Also: a map that must grow,
 * the metadata entry and count, a crash between batches, a truncated
 * stream, a full device, a ZeroMQ source with no sender (a timeout), two
 * senders, and a sender that vanishes without its end-of-stream marker.
 * Hostile peers: oversized, garbage and empty frames, a stray marker,
 * too many bad frames, a wrong CURVE key; host names and the loopback
 * rule.
 *
 * `t_stream --push endpoint frame...` is a hostile peer for the CLI
 * tests: it connects a raw PUSH and sends each frame: "empty", "garbage",
 * "big" (64 MiB) or "file:PATH" (the file's bytes as one frame).
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "common/curve.h"
#include "common/store.h"
#include "common/stream.h"
#include "tests/check.h"
#include "tests/helpers.h"
#include "tests/record_fixture.h"

#define N 100

static char tmpdir[512];

static const char *
tmp(const char *name)
{
	return th_path(tmpdir, name);
}

/* Put records first .. first+n-1 (patch p) into s; 0 or -1. */
static int
put_range(RecordSink *s, uint64_t first, uint64_t n, uint32_t p)
{
	Record r = {0};
	char err[256];
	uint64_t k;
	int rc = 0;

	for (k = first; k < first + n && rc == 0; k++) {
		fixture_record(&r, k, p);
		if ((rc = sink_put(s, &r, err, sizeof err)) == -1)
			fprintf(stderr, "sink_put: %s\n", err);
	}
	record_free(&r);
	return rc;
}

/* Read s to its end; count the records equal to fixture records
 * first..first+n-1 in order. Returns source_next's final value. */
static int
read_all(RecordSource *s, uint64_t first, uint32_t p, uint64_t *same,
    uint64_t *got, char *err, size_t errlen)
{
	Record r = {0}, want = {0};
	int rc;

	*same = *got = 0;
	while ((rc = source_next(s, &r, err, errlen)) == 1) {
		fixture_record(&want, first + *got, p);
		*same += record_same(&r, &want);
		++*got;
	}
	record_free(&r);
	record_free(&want);
	return rc;
}

/* The bytes of records first..first+n-1 concatenated (the stream). */
static void
expected_bytes(msgpack_sbuffer *sb, uint64_t first, uint64_t n, uint32_t p)
{
	Record r = {0};
	char err[256];
	uint64_t k;

	for (k = first; k < first + n; k++) {
		fixture_record(&r, k, p);
		if (record_pack(&r, sb, err, sizeof err) == -1)
			fprintf(stderr, "record_pack: %s\n", err);
	}
	record_free(&r);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*len = 0;
	if (fp == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0) {
		buf = emalloc((size_t)n + 1);
		*len = fread(buf, 1, (size_t)n, fp);
	}
	fclose(fp);
	return buf;
}

// ---- file

TEST(file_round_trip)
{
	RecordSink *k;
	RecordSource *s;
	msgpack_sbuffer sb;
	uint64_t same, got;
	char err[256], *bytes;
	size_t len;

	CHECK(sink_open(&k, STREAM_FILE, tmp("a.rec"), NULL, err, sizeof err) ==
	    0, "%s", err);
	CHECK(put_range(k, 0, N, 6) == 0, "put");
	CHECK(sink_count(k) == N, "count %llu", (unsigned long long)sink_count(k));
	CHECK(sink_close(k, err, sizeof err) == 0, "%s", err);
	msgpack_sbuffer_init(&sb);
	expected_bytes(&sb, 0, N, 6);
	bytes = slurp(tmp("a.rec"), &len);
	CHECK(bytes != NULL && len == sb.size && memcmp(bytes, sb.data, len) == 0,
	    "file holds %zu bytes, want the %zu of the packed records", len,
	    sb.size);
	CHECK(source_open(&s, STREAM_FILE, tmp("a.rec"), NULL, err, sizeof err)
	    == 0, "%s", err);
	CHECK(read_all(s, 0, 6, &same, &got, err, sizeof err) == 0, "%s", err);
	CHECK(got == N && same == N, "got %llu, %llu same", (unsigned long long)got,
	    (unsigned long long)same);
	CHECK(source_count(s) == 0 && source_get(s, 0, &(Record){0}, err,
	    sizeof err) == -1, "random access on a file");
	source_close(s);
	free(bytes);
	msgpack_sbuffer_destroy(&sb);
}

TEST(file_truncated)
{
	RecordSource *s;
	msgpack_sbuffer sb;
	uint64_t same, got;
	char err[256];
	FILE *fp;

	msgpack_sbuffer_init(&sb);
	expected_bytes(&sb, 0, 5, 40);
	fp = fopen(tmp("t.rec"), "wb");
	CHECK(fp != NULL, "fopen");
	if (fp == NULL)
		return;
	fwrite(sb.data, 1, sb.size - 1000, fp);
	fclose(fp);
	CHECK(source_open(&s, STREAM_FILE, tmp("t.rec"), NULL, err, sizeof err)
	    == 0, "%s", err);
	CHECK(read_all(s, 0, 40, &same, &got, err, sizeof err) == -1 &&
	    strstr(err, "record 4") && strstr(err, "truncated") &&
	    strstr(err, "t.rec"), "rc, %s", err);
	CHECK(got == 4 && same == 4, "got %llu", (unsigned long long)got);
	err[0] = '\0';
	CHECK(source_next(s, &(Record){0}, err, sizeof err) == -1 &&
	    strstr(err, "truncated"), "not latched: %s", err);
	source_close(s);
	/* A corrupt byte where a record should start. */
	fp = fopen(tmp("c.rec"), "wb");
	fwrite(sb.data, 1, sb.size / 5, fp);
	fputc(0xc1, fp);
	fclose(fp);
	CHECK(source_open(&s, STREAM_FILE, tmp("c.rec"), NULL, err, sizeof err)
	    == 0, "%s", err);
	CHECK(read_all(s, 0, 40, &same, &got, err, sizeof err) == -1 &&
	    strstr(err, "record 1") && strstr(err, "corrupt"), "%s", err);
	source_close(s);
	msgpack_sbuffer_destroy(&sb);
}

TEST(file_full_device)
{
	RecordSink *k;
	Record r = {0};
	char err[256];
	int rc;

	if (access("/dev/full", W_OK) != 0) {
		printf("# no /dev/full, skipped\n");
		return;
	}
	CHECK(sink_open(&k, STREAM_FILE, "/dev/full", NULL, err, sizeof err) ==
	    0, "%s", err);
	/* Not a regular file: each record is written as it is put. */
	fixture_record(&r, 0, 4);
	err[0] = '\0';
	rc = sink_put(k, &r, err, sizeof err);
	CHECK(rc == -1 && strstr(err, "No space left") &&
	    strstr(err, "/dev/full"), "full device not reported: %s", err);
	CHECK(sink_put(k, &r, err, sizeof err) == -1 && sink_close(k, err,
	    sizeof err) == -1, "a failed sink goes on");
	record_free(&r);
}

/*
 * In a child whose files may not grow past limit bytes (RLIMIT_FSIZE, the
 * unprivileged stand-in for a full disk): put records 0..n-1 of patch p
 * into a sink; exit 0 if the failure was reported, naming where.
 */
static int
put_limited(StreamKind kind, const char *where, const StreamOptions *o,
    long limit, uint64_t n, uint32_t p)
{
	struct rlimit rl = { (rlim_t)limit, (rlim_t)limit };
	RecordSink *k;
	Record r = {0};
	char err[256] = "";
	uint64_t i;
	pid_t pid;
	int status = -1, rc = 0;

	if ((pid = fork()) == 0) {
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) == -1 ||
		    sink_open(&k, kind, where, o, err, sizeof err) == -1)
			_exit(2);
		for (i = 0; i < n && rc == 0; i++) {
			fixture_record(&r, i, p);
			rc = sink_put(k, &r, err, sizeof err);
		}
		if (rc == 0)
			rc = sink_close(k, err, sizeof err);
		fprintf(stderr, "# %s\n", err);
		/* LMDB turns the short write into EIO. */
		_exit(rc == -1 && (strstr(err, strerror(EFBIG)) ||
		    strstr(err, strerror(EIO))) && strstr(err, where) ? 0 : 1);
	}
	if (pid == -1 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

TEST(file_cut_to_whole_records)
{
	RecordSource *s;
	uint64_t same, got;
	char err[256];
	struct stat sb;

	CHECK(put_limited(STREAM_FILE, tmp("lim.rec"), NULL, 3000, 10, 4) == 0,
	    "the write error was not reported");
	CHECK(stat(tmp("lim.rec"), &sb) == 0 && sb.st_size > 0 &&
	    sb.st_size < 3000, "size %lld", (long long)sb.st_size);
	CHECK(source_open(&s, STREAM_FILE, tmp("lim.rec"), NULL, err, sizeof err)
	    == 0, "%s", err);
	CHECK(read_all(s, 0, 4, &same, &got, err, sizeof err) == 0, "not cut "
	    "at a record: %s", err);
	CHECK(got > 0 && got < 10 && same == got, "%llu records",
	    (unsigned long long)got);
	source_close(s);
}

// ---- LMDB

TEST(lmdb_full_disk)
{
	StreamOptions o = { .batch = 2 };
	RecordSource *s;
	uint64_t same, got;
	char err[256];

	/* 27 KiB records into files limited to 300 KB. */
	CHECK(put_limited(STREAM_LMDB, tmp("full"), &o, 300000, 40, 32) == 0,
	    "the write error was not reported");
	CHECK(source_open(&s, STREAM_LMDB, tmp("full"), NULL, err, sizeof err)
	    == 0, "%s", err);
	got = source_count(s);
	CHECK(got > 0 && got < 40 && got % 2 == 0, "count %llu",
	    (unsigned long long)got);
	CHECK(read_all(s, 0, 32, &same, &got, err, sizeof err) == 0 &&
	    same == got, "%s", err);
	source_close(s);
}

TEST(lmdb_round_trip_and_meta)
{
	StreamOptions o = { .batch = 7 };
	RecordSink *k;
	RecordSource *s;
	Record r = {0}, want = {0};
	uint64_t same, got, i;
	char err[256];
	json_t *j;
	int bad = 0;

	CHECK(sink_open(&k, STREAM_LMDB, tmp("db"), &o, err, sizeof err) == 0,
	    "%s", err);
	CHECK(sink_set_meta(k, "[1]", err, sizeof err) == -1, "array meta");
	CHECK(sink_set_meta(k, "{\"seed\": 42, \"sampler\": {\"n\": 3}}", err,
	    sizeof err) == 0, "%s", err);
	CHECK(put_range(k, 0, N, 6) == 0, "put");
	CHECK(sink_close(k, err, sizeof err) == 0, "%s", err);

	CHECK(source_open(&s, STREAM_LMDB, tmp("db"), NULL, err, sizeof err) ==
	    0, "%s", err);
	CHECK(source_count(s) == N, "count %llu",
	    (unsigned long long)source_count(s));
	j = source_meta(s) ? json_loads(source_meta(s), 0, NULL) : NULL;
	CHECK(j != NULL && json_integer_value(json_object_get(j, "seed")) == 42 &&
	    json_integer_value(json_object_get(j, "count")) == N &&
	    json_integer_value(json_object_get(j, "record_version")) ==
	    RECORD_VERSION && json_is_object(json_object_get(j, "sampler")),
	    "meta: %s", source_meta(s) ? source_meta(s) : "(none)");
	json_decref(j);
	/* Random access, out of order. */
	for (i = 0; i < N; i++) {
		uint64_t idx = (i * 37 + 11) % N;

		fixture_record(&want, idx, 6);
		if (source_get(s, idx, &r, err, sizeof err) == -1 ||
		    !record_same(&r, &want))
			bad++;
	}
	CHECK(bad == 0, "%d random reads wrong", bad);
	CHECK(source_get(s, N, &r, err, sizeof err) == -1 && strstr(err, "no "
	    "record"), "index N: %s", err);
	CHECK(read_all(s, 0, 6, &same, &got, err, sizeof err) == 0, "%s", err);
	CHECK(got == N && same == N, "got %llu same %llu",
	    (unsigned long long)got, (unsigned long long)same);
	source_close(s);

	/* A store is written once. */
	CHECK(sink_open(&k, STREAM_LMDB, tmp("db"), &o, err, sizeof err) == -1 &&
	    strstr(err, "already holds 100 records"), "%s", err);
	/* No records at all: still a valid store, count 0. */
	CHECK(sink_open(&k, STREAM_LMDB, tmp("empty"), NULL, err, sizeof err) ==
	    0 && sink_close(k, err, sizeof err) == 0, "%s", err);
	CHECK(source_open(&s, STREAM_LMDB, tmp("empty"), NULL, err, sizeof err)
	    == 0 && source_count(s) == 0 && source_next(s, &r, err,
	    sizeof err) == 0 && strstr(source_meta(s), "\"count\":0"),
	    "empty store: %s", err);
	source_close(s);
	CHECK(source_open(&s, STREAM_LMDB, tmp("none"), NULL, err, sizeof err)
	    == -1 && strstr(err, "none"), "missing store: %s", err);
	record_free(&r);
	record_free(&want);
}

TEST(lmdb_map_grows)
{
	StreamOptions o = { .batch = 16, .mapsize = 64 << 10 };
	RecordSink *k;
	RecordSource *s;
	Store *st;
	uint64_t same, got;
	char err[256];
	struct stat sb;

	/* 100 records of 27 KiB: 2.7 MB into a 64 KiB map. */
	CHECK(sink_open(&k, STREAM_LMDB, tmp("grow"), &o, err, sizeof err) == 0,
	    "%s", err);
	CHECK(put_range(k, 0, N, 32) == 0, "put");
	CHECK(sink_close(k, err, sizeof err) == 0, "%s", err);
	CHECK(stat(tmp("grow/data.mdb"), &sb) == 0 && sb.st_size > 2 << 20,
	    "data.mdb is %lld bytes", (long long)sb.st_size);
	CHECK(store_open(&st, tmp("grow"), err, sizeof err) == 0 &&
	    store_mapsize(st) >= (size_t)4 << 20, "map %zu", store_mapsize(st));
	store_close(st);
	CHECK(source_open(&s, STREAM_LMDB, tmp("grow"), NULL, err, sizeof err) ==
	    0, "%s", err);
	CHECK(read_all(s, 0, 32, &same, &got, err, sizeof err) == 0, "%s", err);
	CHECK(got == N && same == N, "got %llu same %llu",
	    (unsigned long long)got, (unsigned long long)same);
	source_close(s);
}

/* A writer that dies between batches leaves whole batches, and a
 * metadata count that matches them. */
TEST(lmdb_crash_between_batches)
{
	StreamOptions o = { .batch = 16 };
	RecordSink *k;
	RecordSource *s;
	char err[256];
	pid_t pid;
	int status = -1;

	pid = fork();
	if (pid == 0) {
		if (sink_open(&k, STREAM_LMDB, tmp("crash"), &o, err,
		    sizeof err) == -1 || put_range(k, 0, 40, 3) == -1)
			_exit(1);
		_exit(0);       /* no sink_close: 8 records never committed */
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0,
	    "child status %d", status);
	CHECK(source_open(&s, STREAM_LMDB, tmp("crash"), NULL, err, sizeof err)
	    == 0, "%s", err);
	CHECK(source_count(s) == 32, "count %llu",
	    (unsigned long long)source_count(s));
	CHECK(source_meta(s) != NULL && strstr(source_meta(s), "\"count\":32"),
	    "meta %s", source_meta(s) ? source_meta(s) : "(none)");
	source_close(s);
}

// ---- ZeroMQ

typedef struct {
	const char *ep;
	uint64_t first, n;
	uint32_t p;
	int delay_ms;           /* before connecting */
	const StreamOptions *o; /* NULL: the defaults */
	int rc;
	char err[256];
} Sender;

static void *
send_thread(void *arg)
{
	Sender *a = arg;
	RecordSink *k;

	a->rc = -1;
	if (a->delay_ms > 0)
		nanosleep(&(struct timespec){ a->delay_ms / 1000,
		    a->delay_ms % 1000 * 1000000L }, NULL);
	if (sink_open(&k, STREAM_ZMQ, a->ep, a->o, a->err, sizeof a->err) == -1)
		return NULL;
	if (put_range(k, a->first, a->n, a->p) == -1) {
		sink_close(k, NULL, 0);
		return NULL;
	}
	a->rc = sink_close(k, a->err, sizeof a->err);
	return NULL;
}

/* A bound PULL on an ephemeral loopback port; its endpoint in ep. */
static RecordSource *
bound_source(const StreamOptions *o, char *ep, size_t eplen)
{
	RecordSource *s;
	char err[256];

	if (source_open(&s, STREAM_ZMQ, "@tcp://127.0.0.1:*", o, err,
	    sizeof err) == -1) {
		CHECK(0, "%s", err);
		return NULL;
	}
	snprintf(ep, eplen, ">%s", source_name(s));
	return s;
}

TEST(zmq_round_trip)
{
	StreamOptions o = { .hwm = 8, .timeout_ms = 20000 };
	Sender a = { .first = 0, .n = N, .p = 6 };
	RecordSource *s;
	pthread_t t;
	uint64_t same, got;
	char err[256], ep[256];

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	CHECK(strncmp(ep, ">tcp://127.0.0.1:", 17) == 0 &&
	    strcmp(ep, ">tcp://127.0.0.1:*") != 0, "bound %s", ep);
	a.ep = ep;
	pthread_create(&t, NULL, send_thread, &a);
	CHECK(read_all(s, 0, 6, &same, &got, err, sizeof err) == 0, "%s", err);
	pthread_join(t, NULL);
	CHECK(a.rc == 0, "sender: %s", a.err);
	CHECK(got == N && same == N, "got %llu same %llu",
	    (unsigned long long)got, (unsigned long long)same);
	source_close(s);
}

TEST(zmq_two_senders)
{
	StreamOptions o = { .hwm = 4, .timeout_ms = 20000, .expect_ends = 2 };
	Sender a = { .first = 0, .n = 60, .p = 5 };
	Sender b = { .first = 1000, .n = 40, .p = 5 };
	RecordSource *s;
	Record r = {0}, want = {0};
	pthread_t ta, tb;
	char err[256], ep[256];
	int rc, from_a = 0, from_b = 0, wrong = 0;

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	/* Without a prefix a sink connects: the samplers' default. */
	a.ep = b.ep = ep + 1;
	pthread_create(&ta, NULL, send_thread, &a);
	pthread_create(&tb, NULL, send_thread, &b);
	while ((rc = source_next(s, &r, err, sizeof err)) == 1) {
		uint64_t k = (r.id - 1000000000000ULL) / 7;

		fixture_record(&want, k, 5);
		wrong += !record_same(&r, &want);
		if (k < 1000)
			from_a++;
		else
			from_b++;
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(rc == 0, "%s", err);
	CHECK(a.rc == 0 && b.rc == 0, "senders: %s / %s", a.err, b.err);
	CHECK(from_a == 60 && from_b == 40 && wrong == 0, "%d from a, %d from b, "
	    "%d wrong", from_a, from_b, wrong);
	source_close(s);
	record_free(&r);
	record_free(&want);
}

TEST(zmq_timeout)
{
	StreamOptions o = { .timeout_ms = 300 };
	RecordSource *s;
	char err[256], ep[256];
	double t0;
	int rc;

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	t0 = now_seconds();
	rc = source_next(s, &(Record){0}, err, sizeof err);
	t0 = now_seconds() - t0;
	CHECK(rc == -1 && strstr(err, "no record from tcp://127.0.0.1:") &&
	    strstr(err, "0.3 s"), "rc %d: %s", rc, err);
	CHECK(t0 >= 0.25 && t0 < 5, "waited %g s", t0);
	source_close(s);
}

/* A sink with a timeout and no receiver reports it, and so does its
 * close, after linger_ms, instead of blocking for ever. */
TEST(zmq_no_receiver)
{
	StreamOptions o = { .hwm = 2, .timeout_ms = 200, .linger_ms = 300 };
	RecordSink *k;
	Record r = {0};
	char err[256], ep[300];
	int i, rc = 0;
	double t0 = now_seconds();

	snprintf(ep, sizeof ep, "ipc://%s", tmp("nobody"));
	CHECK(sink_open(&k, STREAM_ZMQ, ep, &o, err, sizeof err) == 0, "%s",
	    err);
	fixture_record(&r, 0, 3);
	for (i = 0; i < 10 && rc == 0; i++)
		rc = sink_put(k, &r, err, sizeof err);
	CHECK(rc == -1 && strstr(err, "no receiver took a record in 0.2 s"),
	    "after %d puts: %s", i, err);
	CHECK(sink_close(k, err, sizeof err) == -1 && strstr(err, "end of the "
	    "stream"), "close: %s", err);
	CHECK(now_seconds() - t0 < 10, "took %g s", now_seconds() - t0);
	record_free(&r);
}

/* A sampler that dies: it connects, sends records, and goes away without
 * the end-of-stream marker. Reported at once, not after the timeout. */
TEST(zmq_dead_sender)
{
	StreamOptions o = { .timeout_ms = 30000 };
	RecordSource *s;
	Record r = {0};
	msgpack_sbuffer sb;
	void *ctx, *push;
	char err[256], ep[256];
	uint64_t k, got = 0;
	double t0;
	int rc, linger = 5000;

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	ctx = zmq_ctx_new();
	push = zmq_socket(ctx, ZMQ_PUSH);
	CHECK(zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger) == 0 &&
	    zmq_connect(push, ep + 1) == 0, "%s", zmq_strerror(errno));
	msgpack_sbuffer_init(&sb);
	for (k = 0; k < 3; k++) {
		msgpack_sbuffer_clear(&sb);
		expected_bytes(&sb, k, 1, 4);
		CHECK(zmq_send(push, sb.data, sb.size, 0) == (int)sb.size, "send");
	}
	zmq_close(push);
	zmq_ctx_term(ctx);
	t0 = now_seconds();
	while ((rc = source_next(s, &r, err, sizeof err)) == 1)
		got++;
	t0 = now_seconds() - t0;
	CHECK(rc == -1 && got == 3 && strstr(err, "disconnected"), "rc %d, "
	    "%llu records: %s", rc, (unsigned long long)got, err);
	CHECK(t0 < 10, "took %g s", t0);
	source_close(s);
	msgpack_sbuffer_destroy(&sb);
	record_free(&r);
}

/* A stray TCP connection (a port scanner) that never speaks ZMTP is not
 * a sender that died: the stream still ends cleanly. */
TEST(zmq_stray_connection)
{
	StreamOptions o = { .timeout_ms = 20000 };
	/* The sender comes after the disconnection grace period. */
	Sender a = { .first = 0, .n = 5, .p = 4, .delay_ms = 1200 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	RecordSource *s;
	pthread_t t;
	uint64_t same, got;
	char err[256], ep[256];
	int fd;

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	sa.sin_port = htons((uint16_t)atoi(strrchr(ep, ':') + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0,
	    "connect: %s", strerror(errno));
	(void)!write(fd, "GET / HTTP/1.0\r\n\r\n", 18);
	close(fd);
	a.ep = ep;
	pthread_create(&t, NULL, send_thread, &a);
	CHECK(read_all(s, 0, 4, &same, &got, err, sizeof err) == 0, "%s", err);
	pthread_join(t, NULL);
	CHECK(got == 5 && same == 5 && a.rc == 0, "got %llu: %s",
	    (unsigned long long)got, a.err);
	source_close(s);
}

/* A raw PUSH connected to ep (">tcp://..."), for frames no sink sends. */
static void *
raw_push(void **ctx, const char *ep)
{
	void *push;
	int linger = 5000;

	*ctx = zmq_ctx_new();
	push = zmq_socket(*ctx, ZMQ_PUSH);
	CHECK(zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger) == 0 &&
	    zmq_connect(push, ep + 1) == 0, "%s", zmq_strerror(errno));
	return push;
}

static long
rss_kb(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (fp != NULL && fgets(line, sizeof line, fp) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	return kb;
}

/*
 * A peer sends an end-of-stream marker before any record (a stray's
 * attempt to end the stream), garbage, a record, its marker, and a record
 * after it: the three bad frames are skipped and counted, and the stream
 * ends cleanly with the other sender's marker.
 * With one bad frame more than allowed the source fails, naming the peer.
 */
TEST(zmq_bad_frames)
{
	StreamOptions o = { .timeout_ms = 20000, .bad_max = 3,
	    .expect_ends = 2 };
	Record r = {0};
	Sender a = { .first = 0, .n = 5, .p = 4, .delay_ms = 300 };
	msgpack_sbuffer sb;
	RecordSource *s;
	pthread_t t;
	void *ctx, *push;
	uint64_t same, got;
	char err[256], ep[256];
	int rc;

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	push = raw_push(&ctx, ep);
	msgpack_sbuffer_init(&sb);
	expected_bytes(&sb, 0, 1, 4);
	CHECK(zmq_send(push, "", 0, 0) == 0 &&
	    zmq_send(push, "\xc1garbage", 8, 0) == 8 &&
	    zmq_send(push, sb.data, sb.size, 0) == (int)sb.size &&
	    zmq_send(push, "", 0, 0) == 0 &&
	    zmq_send(push, sb.data, sb.size, 0) == (int)sb.size, "send");
	a.ep = ep;
	pthread_create(&t, NULL, send_thread, &a);
	/* The stray's one good record comes first, then the sender's 5. */
	rc = source_next(s, &r, err, sizeof err);
	CHECK(rc == 1, "stray's record: %d %s", rc, err);
	record_free(&r);
	CHECK(read_all(s, 0, 4, &same, &got, err, sizeof err) == 0, "%s", err);
	pthread_join(t, NULL);
	CHECK(got == 5 && same == 5 && a.rc == 0, "got %llu: %s",
	    (unsigned long long)got, a.err);
	source_close(s);
	zmq_close(push);
	zmq_ctx_term(ctx);

	/* Four bad frames, one more than allowed. */
	o.expect_ends = 1;
	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	push = raw_push(&ctx, ep);
	for (int i = 0; i < 4; i++)
		CHECK(zmq_send(push, "\x92\x01", 2, 0) == 2, "send");
	rc = source_next(s, &(Record){0}, err, sizeof err);
	CHECK(rc == -1 && strstr(err, "sender 1 (127.0.0.1): not a record") &&
	    strstr(err, "4 bad frames, more than the 3 allowed"), "%d: %s", rc,
	    err);
	source_close(s);
	zmq_close(push);
	zmq_ctx_term(ctx);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * A 64 MiB frame, over any record, is dropped by libzmq from its header
 * (ZMQ_MAXMSGSIZE) without being buffered; the sender's records after it
 * still arrive. Its pages are never touched by the test, so the process
 * would grow by 64 MiB only if the receiver buffered it.
 */
TEST(zmq_oversized)
{
	StreamOptions o = { .timeout_ms = 20000 };
	Sender a = { .first = 0, .n = 5, .p = 4, .delay_ms = 500 };
	size_t big = (size_t)64 << 20;
	char *huge = calloc(1, big);
	RecordSource *s;
	pthread_t t;
	void *ctx, *push;
	uint64_t same, got;
	char err[256], ep[256];
	long rss0 = rss_kb();
	zmq_msg_t m;

	if ((s = bound_source(&o, ep, sizeof ep)) == NULL)
		return;
	push = raw_push(&ctx, ep);
	zmq_msg_init_data(&m, huge, big, NULL, NULL);
	CHECK(zmq_msg_send(&m, push, 0) == (int)big, "send");
	a.ep = ep;
	pthread_create(&t, NULL, send_thread, &a);
	CHECK(read_all(s, 0, 4, &same, &got, err, sizeof err) == 0, "%s", err);
	pthread_join(t, NULL);
	CHECK(got == 5 && same == 5, "got %llu", (unsigned long long)got);
	CHECK(rss_kb() - rss0 < 32 * 1024, "grew by %ld kB", rss_kb() - rss0);
	source_close(s);
	zmq_close(push);
	zmq_ctx_term(ctx);
	free(huge);
}

/*
 * CURVE: a source with its key and an allowed list takes a sender of an
 * allowed key; a sender of another key, and one without keys, are refused
 * at the handshake, and each sink says so at once instead of waiting.
 */
TEST(zmq_curve)
{
	StreamOptions so = { .timeout_ms = 20000 }, good = { 0 }, bad = { 0 },
	    none = { .linger_ms = 20000 };
	Sender a = { .first = 0, .n = 7, .p = 5, .o = &good };
	RecordSource *s;
	RecordSink *k;
	pthread_t t;
	uint64_t same, got;
	char err[256], ep[256], base[600], f[5][600];
	struct stat st;
	double t0;

	if (!curve_available()) {
		printf("# no CURVE in this libzmq: skipped\n");
		return;
	}
	snprintf(base, sizeof base, "%s", tmp("trainer"));
	CHECK(curve_keygen(base, NULL, err, sizeof err) == 0, "%s", err);
	CHECK(curve_keygen(tmp("s1"), "sampler-1", err, sizeof err) == 0,
	    "%s", err);
	CHECK(curve_keygen(tmp("s2"), NULL, err, sizeof err) == 0, "%s", err);
	CHECK(curve_keygen(tmp("s1"), NULL, err, sizeof err) == -1 &&
	    strstr(err, "exists"), "overwrote: %s", err);
	CHECK(stat(tmp("s1.key"), &st) == 0 && (st.st_mode & 0777) == 0600,
	    "mode %o", (unsigned)st.st_mode);
	/* tmp() has 4 buffers: keep the 5 names apart. */
	snprintf(f[0], sizeof f[0], "%s", tmp("trainer.key"));
	snprintf(f[1], sizeof f[1], "%s", tmp("trainer.pub"));
	snprintf(f[2], sizeof f[2], "%s", tmp("s1.key"));
	snprintf(f[3], sizeof f[3], "%s", tmp("s1.pub"));
	snprintf(f[4], sizeof f[4], "%s", tmp("s2.key"));
	so.key_file = f[0];
	so.allow_file = f[3];
	good.key_file = f[2];
	good.peer_file = f[1];
	bad.key_file = f[4];
	bad.peer_file = f[1];
	if ((s = bound_source(&so, ep, sizeof ep)) == NULL)
		return;

	t0 = now_seconds();
	CHECK(sink_open(&k, STREAM_ZMQ, ep, &bad, err, sizeof err) == 0, "%s",
	    err);
	CHECK(put_range(k, 0, 3, 5) == 0, "put");
	CHECK(sink_close(k, err, sizeof err) == -1 && strstr(err, "refused"),
	    "wrong key: %s", err);
	CHECK(sink_open(&k, STREAM_ZMQ, ep, &none, err, sizeof err) == 0, "%s",
	    err);
	CHECK(sink_close(k, err, sizeof err) == -1 && strstr(err, "refused"),
	    "no key: %s", err);
	CHECK(now_seconds() - t0 < 10, "took %g s", now_seconds() - t0);

	a.ep = ep;
	pthread_create(&t, NULL, send_thread, &a);
	CHECK(read_all(s, 0, 5, &same, &got, err, sizeof err) == 0, "%s", err);
	pthread_join(t, NULL);
	CHECK(got == 7 && same == 7 && a.rc == 0, "got %llu: %s",
	    (unsigned long long)got, a.err);
	source_close(s);

	/* Half-configured keys are refused when opened. */
	so.allow_file = NULL;
	CHECK(source_open(&s, STREAM_ZMQ, "@tcp://127.0.0.1:*", &so, err,
	    sizeof err) == -1 && strstr(err, "allowed"), "%s", err);
	chmod(f[2], 0644);
	CHECK(sink_open(&k, STREAM_ZMQ, ep, &good, err, sizeof err) == -1 &&
	    strstr(err, "chmod 600"), "%s", err);
}

/* A host name binds to its address; a non-loopback address needs keys
 * or insecure. */
TEST(zmq_hosts)
{
	StreamOptions o = { .timeout_ms = 100 }, in = { .insecure = 1 };
	RecordSource *s;
	char err[256];

	CHECK(source_open(&s, STREAM_ZMQ, "@localhost:*", &o, err,
	    sizeof err) == 0 && strncmp(source_name(s), "tcp://127.0.0.1:",
	    16) == 0, "localhost: %s", err);
	source_close(s);
	CHECK(source_open(&s, STREAM_ZMQ, "@tcp://*:*", &o, err,
	    sizeof err) == -1 && strstr(err, "not a loopback address"), "%s",
	    err);
	CHECK(source_open(&s, STREAM_ZMQ, "@tcp://*:*", &in, err,
	    sizeof err) == 0, "--insecure: %s", err);
	source_close(s);
	CHECK(source_open(&s, STREAM_ZMQ, "@nohost.invalid:5555", &o, err,
	    sizeof err) == -1 && strstr(err, "nohost.invalid"), "%s", err);
}

TEST(endpoints)
{
	char ep[128], err[128];
	int bind;

	CHECK(stream_endpoint("5555", 0, ep, sizeof ep, &bind, err, sizeof err)
	    == 0 && !bind && strcmp(ep, "tcp://127.0.0.1:5555") == 0, "%s", ep);
	CHECK(stream_endpoint("@5555", 0, ep, sizeof ep, &bind, err, sizeof err)
	    == 0 && bind && strcmp(ep, "tcp://127.0.0.1:5555") == 0, "%s", ep);
	CHECK(stream_endpoint(">gpu1:7000", 1, ep, sizeof ep, &bind, err,
	    sizeof err) == 0 && !bind && strcmp(ep, "tcp://gpu1:7000") == 0,
	    "%s", ep);
	CHECK(stream_endpoint("ipc:///tmp/x", 1, ep, sizeof ep, &bind, err,
	    sizeof err) == 0 && bind && strcmp(ep, "ipc:///tmp/x") == 0, "%s",
	    ep);
	CHECK(stream_endpoint("nonsense", 1, ep, sizeof ep, &bind, err,
	    sizeof err) == -1 && stream_endpoint("@", 1, ep, sizeof ep, &bind,
	    err, sizeof err) == -1, "bad endpoints accepted");
}

static void
free_frame(void *data, void *hint)
{
	(void)hint;
	free(data);
}

static int
push_frames(int argc, char **argv)
{
	void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH);
	int linger = 10000, rc = 0;
	size_t big = (size_t)64 << 20, len;
	char *data;
	zmq_msg_t m;

	if (zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger) == -1 ||
	    zmq_connect(push, argv[0]) == -1) {
		fprintf(stderr, "%s: %s\n", argv[0], zmq_strerror(errno));
		return 1;
	}
	for (int i = 1; i < argc && rc == 0; i++) {
		if (strcmp(argv[i], "empty") == 0)
			rc = zmq_send(push, "", 0, 0);
		else if (strcmp(argv[i], "garbage") == 0)
			rc = zmq_send(push, "\x85\xa7version\x01\xff", 11, 0);
		else if (strcmp(argv[i], "big") == 0) {
			zmq_msg_init_data(&m, calloc(1, big), big, free_frame,
			    NULL);
			rc = zmq_msg_send(&m, push, 0);
		} else if (strncmp(argv[i], "file:", 5) == 0 &&
		    (data = slurp(argv[i] + 5, &len)) != NULL) {
			rc = zmq_send(push, data, len, 0);
			free(data);
		} else
			rc = -1;
		rc = rc == -1 ? -1 : 0;
	}
	zmq_close(push);
	zmq_ctx_term(ctx);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--push") == 0)
		return push_frames(argc - 2, argv + 2);
	th_scratch_dir(tmpdir, sizeof tmpdir, "t_stream");
	RUN(file_round_trip);
	RUN(file_truncated);
	RUN(file_full_device);
	RUN(file_cut_to_whole_records);
	RUN(lmdb_round_trip_and_meta);
	RUN(lmdb_map_grows);
	RUN(lmdb_crash_between_batches);
	RUN(lmdb_full_disk);
	RUN(zmq_round_trip);
	RUN(zmq_two_senders);
	RUN(zmq_timeout);
	RUN(zmq_no_receiver);
	RUN(zmq_dead_sender);
	RUN(zmq_stray_connection);
	RUN(zmq_bad_frames);
	RUN(zmq_oversized);
	RUN(zmq_curve);
	RUN(zmq_hosts);
	RUN(endpoints);
	return check_summary();
}

/*
 * t_feed: the training input (common/feed.c) on a real LMDB and a real
 * record file: LMDB epochs are seeded permutations cut into whole steps
 * and a resumed feed gives the same batches; a stream passes through the
 * shuffle buffer (every record once, in a seeded order) and ends cleanly
 * with the unused tail reported; pixels are normalised as ToTensor +
 * Normalize; a patch side change and a too-small LMDB are refused.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/feed.h"
#include "common/stream.h"
#include "tests/check.h"
#include "tests/helpers.h"
#include "tests/record_fixture.h"

static char tmpdir[] = "/tmp/t_feed_XXXXXX";

static const char *
tmp(const char *name)
{
	return th_path(tmpdir, name);
}

/* Write n fixture records of patch p (the k-th of patch p2 when k == at). */
static void
write_records(StreamKind kind, const char *where, int n, uint32_t p,
    int at, uint32_t p2)
{
	RecordSink *s;
	Record r = {0};
	char err[512];

	if (sink_open(&s, kind, where, NULL, err, sizeof(err)) < 0) {
		CHECK(0, "sink_open: %s", err);
		return;
	}
	for (int k = 0; k < n; k++) {
		fixture_record(&r, k, k == at ? p2 : p);
		CHECK(sink_put(s, &r, err, sizeof(err)) == 0, "%s", err);
	}
	CHECK(sink_close(s, err, sizeof(err)) == 0, "%s", err);
	record_free(&r);
}

/* Read nsteps batches of f into idx (nsteps * batch); returns the number
 * read; *rc the last feed_next value. */
static int
read_steps(Feed *f, int nsteps, int batch, uint64_t *idx, float *x0,
    int *rc, char *err, size_t errlen)
{
	int s;

	for (s = 0; s < nsteps; s++) {
		FeedBatch *b;

		if ((*rc = feed_next(f, &b, NULL, err, errlen)) != 1)
			break;
		memcpy(idx + (size_t)s * batch, b->index,
		    batch * sizeof(uint64_t));
		if (x0 && s == 0)
			memcpy(x0, b->x, (size_t)batch *
			    record_pixel_bytes(feed_patch(f)) * sizeof(float));
		feed_release(f, b);
	}
	return s;
}

TEST(lmdb_epochs)
{
	enum { N = 37, B = 5, P = 4, STEPS = 14 };
	FeedConfig c = { 0 };
	Feed *f;
	uint64_t a[STEPS * B], b[STEPS * B];
	float x[B * 9 * P * P * 3];
	Record r = {0};
	char err[1024];
	int rc, seen[N], same = 1;

	write_records(STREAM_LMDB, tmp("db"), N, P, -1, 0);
	c.kind = STREAM_LMDB;
	c.where = tmp("db");
	c.batch = B;
	c.seed = 3;
	CHECK(feed_open(&f, &c, err, sizeof(err)) == 0, "%s", err);
	if (!f)
		return;
	CHECK(feed_count(f) == N && feed_steps_per_epoch(f) == 7 &&
	    feed_patch(f) == P, "count/steps/patch");
	CHECK(read_steps(f, STEPS, B, a, x, &rc, err, sizeof(err)) == STEPS,
	    "%s", err);
	feed_close(f);
	/* each epoch: 35 distinct records of 37 */
	for (int e = 0; e < 2; e++) {
		memset(seen, 0, sizeof(seen));
		for (int i = 0; i < 7 * B; i++) {
			uint64_t k = a[e * 7 * B + i];

			CHECK(k < N && !seen[k], "epoch %d: record %llu", e,
			    (unsigned long long)k);
			if (k < N)
				seen[k] = 1;
		}
	}
	for (int i = 0; i < 7 * B; i++)
		same &= a[i] == a[7 * B + i];
	CHECK(!same, "two epochs in the same order");
	/* the first image's pixels, normalised */
	fixture_record(&r, (uint32_t)a[0], P);
	for (int i = 0; i < 9 * P * P * 3; i++) {
		static const float mean[3] = { 0.485f, 0.456f, 0.406f };
		static const float sd[3] = { 0.229f, 0.224f, 0.225f };
		float want = ((float)r.pixels[i] / 255.0f - mean[i % 3]) /
		    sd[i % 3];

		if (x[i] != want) {
			CHECK(0, "pixel %d: %g, want %g", i, x[i], want);
			break;
		}
	}
	record_free(&r);

	/* resumed at step 9: the same batches as steps 9.. */
	c.start = 9;
	CHECK(feed_open(&f, &c, err, sizeof(err)) == 0, "%s", err);
	if (!f)
		return;
	CHECK(read_steps(f, STEPS - 9, B, b, NULL, &rc, err,
	    sizeof(err)) == STEPS - 9, "%s", err);
	CHECK(!memcmp(b, a + 9 * B, (STEPS - 9) * B * sizeof(uint64_t)),
	    "resumed order differs");
	feed_close(f);

	/* another seed, another order */
	c.start = 0;
	c.seed = 4;
	CHECK(feed_open(&f, &c, err, sizeof(err)) == 0, "%s", err);
	if (!f)
		return;
	read_steps(f, 1, B, b, NULL, &rc, err, sizeof(err));
	CHECK(memcmp(a, b, B * sizeof(uint64_t)) != 0, "seed ignored");
	feed_close(f);   /* with batches still prepared: must not hang */
}

TEST(lmdb_too_small)
{
	FeedConfig c = { 0 };
	Feed *f = NULL;
	char err[1024];

	write_records(STREAM_LMDB, tmp("small"), 3, 4, -1, 0);
	c.kind = STREAM_LMDB;
	c.where = tmp("small");
	c.batch = 4;
	CHECK(feed_open(&f, &c, err, sizeof(err)) < 0 &&
	    strstr(err, "fewer than one step"), "accepted: %s", err);
}

static void
stream_order(size_t shuffle, uint64_t *idx, int *nsteps, char *err,
    size_t errlen, int *rc)
{
	FeedConfig c = { 0 };
	Feed *f;

	c.kind = STREAM_FILE;
	c.where = tmp("recs");
	c.batch = 6;
	c.seed = 1;
	c.shuffle = shuffle;
	*nsteps = 0;
	if (feed_open(&f, &c, err, errlen) < 0) {
		CHECK(0, "%s", err);
		return;
	}
	*nsteps = read_steps(f, 100, 6, idx, NULL, rc, err, errlen);
	feed_close(f);
}

TEST(stream_shuffle)
{
	uint64_t a[600], b[600];
	char err[1024];
	int na, nb, rc, seen[40] = {0}, inorder = 1;

	write_records(STREAM_FILE, tmp("recs"), 40, 4, -1, 0);
	stream_order(8, a, &na, err, sizeof(err), &rc);
	CHECK(na == 6 && rc == 0, "%d steps, rc %d", na, rc);
	CHECK(strstr(err, "ended after 40 records; the last 4"), "%s", err);
	for (int i = 0; i < na * 6; i++) {
		CHECK(a[i] < 40 && !seen[a[i]], "record %llu",
		    (unsigned long long)a[i]);
		if (a[i] < 40)
			seen[a[i]] = 1;
		inorder &= a[i] == (uint64_t)i;
	}
	CHECK(!inorder, "not shuffled");
	stream_order(8, b, &nb, err, sizeof(err), &rc);
	CHECK(nb == na && !memcmp(a, b, na * 6 * sizeof(uint64_t)),
	    "not reproducible");
	stream_order(0, b, &nb, err, sizeof(err), &rc);
	for (int i = 0; i < nb * 6; i++)
		CHECK(b[i] == (uint64_t)i, "unshuffled %d: %llu", i,
		    (unsigned long long)b[i]);
}

TEST(patch_change)
{
	uint64_t a[600];
	char err[1024];
	int n, rc;

	write_records(STREAM_FILE, tmp("recs"), 30, 4, 20, 5);
	stream_order(0, a, &n, err, sizeof(err), &rc);
	CHECK(rc == -1 && strstr(err, "patch side 5"), "rc %d: %s", rc, err);
	CHECK(n == 3, "%d steps before the bad record", n);
}

int
main(void)
{
	char cmd[600];

	(void)record_same;      /* the fixture's; not needed here */
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(lmdb_epochs);
	RUN(lmdb_too_small);
	RUN(stream_shuffle);
	RUN(patch_change);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return check_summary();
}

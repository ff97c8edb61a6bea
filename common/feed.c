/*
 * feed: records to normalised batches on a thread of their own. See
 * feed.h. Every call into the record source (open, read, close) happens
 * on the feed's thread: an LMDB read transaction and a ZeroMQ socket then
 * never change threads.
 */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/feed.h"
#include "common/util.h"

enum { SLOT_FREE, SLOT_FULL, SLOT_TAKEN };

struct Feed {
	FeedConfig c;
	char where[512];
	RecordSource *src;
	int P;
	uint64_t count, ipe;          /* LMDB: records, steps per epoch */
	float lut[3][256];

	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	FeedBatch slot[FEED_NSLOT];
	int state[FEED_NSLOT];
	uint64_t nfill, ntake;        /* batches filled / taken */
	int ready;                    /* the thread opened the input */
	int end;                      /* 0 running, 1 clean end, -1 error */
	int stop, done, abandoned;
	char msg[1024];

	/* the thread's own */
	uint32_t *perm;
	uint64_t perm_epoch;
	Record *buf;                  /* shuffle buffer */
	size_t nbuf, cap;
	int src_end;                  /* the stream ended (rc 0 or -1) */
	int src_rc;
	char src_msg[1024];
	uint64_t nread, nout;         /* records read / given out */
	Record rec;
};

/* ImageNet statistics, as torchvision's Normalize gets them. */
static const float norm_mean[3] = { 0.485f, 0.456f, 0.406f };
static const float norm_std[3] = { 0.229f, 0.224f, 0.225f };

static void
make_lut(float lut[3][256])
{
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++) {
			// ToTensor: float division by 255; Normalize: sub, div
			float x = (float)v / 255.0f;

			lut[c][v] = (x - norm_mean[c]) / norm_std[c];
		}
}

/* Record r's pixels into image slot i of b. */
static void
convert(const Feed *f, FeedBatch *b, int i, const Record *r)
{
	size_t n = record_pixel_bytes(f->P) / 3;
	const uint8_t *px = r->pixels;
	float *x = b->x + (size_t)i * 3 * n;

	for (size_t k = 0; k < n; k++) {
		x[3 * k] = f->lut[0][px[3 * k]];
		x[3 * k + 1] = f->lut[1][px[3 * k + 1]];
		x[3 * k + 2] = f->lut[2][px[3 * k + 2]];
	}
}

static int
check_patch(Feed *f, const Record *r, char *err, size_t errlen)
{
	if ((int)r->patch != f->P) {
		snprintf(err, errlen, "%s: record %llu has patch side %u, not "
		    "%d like the first", f->where,
		    (unsigned long long)f->nread, r->patch, f->P);
		return -1;
	}
	return 0;
}

// ----------------------------------------------------------------------------
// LMDB epochs

static int
fill_lmdb(Feed *f, FeedBatch *b, char *err, size_t errlen)
{
	uint64_t step = b->step, epoch = step / f->ipe;
	uint64_t first = (step % f->ipe) * (uint64_t)f->c.step_images +
	    (uint64_t)f->c.first;

	if (!f->perm || f->perm_epoch != epoch) {
		Rng g;

		if (!f->perm)
			f->perm = emalloc(f->count * sizeof(uint32_t));
		for (uint64_t i = 0; i < f->count; i++)
			f->perm[i] = (uint32_t)i;
		rng_init(&g, f->c.seed, RNG_STREAM_SHUFFLE, epoch);
		rng_shuffle_u32(&g, f->perm, f->count);
		f->perm_epoch = epoch;
	}
	for (int i = 0; i < f->c.batch; i++) {
		uint64_t k = f->perm[first + i];

		if (source_get(f->src, k, &f->rec, err, errlen) < 0 ||
		    check_patch(f, &f->rec, err, errlen) < 0)
			return -1;
		convert(f, b, i, &f->rec);
		b->index[i] = k;
		f->nread++;
	}
	b->records = f->nread;
	return 1;
}

// ----------------------------------------------------------------------------
// streams through the shuffle buffer

/* Read one more record into buf[j] (j <= nbuf); 1, or 0/-1 at the end. */
static int
read_into(Feed *f, size_t j)
{
	int rc;

	if (f->src_end)
		return 0;
	if (j == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 16;
		f->buf = erealloc(f->buf, f->cap * sizeof(Record));
		memset(f->buf + j, 0, (f->cap - j) * sizeof(Record));
	}
	rc = source_next(f->src, &f->buf[j], f->src_msg, sizeof(f->src_msg));
	if (rc == 1 && check_patch(f, &f->buf[j], f->src_msg,
	    sizeof(f->src_msg)) < 0)
		rc = -1;
	if (rc != 1) {
		f->src_end = 1;
		f->src_rc = rc;
		return 0;
	}
	/* the record's input position rides in its id while buffered */
	f->buf[j].id = f->nread++;
	return 1;
}

static int
fill_stream(Feed *f, FeedBatch *b, char *err, size_t errlen)
{
	size_t want = f->c.shuffle > 1 ? f->c.shuffle : 1;

	for (int i = 0; i < f->c.batch; i++) {
		size_t j = 0;

		while (f->nbuf < want && read_into(f, f->nbuf))
			f->nbuf++;
		/* what was read before an input error is still used */
		if (f->nbuf == 0) {
			if (f->src_rc < 0) {
				snprintf(err, errlen, "%s", f->src_msg);
				return -1;
			}
			if (i > 0)
				snprintf(err, errlen, "%s: input ended after "
				    "%llu records; the last %d did not fill a "
				    "step", f->where,
				    (unsigned long long)f->nread, i);
			else
				snprintf(err, errlen, "%s: input ended after "
				    "%llu records", f->where,
				    (unsigned long long)f->nread);
			return 0;
		}
		if (f->nbuf > 1) {
			Rng g;

			rng_init(&g, f->c.seed, FEED_RNG_STREAM_BUFFER,
			    f->nout);
			j = (size_t)rng_below(&g, f->nbuf);
		}
		convert(f, b, i, &f->buf[j]);
		b->index[i] = f->buf[j].id;
		f->nout++;
		/* refill the place, or close the gap once the input ended */
		if (!read_into(f, j)) {
			Record t = f->buf[j];

			f->buf[j] = f->buf[f->nbuf - 1];
			f->buf[f->nbuf - 1] = t;
			f->nbuf--;
		}
	}
	b->records = f->nread;
	return 1;
}

// ----------------------------------------------------------------------------
// the thread

static void feed_destroy(Feed *f);

static int
open_input(Feed *f, char *err, size_t errlen)
{
	int rc;

	if (source_open(&f->src, f->c.kind, f->c.where, &f->c.sopt, err,
	    errlen) < 0)
		return -1;
	snprintf(f->where, sizeof(f->where), "%s", source_name(f->src));
	if (f->c.kind == STREAM_LMDB) {
		f->count = source_count(f->src);
		if (f->count < (uint64_t)f->c.step_images) {
			snprintf(err, errlen, "%s: %llu records, fewer than one "
			    "step of %d images", f->where,
			    (unsigned long long)f->count, f->c.step_images);
			return -1;
		}
		if (f->count > UINT32_MAX) {
			snprintf(err, errlen, "%s: more than 2^32 records",
			    f->where);
			return -1;
		}
		f->ipe = f->count / f->c.step_images;
		rc = source_get(f->src, 0, &f->rec, err, errlen);
		f->P = f->rec.patch;
	} else {
		f->buf = ecalloc(16, sizeof(Record));
		f->cap = 16;
		rc = source_next(f->src, &f->buf[0], err, errlen);
		if (rc == 0)
			snprintf(err, errlen, "%s: no records", f->where);
		if (rc == 1) {
			f->P = f->buf[0].patch;
			f->buf[0].id = f->nread++;
			f->nbuf = 1;
		}
		rc = rc == 1 ? 0 : -1;
	}
	if (rc == 0 && f->c.patch && f->P != f->c.patch) {
		snprintf(err, errlen, "%s: patch side %d, %d wanted", f->where,
		    f->P, f->c.patch);
		rc = -1;
	}
	return rc;
}

static void *
feed_thread(void *arg)
{
	Feed *f = arg;
	char err[1024];
	int rc, abandoned;

	rc = open_input(f, err, sizeof(err));
	pthread_mutex_lock(&f->mu);
	if (rc == 0) {
		size_t n = (size_t)f->c.batch * record_pixel_bytes(f->P);

		for (int k = 0; k < FEED_NSLOT; k++) {
			f->slot[k].x = emalloc_aligned(n * sizeof(float));
			f->slot[k].index = emalloc(f->c.batch *
			    sizeof(uint64_t));
		}
	} else {
		f->end = -1;
		snprintf(f->msg, sizeof(f->msg), "%s", err);
	}
	f->ready = 1;
	pthread_cond_broadcast(&f->cv);
	while (rc == 0) {
		int k = (int)(f->nfill % FEED_NSLOT);
		FeedBatch *b = &f->slot[k];

		while (!f->stop && f->state[k] != SLOT_FREE)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stop)
			break;
		b->step = f->c.start + f->nfill;
		pthread_mutex_unlock(&f->mu);
		if (f->c.kind == STREAM_LMDB)
			rc = fill_lmdb(f, b, err, sizeof(err));
		else
			rc = fill_stream(f, b, err, sizeof(err));
		pthread_mutex_lock(&f->mu);
		if (rc == 1) {
			f->state[k] = SLOT_FULL;
			f->nfill++;
			rc = 0;
		} else {
			f->end = rc == 0 ? 1 : -1;
			snprintf(f->msg, sizeof(f->msg), "%s", err);
			rc = -1;
		}
		pthread_cond_broadcast(&f->cv);
	}
	f->done = 1;
	pthread_cond_broadcast(&f->cv);
	abandoned = f->abandoned;
	pthread_mutex_unlock(&f->mu);
	if (abandoned)
		feed_destroy(f);
	return NULL;
}

// ----------------------------------------------------------------------------
// the trainer's side

int
feed_open(Feed **out, const FeedConfig *c, char *err, size_t errlen)
{
	Feed *f = ecalloc(1, sizeof(*f));
	sigset_t all, old;
	int rc;

	assert(c->batch >= 1);
	f->c = *c;
	if (!f->c.step_images)
		f->c.step_images = c->batch;
	assert(f->c.first >= 0 && f->c.first + c->batch <= f->c.step_images);
	snprintf(f->where, sizeof(f->where), "%s",
	    c->where && *c->where ? c->where : "<stdin>");
	f->c.where = c->where ? estrdup(c->where) : NULL;
	make_lut(f->lut);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	/* signals go to the caller's threads, never interrupt a read here */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&f->th, NULL, feed_thread, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the input thread: %s",
		    strerror(rc));
		free((char *)f->c.where);
		free(f);
		return -1;
	}
	pthread_mutex_lock(&f->mu);
	while (!f->ready)
		pthread_cond_wait(&f->cv, &f->mu);
	rc = f->end < 0 ? -1 : 0;
	if (rc < 0)
		snprintf(err, errlen, "%s", f->msg);
	pthread_mutex_unlock(&f->mu);
	if (rc < 0) {
		feed_close(f);
		return -1;
	}
	*out = f;
	return 0;
}

int
feed_patch(const Feed *f)
{
	return f->P;
}

uint64_t
feed_count(const Feed *f)
{
	return f->count;
}

uint64_t
feed_steps_per_epoch(const Feed *f)
{
	return f->ipe;
}

const char *
feed_name(const Feed *f)
{
	return f->where;
}

/* *t = now + ns nanoseconds (ns < 1 s), for pthread_cond_timedwait. */
static void
deadline(struct timespec *t, long ns)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_nsec += ns;
	if (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

int
feed_next(Feed *f, FeedBatch **b, double *wait, char *err, size_t errlen)
{
	int k, rc = 1;
	double t0 = now_seconds();

	pthread_mutex_lock(&f->mu);
	k = (int)(f->ntake % FEED_NSLOT);
	while (f->state[k] != SLOT_FULL && f->end == 0 &&
	    !(f->c.cancel && *f->c.cancel)) {
		struct timespec until;

		/* wake now and then to notice a cancel (a signal) */
		deadline(&until, 100000000);
		pthread_cond_timedwait(&f->cv, &f->mu, &until);
	}
	if (f->state[k] != SLOT_FULL && f->end == 0) {
		rc = -2;
		*err = '\0';
		*b = NULL;
	} else if (f->state[k] == SLOT_FULL) {
		f->state[k] = SLOT_TAKEN;
		f->ntake++;
		*b = &f->slot[k];
	} else {
		rc = f->end > 0 ? 0 : -1;
		snprintf(err, errlen, "%s", f->msg);
		*b = NULL;
	}
	pthread_mutex_unlock(&f->mu);
	if (wait)
		*wait = now_seconds() - t0;
	return rc;
}

void
feed_release(Feed *f, FeedBatch *b)
{
	pthread_mutex_lock(&f->mu);
	f->state[b - f->slot] = SLOT_FREE;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void
feed_destroy(Feed *f)
{
	source_close(f->src);
	for (int k = 0; k < FEED_NSLOT; k++) {
		free(f->slot[k].x);
		free(f->slot[k].index);
	}
	for (size_t j = 0; j < f->cap; j++)
		record_free(&f->buf[j]);
	free(f->buf);
	free(f->perm);
	record_free(&f->rec);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free((char *)f->c.where);
	free(f);
}

void
feed_close(Feed *f)
{
	struct timespec until;
	int done;

	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cv);
	/* a thread waiting for a free slot ends at once; one in a read may
	 * not: give it a moment */
	deadline(&until, 200000000);
	while (!f->done &&
	    pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
		;
	done = f->done;
	if (!done)
		f->abandoned = 1;
	pthread_mutex_unlock(&f->mu);
	if (!done) {
		/* blocked in a read, or about to end: it frees f itself */
		pthread_detach(f->th);
		return;
	}
	pthread_join(f->th, NULL);
	feed_destroy(f);
}

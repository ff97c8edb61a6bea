/*
 * feed: the training input. A thread of its own reads grid records
 * (stream.h: a record stream, an LMDB directory, a ZeroMQ PULL), puts them
 * in order and turns each step's images into one normalised float batch,
 * while the trainer computes; the trainer only waits when the thread is
 * behind, and that wait is measured.
 *
 * Order. An LMDB is read in epochs: epoch e is a permutation of the
 * records keyed by (seed, RNG_STREAM_SHUFFLE, e), cut into count / batch
 * steps of `batch` images (the last count % batch records of each
 * permutation are left out, different ones every epoch). With several
 * ranks the step is step_images long and each rank's batches hold its
 * part of it, images first .. first + batch - 1: the steps, and the
 * images in them, are the same whatever the number of ranks. Step s therefore
 * reads a fixed set of records whatever happened before, and a resumed
 * run (start = s) gets exactly the batches of an uninterrupted one. A
 * stream (file, stdin, ZeroMQ) passes through a shuffle buffer of
 * `shuffle` records: once it is full, each record given out is drawn
 * uniformly from the buffer (keyed by (seed, FEED_RNG_STREAM_BUFFER, n)
 * for the n-th record) and its place is taken by the next record read.
 * When the stream ends, or fails (a silent ZeroMQ sender), the records
 * already buffered are given out first; the end or the error is reported
 * after them.
 *
 * Batch layout: x (9B, P, P, 3) channels-last, image-major, the 9 patches
 * of each image in grid order (centre at 9i + 4), each pixel v of channel
 * c as ToTensor + Normalize do it in float: (v / 255 - mean[c]) / std[c]
 * with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224,
 * 0.225) (relloc-protocols(7), SAMPLING, step 6).
 *
 * Not here: sampling images (rl-sample), training.
 */
#ifndef RL_FEED_H
#define RL_FEED_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "common/stream.h"

/* rng.h stream of the shuffle buffer's draws. */
#define FEED_RNG_STREAM_BUFFER RNG_STREAM_BUFFER
#define FEED_SHUFFLE_DEFAULT 512
#define FEED_NSLOT 3          /* batches prepared ahead */

typedef struct {
	StreamKind kind;
	const char *where;      /* path, "-", LMDB directory or endpoint */
	StreamOptions sopt;     /* ZeroMQ: timeout_ms, expect_ends, hwm */
	int batch;              /* images per batch given, >= 1 */
	int step_images;        /* LMDB: images per step (0: batch); a rank
	                         * of dist.h's takes `batch` of them ... */
	int first;              /* ... from this place in the step on */
	int patch;              /* required patch side, or 0 for any (the
	                         * first record's is then used throughout) */
	uint64_t seed;
	size_t shuffle;         /* stream shuffle buffer, records; 0 or 1: off */
	uint64_t start;         /* LMDB: the first step to read */
	volatile sig_atomic_t *cancel;  /* feed_next gives up waiting once
	                         * *cancel != 0 (a signal handler's flag);
	                         * may be NULL */
} FeedConfig;

typedef struct {
	float *x;               /* (9 batch, P, P, 3), see above */
	uint64_t *index;        /* [batch] LMDB: record index; stream: the
	                         * record's position in the input (0-based) */
	uint64_t step;          /* the step this batch is for */
	uint64_t records;       /* records read from the input so far */
} FeedBatch;

typedef struct Feed Feed;

/*
 * Open the input and start the thread (with every signal blocked in it,
 * so a signal never interrupts its reads: the caller's threads get
 * them). The first record is read before returning (a stream's first
 * record may take time: the sampler starts), which fixes the patch side. An LMDB with fewer than `batch` records is
 * refused. 0, or -1 with a message naming the input.
 */
int feed_open(Feed **out, const FeedConfig *c, char *err, size_t errlen);

/* The patch side P of the records. */
int feed_patch(const Feed *f);

/* LMDB: the number of records, and the steps in one epoch
 * (count / batch); streams: 0. */
uint64_t feed_count(const Feed *f);
uint64_t feed_steps_per_epoch(const Feed *f);

/* A name for messages (the source's). */
const char *feed_name(const Feed *f);

/*
 * The next batch, in step order, waiting for it if needed; *wait (may be
 * NULL) gets the seconds spent waiting. Returns 1 with *b (owned by the
 * feed until feed_release), 0 at a clean end of the input (a stream
 * ended; fewer than `batch` records were left, err says how many were
 * unused), -1 on an input error (err: a corrupt stream, a silent or
 * vanished ZeroMQ sender, a record of another patch side), -2 when
 * *cancel became non-zero while waiting (err is then empty).
 */
int feed_next(Feed *f, FeedBatch **b, double *wait, char *err,
    size_t errlen);

/* Give b back to the feed (before the next feed_next). */
void feed_release(Feed *f, FeedBatch *b);

/*
 * Stop the thread and close the input. A thread still blocked reading a
 * stream (a sampler that keeps writing, a slow ZeroMQ sender) is left
 * behind to end with the process rather than waited for.
 */
void feed_close(Feed *f);

#endif

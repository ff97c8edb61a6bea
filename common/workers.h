/*
 * workers: an in-order pool of threads. Items 0..n-1 are taken by the
 * threads in order and worked on in parallel; the consumer waits for them
 * in order, uses each, and releases it. At most nslot items are taken
 * ahead of the last one released, and item i always works in slot
 * i % nslot, so the caller's per-slot buffers (rl-sample's records,
 * rl-extract's batch rows) need no locking: a slot belongs to a thread
 * from the take to the end of its work, then to the consumer until the
 * release.
 *
 * Used by rl-sample (one image a slot) and extract.h's loader (a batch of
 * B images is B consecutive slots). Not here: what the work is, errors
 * (the caller records them in its slot), the order of the work itself
 * (any thread may finish first).
 */
#ifndef RL_WORKERS_H
#define RL_WORKERS_H

#include <signal.h>
#include <stddef.h>

typedef struct {
	/* Do item in slot, on a worker thread. *local is the thread's
	 * own pointer (NULL at first) for state kept across items. */
	void (*work)(void *arg, size_t item, size_t slot, void **local);
	/* Called by each thread as it ends, with its *local; may be NULL. */
	void (*thread_end)(void *arg, void *local);
	void *arg;
} WorkersJob;

typedef struct Workers Workers;

/*
 * Start nthreads >= 1 threads over items 0..n-1 with nslot >= 1 slots.
 * Returns 0, or -1 with a message in err (no thread left running).
 */
int workers_start(Workers **w, const WorkersJob *job, size_t n,
    size_t nslot, int nthreads, char *err, size_t errlen);

/*
 * Wait until item i (the next one not released) is done and return its
 * slot. With interrupt set, look at *interrupt 10 times a second and
 * return -1 once it is non-zero (a signal came).
 */
long workers_wait(Workers *w, size_t i, volatile sig_atomic_t *interrupt);

/* Give back every item up to and including i: their slots take new ones. */
void workers_release(Workers *w, size_t i);

/* Stop taking items, wait for the threads (each ends its current item)
 * and free w. NULL does nothing. */
void workers_stop(Workers *w);

#endif

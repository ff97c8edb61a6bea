/* workers: an in-order pool of threads. See workers.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "common/workers.h"

struct Workers {
	WorkersJob job;
	size_t n, nslot;
	unsigned char *done;      /* per slot: its item's work is over */
	size_t next;              /* the next item to take */
	size_t released;          /* items released so far */
	int stop, nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv_done, cv_space;
	pthread_t *th;
};

static void *
worker(void *arg)
{
	Workers *w = arg;
	void *local = NULL;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		size_t i;

		while (!w->stop && w->next < w->n &&
		    w->next - w->released >= w->nslot)
			pthread_cond_wait(&w->cv_space, &w->mu);
		if (w->stop || w->next >= w->n)
			break;
		i = w->next++;
		pthread_mutex_unlock(&w->mu);
		w->job.work(w->job.arg, i, i % w->nslot, &local);
		pthread_mutex_lock(&w->mu);
		w->done[i % w->nslot] = 1;
		pthread_cond_broadcast(&w->cv_done);
	}
	pthread_mutex_unlock(&w->mu);
	if (w->job.thread_end)
		w->job.thread_end(w->job.arg, local);
	return NULL;
}

int
workers_start(Workers **out, const WorkersJob *job, size_t n, size_t nslot,
    int nthreads, char *err, size_t errlen)
{
	Workers *w;

	*out = NULL;
	if (nslot < 1 || nthreads < 1) {
		snprintf(err, errlen, "workers: %zu slots, %d threads: "
		    "positive values expected", nslot, nthreads);
		return -1;
	}
	w = ecalloc(1, sizeof *w);
	w->job = *job;
	w->n = n;
	w->nslot = nslot;
	w->done = ecalloc(nslot, 1);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv_done, NULL);
	pthread_cond_init(&w->cv_space, NULL);
	w->th = ecalloc(nthreads, sizeof *w->th);
	for (int t = 0; t < nthreads; t++) {
		int rc = pthread_create(&w->th[t], NULL, worker, w);

		if (rc != 0) {
			snprintf(err, errlen, "workers: pthread_create: %s",
			    strerror(rc));
			workers_stop(w);
			return -1;
		}
		w->nthreads++;
	}
	*out = w;
	return 0;
}

long
workers_wait(Workers *w, size_t i, volatile sig_atomic_t *interrupt)
{
	size_t s = i % w->nslot;
	long got;

	pthread_mutex_lock(&w->mu);
	while (!w->done[s] && !(interrupt && *interrupt)) {
		struct timespec ts;

		if (!interrupt) {
			pthread_cond_wait(&w->cv_done, &w->mu);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv_done, &w->mu, &ts);
	}
	got = w->done[s] ? (long)s : -1;
	pthread_mutex_unlock(&w->mu);
	return got;
}

void
workers_release(Workers *w, size_t i)
{
	pthread_mutex_lock(&w->mu);
	for (; w->released <= i; w->released++)
		w->done[w->released % w->nslot] = 0;
	pthread_cond_broadcast(&w->cv_space);
	pthread_mutex_unlock(&w->mu);
}

void
workers_stop(Workers *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv_space);
	pthread_mutex_unlock(&w->mu);
	for (int t = 0; t < w->nthreads; t++)
		pthread_join(w->th[t], NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv_done);
	pthread_cond_destroy(&w->cv_space);
	free(w->th);
	free(w->done);
	free(w);
}

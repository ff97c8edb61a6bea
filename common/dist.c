/*
 * dist: the ranks of an Open MPI job, or one process. See dist.h.
 */
#define _GNU_SOURCE     /* program_invocation_short_name */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mpi.h>

#include "common/dist.h"
#include "common/util.h"

static int active, finished, rank, size = 1;
static double comm, waited;

static void
abort_at_exit(void)
{
	if (active && !finished) {
		fflush(NULL);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
}

void
dist_init(int *argc, char ***argv)
{
	int got;

	if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") &&
	    !getenv("PMI_RANK"))
		return;
	if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &got) !=
	    MPI_SUCCESS) {
		fprintf(stderr, "%s: MPI_Init failed\n", rl_progname());
		exit(RL_EXIT_FAIL);
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	active = 1;
	atexit(abort_at_exit);
	if (size > 1) {
		static char name[64];

		snprintf(name, sizeof(name), "%s[%d]",
		    program_invocation_short_name, rank);
		program_invocation_short_name = name;
	}
}

int
dist_rank(void)
{
	return rank;
}

int
dist_size(void)
{
	return size;
}

static void
sum(void *x, size_t n, size_t elem, MPI_Datatype type)
{
	double t0 = now_seconds();

	/* the ranks meet first, so that comm is the transfer alone */
	MPI_Barrier(MPI_COMM_WORLD);
	waited += now_seconds() - t0;
	t0 = now_seconds();

	for (size_t i = 0; i < n; i += INT_MAX / 2) {
		size_t k = RL_MIN(n - i, (size_t)INT_MAX / 2);

		MPI_Allreduce(MPI_IN_PLACE, (char *)x + i * elem, (int)k, type,
		    MPI_SUM, MPI_COMM_WORLD);
	}
	comm += now_seconds() - t0;
}

void
dist_sum_floats(float *x, size_t n)
{
	if (size > 1)
		sum(x, n, sizeof(float), MPI_FLOAT);
}

void
dist_sum_doubles(double *x, size_t n)
{
	if (size > 1)
		sum(x, n, sizeof(double), MPI_DOUBLE);
}

void
dist_barrier(void)
{
	if (size > 1)
		MPI_Barrier(MPI_COMM_WORLD);
}

double
dist_comm_seconds(void)
{
	return comm;
}

double
dist_wait_seconds(void)
{
	return waited;
}

/* Rank 0's text on every rank (malloc'd). */
static char *
bcast_text(const char *mine)
{
	int len = rank == 0 ? (int)strlen(mine) + 1 : 0;
	char *s;

	MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
	s = emalloc((size_t)len);
	if (rank == 0)
		memcpy(s, mine, (size_t)len);
	MPI_Bcast(s, len, MPI_CHAR, 0, MPI_COMM_WORLD);
	return s;
}

/* The first member of a or b that differs, described into buf; 0 if the
 * objects are equal. */
static int
differ(json_t *a, json_t *b, char *buf, size_t len)
{
	const char *k;
	json_t *v;

	json_object_foreach(a, k, v) {
		json_t *w = json_object_get(b, k);

		if (!w || !json_equal(v, w)) {
			char *vs = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			char *ws = w ? json_dumps(w, JSON_ENCODE_ANY |
			    JSON_COMPACT) : NULL;

			snprintf(buf, len, "%s: rank %d has %s, rank 0 has %s",
			    k, rank, ws ? ws : "nothing", vs ? vs : "?");
			free(vs);
			free(ws);
			return 1;
		}
	}
	json_object_foreach(b, k, v)
		if (!json_object_get(a, k)) {
			snprintf(buf, len, "%s: rank %d has it, rank 0 not", k,
			    rank);
			return 1;
		}
	return 0;
}

int
dist_agree(const char *json, char *err, size_t errlen)
{
	char *r0, msg[1024] = "";
	json_t *a, *b;
	int bad, first;

	if (size == 1)
		return 0;
	r0 = bcast_text(json);
	a = json_loads(r0, 0, NULL);
	b = json_loads(json, 0, NULL);
	bad = !a || !b ? 1 : differ(a, b, msg, sizeof(msg));
	if (bad && !msg[0])
		snprintf(msg, sizeof(msg), "rank %d: settings unreadable", rank);
	json_decref(a);
	json_decref(b);
	free(r0);
	/* the lowest rank that differs tells every rank */
	first = bad ? rank : size;
	MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN,
	    MPI_COMM_WORLD);
	if (first == size)
		return 0;
	MPI_Bcast(msg, sizeof(msg), MPI_CHAR, first, MPI_COMM_WORLD);
	snprintf(err, errlen, "ranks differ: %s", msg);
	return -1;
}

void
dist_finish(void)
{
	if (active && !finished) {
		finished = 1;
		MPI_Finalize();
	}
}

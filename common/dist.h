/*
 * dist: the ranks of a data-parallel job. Started by Open MPI's mpirun
 * (or a launcher that sets its environment: srun with PMIx), the process
 * is one rank of an MPI job; started alone it is rank 0 of 1 and MPI is
 * never initialised (no daemon needed, nothing changes).
 *
 * The collectives are blocking and called from the main thread only. A
 * rank that exits without dist_finish (errx, a signal's exit path) aborts
 * the whole job (MPI_Abort, at exit), so the other ranks never wait for
 * it: with its message on its standard error, the job ends in seconds.
 *
 * Not here: what is summed (train.h), which data a rank reads (feed.h).
 */
#ifndef RL_DIST_H
#define RL_DIST_H

#include <stddef.h>

/* Join the job if the process was launched as one of its ranks (MPI_Init);
 * otherwise one rank. With several ranks, the program's name in messages
 * becomes "name[rank]". Call once, after blas_init (which may re-execute
 * the program) and before the first thread. */
void dist_init(int *argc, char ***argv);

int dist_rank(void);
int dist_size(void);

/* x[n] = the sum of every rank's x[n], in place, the same bits on every
 * rank. */
void dist_sum_floats(float *x, size_t n);
void dist_sum_doubles(double *x, size_t n);

/* Wait until every rank has arrived here (nothing with one rank). */
void dist_barrier(void);

/* Seconds spent in dist_sum_* since the start: summing (the transfer),
 * and waiting before it for the slowest rank to arrive. */
double dist_comm_seconds(void);
double dist_wait_seconds(void);

/*
 * Check that every rank has the same settings: a JSON object text whose
 * members rank 0 compares with each rank's, member by member. 0 when all
 * agree; otherwise -1 on every rank, and err (on every rank) names the
 * first member that differs and the two values, "batch: rank 1 has 16,
 * rank 0 has 8".
 */
int dist_agree(const char *json, char *err, size_t errlen);

/* Leave the job normally (MPI_Finalize) before exiting. */
void dist_finish(void);

#endif

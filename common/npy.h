/*
 * npy: NumPy .npy files (format 1.0), the exchange format for features and
 * labels (numpy.lib.format). Little-endian, C order, one array a file.
 *
 * Reading loads the whole array; writing is atomic (a temp file in the
 * same directory, fsync, rename), so a reader never sees half a file.
 * NpyWriter appends rows to a 2-D array whose row count is unknown until
 * the end (rl-extract's features), then fixes the header on close.
 * Not supported: Fortran order, big-endian data, object and structured
 * dtypes, format 2.0 headers over 64 KiB.
 */
#ifndef RL_NPY_H
#define RL_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"

typedef enum { NPY_U8, NPY_I32, NPY_I64, NPY_F32, NPY_F64 } NpyType;

#define NPY_MAXDIM 4

typedef struct {
	NpyType type;
	int ndim;
	int64_t shape[NPY_MAXDIM];
	size_t count;     /* product of shape */
	void *data;       /* count elements of type; owned, free with npy_free */
} Npy;

/* Bytes per element of t. */
size_t npy_elsize(NpyType t);

/*
 * Read path into a. Returns 0, or -1 with "path: reason" in err: not a
 * .npy file, an unsupported dtype or order, a truncated or overlong file.
 */
int npy_read(const char *path, Npy *a, char *err, size_t errlen);
/*
 * Parse the header at the start of buf (len bytes of a file named path)
 * into a (type, ndim, shape, count; data NULL) and *off, where the data
 * starts. A shape whose product of dimensions (zeros counted as ones)
 * times 8 (a double) exceeds SIZE_MAX / 2 is refused, so that no product
 * of its dimensions and an element size overflows. Returns 0, or -1 with
 * "path: reason" in err. npy_read uses it; the fuzzer calls it on bytes.
 */
int npy_header(const char *path, const void *buf, size_t len, Npy *a,
    size_t *off, char *err, size_t errlen);
void npy_free(Npy *a);
/* Element i of a as a double, whatever its type. */
double npy_get(const Npy *a, size_t i);

/* Write an array atomically. Returns 0, or -1 with a message in err. */
int npy_write(const char *path, NpyType t, int ndim, const int64_t *shape,
    const void *data, char *err, size_t errlen);

/* A 2-D array written a block of rows at a time. */
typedef struct {
	RlAtomic a;       /* the temp file and the target's name */
	NpyType type;
	int64_t rows, cols;
} NpyWriter;

/*
 * Open a writer of a (rows, cols) array at path, rows counted as they come
 * (cols -1: a 1-D array). The data goes to the temp file npy_tmp_path(path)
 * (an RlAtomic, util.h) until npy_writer_close renames it. Returns 0, or -1
 * with a message in err (and nothing left behind).
 */
int npy_writer_open(NpyWriter *w, const char *path, NpyType t, int64_t cols,
    char *err, size_t errlen);
/*
 * The temp file a writer of path (and npy_write) writes before the rename,
 * malloc'd; the one place its name is made. Known before the file exists,
 * so a caller that removes temp files on a fatal signal can register it
 * before npy_writer_open creates it.
 */
char *npy_tmp_path(const char *path);
/* Append nrows rows (nrows*cols elements). 0, or -1 with "path: reason"
 * (the writer is then to be aborted). */
int npy_writer_append(NpyWriter *w, const void *data, int64_t nrows,
    char *err, size_t errlen);
/* Append the rows of the .npy file at path, which must hold exactly rows
 * rows of w's type and columns (a part another process wrote), streamed
 * a block at a time. 0, or -1 with "path: reason". */
int npy_writer_append_file(NpyWriter *w, const char *path, int64_t rows,
    char *err, size_t errlen);
/* Fix the header, fsync, rename into place (rl_atomic_close). 0, or -1
 * with "path: reason" and the temp file removed. */
int npy_writer_close(NpyWriter *w, char *err, size_t errlen);
/* Drop the temp file (on an error path); after a close, or a second time,
 * it does nothing. */
void npy_writer_abort(NpyWriter *w);

/*
 * For files that land together (util.h's rl_atomic_commit):
 * npy_writer_finish is npy_writer_close without the rename, and
 * npy_write_finished npy_write without it; the temp file is complete and
 * synced, and rl_atomic_commit(&w->a) puts it in place. 0, or -1 with
 * "path: reason" and nothing left behind.
 */
int npy_writer_finish(NpyWriter *w, char *err, size_t errlen);
int npy_write_finished(NpyWriter *w, const char *path, NpyType t, int ndim,
    const int64_t *shape, const void *data, char *err, size_t errlen);

#endif

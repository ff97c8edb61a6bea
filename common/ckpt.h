/*
 * ckpt: checkpoints as safetensors files (man/rl-ckpt.5).
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * (one object: tensor name -> {"dtype", "shape", "data_offsets"}, plus an
 * optional "__metadata__" map of strings to strings), padded with spaces,
 * then the raw little-endian tensor bytes, contiguous, in offset order.
 *
 * CkptWriter collects tensors (borrowed pointers) and metadata and writes
 * them atomically (util.h's RlAtomic: a temp file in the same directory,
 * fsync, rename), so a reader never sees half a file and a failed write
 * leaves the old file.
 * Ckpt reads a whole file, validates it (JSON through jansson, dtypes,
 * shapes against byte lengths, offsets contiguous and in range, unique
 * names) and gives lookup by name, iteration in file order and metadata.
 *
 * It knows nothing of networks: which names a ResNet needs is resnet's
 * business (ckpt_expect checks one name's dtype and shape for it). Not
 * supported: dtypes other than U8, I32, I64, F32, F64 (F16, BF16, BOOL, ...
 * are refused), big-endian hosts, headers over CKPT_MAX_HEADER bytes.
 */
#ifndef RL_CKPT_H
#define RL_CKPT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CKPT_U8, CKPT_I32, CKPT_I64, CKPT_F32, CKPT_F64 } CkptDtype;

#define CKPT_MAXDIM 8
/* The largest JSON header read or written (the safetensors limit). */
#define CKPT_MAX_HEADER 100000000
/* An err buffer this large holds any message of this module. */
#define CKPT_ERRLEN 1024

/* One tensor of an open checkpoint. */
typedef struct {
	const char *name;
	CkptDtype dtype;
	int ndim;                     /* 0 for a scalar */
	int64_t shape[CKPT_MAXDIM];
	size_t count;                 /* elements: product of shape (1 if ndim 0) */
	size_t nbytes;                /* count * ckpt_dtype_size(dtype) */
	const void *data;             /* borrowed, aligned to the element size */
} CkptTensor;

/* The safetensors name of t ("F32", ...) and its size in bytes. */
const char *ckpt_dtype_name(CkptDtype t);
size_t ckpt_dtype_size(CkptDtype t);

/* ---------------------------------------------------------------- writing */

typedef struct CkptWriter CkptWriter;

/* Make an empty writer in *out (cannot fail; release with ckpt_writer_free). */
void ckpt_writer_create(CkptWriter **out);

/*
 * Add a tensor of dtype and shape (ndim 0..CKPT_MAXDIM, sizes >= 0) whose
 * data (product of shape elements, C order) is borrowed until
 * ckpt_writer_write returns. Tensors are laid out in the order added. The
 * name is copied. Returns 0, or -1 with a message in err: an empty,
 * duplicate or non-UTF-8 name, "__metadata__", a bad ndim or size.
 */
int ckpt_writer_add(CkptWriter *w, const char *name, CkptDtype dtype,
    int ndim, const int64_t *shape, const void *data, char *err,
    size_t errlen);

/*
 * Set metadata key to value (both copied, UTF-8); setting a key again
 * replaces its value. Returns 0, or -1 with a message in err.
 */
int ckpt_writer_meta(CkptWriter *w, const char *key, const char *value,
    char *err, size_t errlen);

/*
 * Write everything added so far to path atomically. The header is padded
 * with spaces so the data starts at a multiple of 8 bytes. Returns 0, or
 * -1 with "path: reason" in err; on failure the temp file is removed and
 * an existing file at path is left as it was. The writer stays usable.
 */
int ckpt_writer_write(CkptWriter *w, const char *path, char *err,
    size_t errlen);

void ckpt_writer_free(CkptWriter *w);

/* ---------------------------------------------------------------- reading */

typedef struct Ckpt Ckpt;

/*
 * Read and validate the checkpoint at path into *out. Returns 0, or -1
 * with *out NULL and "path: reason" in err; a malformed file's message
 * ends by saying how to regenerate it. Release with ckpt_close.
 */
int ckpt_open(Ckpt **out, const char *path, char *err, size_t errlen);
void ckpt_close(Ckpt *c);

/* The path c was opened from. */
const char *ckpt_path(const Ckpt *c);

/* The number of tensors, and tensor i (0 <= i < n) in file (offset) order.
 * Tensors, names and data are borrowed until ckpt_close. */
size_t ckpt_ntensors(const Ckpt *c);
const CkptTensor *ckpt_tensor(const Ckpt *c, size_t i);

/* The tensor called name, or NULL. */
const CkptTensor *ckpt_find(const Ckpt *c, const char *name);

/*
 * The data of tensor name if it has this dtype and shape (ndim entries;
 * shape may be NULL when ndim is 0), else NULL with a message in err:
 * "path: name: shape [a,b] in file, [c,d] expected", "...: dtype I64 in
 * file, F32 expected" or "...: no such tensor". Borrowed until ckpt_close.
 */
const void *ckpt_expect(const Ckpt *c, const char *name, CkptDtype dtype,
    int ndim, const int64_t *shape, char *err, size_t errlen);

/* The metadata value of key, or NULL. Borrowed until ckpt_close. */
const char *ckpt_meta(const Ckpt *c, const char *key);

/* The number of metadata entries, and entry i (0 <= i < n) in file order
 * through *key and *value (borrowed until ckpt_close). */
size_t ckpt_nmeta(const Ckpt *c);
void ckpt_meta_at(const Ckpt *c, size_t i, const char **key,
    const char **value);

#endif

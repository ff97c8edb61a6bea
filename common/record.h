/*
 * record: the grid record, the unit of data between rl-sample and rl-train,
 * and its msgpack encoding (man rl-record.5). Every tool that reads or
 * writes records does it through this module.
 *
 * A record is one 3x3 grid sampled from one image: nine square patches of
 * side `patch`, uint8 RGB, row-major over the grid (index 3*row + col, the
 * centre is index 4), each patch row-major HWC. Transport (stdout, LMDB,
 * ZeroMQ) is stream.h's business, not this module's.
 */
#ifndef RL_RECORD_H
#define RL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define RECORD_VERSION 1
#define RECORD_NPATCH 9
#define RECORD_CENTER 4

typedef struct {
	uint32_t version;      /* RECORD_VERSION when written by us */
	uint64_t id;           /* source id: the image's 0-based input index */
	uint32_t sample;       /* which of the -n grids of that image */
	char *source;          /* the image path as given; owned */
	int64_t label;         /* class label, or -1 when unknown */
	uint32_t src_w, src_h; /* the source image's size in pixels */
	uint32_t patch;        /* patch side P in pixels */
	uint32_t cell;         /* grid cell pitch in the sampled frame */
	uint32_t gray;         /* 1 when the grid was turned to grey */
	float box[RECORD_NPATCH][4];  /* x0,y0,x1,y1 in the source frame */
	uint8_t *pixels;       /* 9*P*P*3 bytes; owned */
} Record;

/* Bytes of pixels in a record with patch side p. */
static inline size_t
record_pixel_bytes(uint32_t p)
{
	return (size_t)RECORD_NPATCH * p * p * 3;
}

/*
 * Buffers: a Record's `source` and `pixels` are NULL or malloc'd and owned
 * by the record. Start from a zeroed Record (`Record r = {0};`); the
 * functions below reuse (realloc) them and record_free releases them.
 * Limits: 1 <= patch <= RECORD_PATCH_MAX, src_w, src_h, cell >= 1,
 * gray 0 or 1, label >= -1, boxes finite with x0 < x1 and y0 < y1.
 */
#define RECORD_PATCH_MAX 1024

/* 0 if r is a valid version-RECORD_VERSION record (pixels non-NULL, every
 * field in range), else -1 with a message naming the field. */
int record_check(const Record *r, char *err, size_t errlen);

/* Append r as one msgpack map to sb (rl-record(5)). r is checked first
 * (record_check): 0, or -1 with nothing appended to sb. */
int record_pack(const Record *r, msgpack_sbuffer *sb, char *err,
    size_t errlen);

/* Decode one map from o into r, reusing r's buffers. Strict: a missing,
 * duplicated or mistyped field, a value out of range, another version or
 * a pixel `bin` whose length is not 9*P*P*3 gives -1 with a message, and
 * r is left valid (its old contents or the new, never a mix of buffers).
 * o's memory (its zone) is not kept. */
int record_unpack(const msgpack_object *o, Record *r, char *err,
    size_t errlen);

/* The most bytes one record can take (pixels of the largest patch and
 * room for the other fields), and the most msgpack objects (every key,
 * value and element, at any depth; a version-1 record has about 70). */
#define RECORD_BYTES_MAX (record_pixel_bytes(RECORD_PATCH_MAX) + ((size_t)16 << 20))
#define RECORD_OBJECTS_MAX 1024

/*
 * Frame the msgpack object at the start of buf (len bytes so far) by its
 * headers alone, before any decoder reserves memory for what they claim.
 * Returns its size in bytes (> 0) when it is whole within buf, 0 when buf
 * ends inside it (read more), or -1 with a message in err when no record
 * can be this: over RECORD_BYTES_MAX bytes or RECORD_OBJECTS_MAX objects
 * (a container header claiming 2^32 entries is refused at its 5 bytes),
 * or a byte that is not msgpack.
 */
ptrdiff_t record_frame(const void *buf, size_t len, char *err, size_t errlen);

/* The same from bytes holding exactly one map (an LMDB value, a ZeroMQ
 * message); trailing or missing bytes are an error. */
int record_decode(const void *buf, size_t len, Record *r, char *err,
    size_t errlen);

/* Deep copy src into dst, reusing dst's buffers. */
void record_copy(Record *dst, const Record *src);

/* Free r's buffers and zero it (it can be reused). */
void record_free(Record *r);

#endif

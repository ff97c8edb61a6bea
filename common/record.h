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

#endif

/*
 * idx: reading IDX files (LeCun's MNIST format, also Fashion-MNIST's),
 * gzipped or plain.
 *
 * An IDX file is a 4-byte magic (0, 0, type, number of dimensions), the
 * dimensions as big-endian uint32, then the data, row-major. Only type
 * 0x08 (unsigned byte), what the MNIST family uses, is read. The whole
 * file is checked: magic, dimensions, and that the data is exactly as
 * long as the dimensions say (a truncated or padded file is refused).
 *
 * Not here: writing IDX, turning it into images (tools/rl-import.c).
 */
#ifndef RL_IDX_H
#define RL_IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_MAXDIM 4

typedef struct {
	int ndim;
	uint32_t dim[IDX_MAXDIM];
	size_t n;          /* product of the dimensions */
	uint8_t *data;     /* n bytes; owned */
} Idx;

/*
 * Read the IDX file at path (gzip is undone by zlib; a plain file reads
 * as well) into x. want_ndim > 0 requires that many dimensions. Returns
 * 0, or -1 with "path: reason" in err ("bad magic", "truncated: ...").
 */
int idx_read(Idx *x, const char *path, int want_ndim, char *err,
    size_t errlen);
void idx_free(Idx *x);

#endif

/* jpeg: a JPEG decoded by libjpeg-turbo straight into memory. See jpeg.h. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "common/img.h"
#include "common/jpeg.h"
#include "common/util.h"

/* libvips' jpegload gives up after this many warnings too. */
#define JPEG_MAX_WARNINGS 100

typedef struct {
	struct jpeg_error_mgr mgr;
	jmp_buf jump;
	char *err;
	size_t errlen;
} ErrMgr;

static void
on_error(j_common_ptr c)
{
	ErrMgr *e = (ErrMgr *)c->err;
	char msg[JMSG_LENGTH_MAX];

	c->err->format_message(c, msg);
	snprintf(e->err, e->errlen, "%s", msg);
	longjmp(e->jump, 1);
}

/* Warnings are silent (one line per problem is the caller's), but a
 * truncated file, or one with many glitches, is an error: libjpeg would
 * fill the missing rows with grey. */
static void
on_message(j_common_ptr c, int level)
{
	if (level >= 0)
		return;
	if (c->err->msg_code == JWRN_JPEG_EOF ||
	    ++c->err->num_warnings >= JPEG_MAX_WARNINGS)
		c->err->error_exit(c);
}

int
jpeg_sniff(const void *buf, size_t len)
{
	static const unsigned char soi[3] = { 0xff, 0xd8, 0xff };

	return len >= 3 && memcmp(buf, soi, 3) == 0;
}

/* The largest DCT shrink (1, 2, 4, 8) keeping the short side >= m. */
static int
shrink_for(int w, int h, int m)
{
	int s = RL_MIN(w, h), f;

	if (m <= 0)
		return 1;
	for (f = 8; f > 1; f /= 2)
		if ((s + f - 1) / f >= m)
			return f;
	return 1;
}

int
jpeg_decode(const void *buf, size_t len, int min_short,
    uint64_t max_pixels, uint8_t **px, int *w, int *h, int *fw, int *fh,
    char *err, size_t errlen)
{
	struct jpeg_decompress_struct c;
	ErrMgr e;
	uint8_t *volatile out = NULL;
	volatile int rc = -1;

	*px = NULL;
	memset(&c, 0, sizeof c);
	c.err = jpeg_std_error(&e.mgr);
	e.mgr.error_exit = on_error;
	e.mgr.emit_message = on_message;
	e.err = err;
	e.errlen = errlen;
	if (setjmp(e.jump)) {
		free(out);
		jpeg_destroy_decompress(&c);
		return -1;
	}
	jpeg_create_decompress(&c);
	jpeg_mem_src(&c, buf, len);
	jpeg_read_header(&c, TRUE);
	if (c.num_components != 1 && c.num_components != 3) {
		rc = 1;                 /* CMYK, YCCK: libvips' */
		goto done;
	}
	*fw = (int)c.image_width;
	*fh = (int)c.image_height;
	if (img_pixel_error(*fw, *fh, max_pixels, err, errlen))
		goto done;
	c.out_color_space = JCS_RGB;    /* grey too: libjpeg-turbo copies */
	c.scale_num = 1;
	c.scale_denom = shrink_for(*fw, *fh, min_short);
	jpeg_start_decompress(&c);
	if (c.output_components != 3) {
		snprintf(err, errlen, "libjpeg gave %d components",
		    c.output_components);
		goto done;
	}
	{
		size_t stride = (size_t)c.output_width * 3;

		out = malloc(stride * c.output_height);
		if (!out) {
			snprintf(err, errlen, "out of memory for its %u x %u "
			    "pixels", c.output_width, c.output_height);
			goto done;
		}
		while (c.output_scanline < c.output_height) {
			JSAMPROW rows[4];
			int n = 0;

			for (; n < 4; n++)
				rows[n] = out + stride * RL_MIN(
				    c.output_scanline + n,
				    c.output_height - 1);
			jpeg_read_scanlines(&c, rows, n);
		}
	}
	*w = (int)c.output_width;
	*h = (int)c.output_height;
	*px = out;
	out = NULL;
	rc = 0;
done:
	free(out);
	/* No jpeg_finish_decompress: the pixels are all here. A file cut
	 * short failed while its rows were read; one that lacks only its EOI
	 * marker mostly fails there too (libjpeg reads ahead for it), as
	 * libvips and PIL refuse it. */
	jpeg_destroy_decompress(&c);
	return rc;
}

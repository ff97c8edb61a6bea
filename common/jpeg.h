/*
 * jpeg: the direct JPEG decode behind img_load's fast path.
 *
 * libvips decodes a JPEG with libjpeg-turbo too, but around it sets up a
 * pipeline per image (a GObject operation, regions, a sequential line
 * cache, locks) that costs about a third of the decode of a 500x375 photo
 * (measured with perf for rl-sample: 25% of its CPU in glib, gobject and
 * libvips, 40% in libjpeg). Here libjpeg-turbo writes the pixels straight
 * into the caller's buffer with the settings libvips' jpegload uses: the
 * default (islow) IDCT and fancy upsampling, DCT scaling for shrink, the
 * file's own colours (no ICC transform). So the pixels are libvips' (and
 * PIL's, which decodes with the same defaults).
 *
 * Only what decodes to RGB without colour management is taken: 1- and
 * 3-component files (grey, YCbCr, RGB). A CMYK/YCCK file is declined, and
 * img_load gives it to libvips.
 */
#ifndef RL_JPEG_H
#define RL_JPEG_H

#include <stddef.h>
#include <stdint.h>

/* Does buf start like a JPEG (SOI, then a marker)? */
int jpeg_sniff(const void *buf, size_t len);

/*
 * Decode the JPEG in buf into *px (malloc'd, *w x *h x 3 RGB) at the
 * smallest of 1/1, 1/2, 1/4, 1/8 scale (libjpeg's DCT scaling, size rounded
 * up) whose shorter side is still >= min_short; min_short <= 0 decodes at
 * full size. *fw, *fh get the file's own size. A truncated file is an
 * error, not a grey-filled image, as with libvips' fail_on=truncated.
 * A file of more than max_pixels pixels is refused from its header,
 * before anything is allocated (img_pixel_error says why), and so is
 * one whose pixels cannot be allocated.
 *
 * Returns 0; 1 if the file is a JPEG this path declines (CMYK), with
 * nothing allocated; -1 with the reason in err. Thread-safe.
 */
int jpeg_decode(const void *buf, size_t len, int min_short,
    uint64_t max_pixels, uint8_t **px, int *w, int *h, int *fw, int *fh,
    char *err, size_t errlen);

#endif

/*
 * img: images in memory, and the few libvips calls the tools need.
 *
 * An Image is 8-bit, interleaved, row-major (HWC), 1 or 3 bands. img_load
 * decodes an image into 8-bit RGB in one pass: a grey or colour JPEG with
 * libjpeg-turbo directly (jpeg.h), any other format libvips reads with
 * libvips (its per-image machinery set to be cheap: no operation cache,
 * one thread per pipeline, sequential access). All further work
 * (resizing, cropping, grey) happens on that memory copy with the plain C
 * functions below, so a sampler can cut many patches from one decode.
 *
 * img_resample is PIL's antialiased bilinear resize (Image.resize with
 * BILINEAR, as torchvision's Resize uses it), reimplemented: the same
 * filter support, coefficients, 22-bit fixed point and rounding, the
 * horizontal pass first with 8-bit intermediate, so its output matches
 * PIL's byte for byte. It can compute any window of the resized image
 * without the rest.
 *
 * Not here: the sampling geometry and colour augmentations (grid.h), file
 * lists (list.h), grid records (record.h).
 */
#ifndef RL_IMG_H
#define RL_IMG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int w, h;        /* pixels */
	int bands;       /* 1 (grey) or 3 (RGB) */
	uint8_t *data;   /* h*w*bands bytes; owned, release with img_free */
} Image;

/*
 * Get ready to decode. libvips itself starts (VIPS_INIT) on first use,
 * as its start-up costs as much as 35 JPEG decodes and a run of JPEGs
 * never needs it, and is then made cheap per image: the operation cache
 * off, one worker thread per pipeline (the caller runs its own workers),
 * libvips' warnings silenced (errors still come back through err).
 * Process-wide: glibc malloc is told to keep blocks up to 64 MiB on the
 * heap (mallopt), as mapping and unmapping each image's buffers cost more
 * than decoding it. argv0 is the program's argv[0]. Returns 0: a libvips
 * that cannot start is reported by the first call that needs it (err
 * stays for callers that check).
 */
int img_start(const char *argv0, char *err, size_t errlen);
/* Release libvips' per-thread state; each worker thread that used img_load
 * calls it before it ends. */
void img_thread_end(void);
/* Shut libvips down (at exit). */
void img_stop(void);

/*
 * The most pixels (width x height, as stored in the file) an image may
 * have: img_load refuses a larger one from its header, before decoding or
 * allocating anything. The default is PIL's (2 x Image.MAX_IMAGE_PIXELS,
 * the size at which PIL refuses a "decompression bomb"): about 13400 x
 * 13400, 537 MB of RGB. Process-wide; set it before the decoding threads
 * start. 0 means the default.
 */
#define IMG_MAX_PIXELS_DEFAULT 178956970ULL
void img_set_max_pixels(uint64_t n);
uint64_t img_max_pixels(void);

/* 1 with "W x H pixels, over the limit of N" in err when w x h is over
 * max, else 0 (for the decoders). */
int img_pixel_error(int w, int h, uint64_t max, char *err, size_t errlen);

/*
 * Decode the image file at path into im as 8-bit RGB: grey is copied to
 * the three channels, an alpha channel dropped, 16-bit and CMYK converted
 * (what OpenCV's IMREAD_COLOR and PIL's convert('RGB') give). A truncated
 * or corrupt file is an error, not a grey-filled image.
 *
 * min_short > 0 allows shrink-on-load: a grey or colour JPEG whose
 * shorter side is at least 2*min_short is decoded at 1/2, 1/4 or 1/8
 * scale by libjpeg's DCT scaling, the largest factor that keeps the
 * shorter side >= min_short.
 * 0 decodes at full size. *file_w, *file_h (may be NULL) get the file's
 * own size, before any shrink.
 *
 * Returns 0, or -1 with "reason" in err (libjpeg's or libvips' error
 * text on one line, the system error, an image over img_max_pixels, or
 * memory that could not be had for it: never an exit); im is then empty.
 * Thread-safe.
 */
int img_load(Image *im, const char *path, int min_short, int *file_w,
    int *file_h, char *err, size_t errlen);

/* Allocate a w x h image with the given bands, zero-filled. */
void img_alloc(Image *im, int w, int h, int bands);
/* Release im's pixels (from img_load or img_alloc) and zero it. */
void img_free(Image *im);

/*
 * PIL's antialiased bilinear resize of src (sw x sh, bands interleaved)
 * to ow x oh, computing only the window [x0, x0+w) x [y0, y0+h) of the
 * result into dst (w*h*bands bytes, row stride w*bands). The window must
 * lie inside ow x oh. Resizing to the same size copies.
 */
void img_resample(uint8_t *dst, int x0, int y0, int w, int h, int ow,
    int oh, const uint8_t *src, int sw, int sh, int bands);

/* The torchvision Resize(s) rule: the shorter side becomes s, the longer
 * int(s*long/short) (truncated), so the aspect ratio is kept. */
void img_short_side_size(int w, int h, int s, int *ow, int *oh);

/* ITU-R 601-2 luma as PIL's convert('L') computes it:
 * (19595 R + 38470 G + 7471 B + 32768) >> 16. */
static inline uint8_t
img_luma(uint8_t r, uint8_t g, uint8_t b)
{
	return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* Turn npix RGB pixels to grey in place, the luma copied to all three. */
void img_gray_rgb(uint8_t *px, size_t npix);

/*
 * Write w x h pixels (bands 1 or 3, interleaved) to path as PNG. 0, or
 * -1 with "path: reason".
 */
int img_save_png(const char *path, const uint8_t *px, int w, int h,
    int bands, char *err, size_t errlen);

/*
 * Tile n RGB tiles of tw x th (tile[i] is tw*th*3 bytes) into a PNG,
 * row-major, cols per row, pad pixels of colour bg (grey level) around
 * and between them: the picture is cols*tw + (cols+1)*pad wide and
 * rows*th + (rows+1)*pad high with rows = ceil(n/cols). A NULL tile is
 * left blank. Written atomically (RlAtomic). 0, or -1 with "path:
 * reason".
 */
int img_montage_png(const char *path, const uint8_t *const *tile, int n,
    int tw, int th, int cols, int pad, uint8_t bg, char *err,
    size_t errlen);

#endif

/* img: decode to memory (jpeg.c, libvips), PIL-exact resize, PNG. See img.h. */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vips/vips.h>
#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

#include "common/img.h"
#include "common/jpeg.h"
#include "common/util.h"

#ifndef IMG_STRIP
#define IMG_STRIP 64      /* rows decoded per libvips request */
#endif

static uint64_t max_pixels = IMG_MAX_PIXELS_DEFAULT;

void
img_set_max_pixels(uint64_t n)
{
	max_pixels = n ? n : IMG_MAX_PIXELS_DEFAULT;
}

uint64_t
img_max_pixels(void)
{
	return max_pixels;
}

int
img_pixel_error(int w, int h, uint64_t max, char *err, size_t errlen)
{
	uint64_t n = (uint64_t)w * (uint64_t)h;

	if (w > 0 && h > 0 && n <= max)
		return 0;
	snprintf(err, errlen, "%d x %d = %llu pixels, over the limit of %llu "
	    "(--max-pixels)", w, h, (unsigned long long)n,
	    (unsigned long long)max);
	return 1;
}

// ----------------------------------------------------------------------------
// libvips

/* Move libvips' error log into err as one line ("; " between its lines),
 * and clear the log. */
static void
vips_err(char *err, size_t errlen, const char *what)
{
	char *s = vips_error_buffer_copy(), *line, *save = NULL;
	size_t n = 0;

	err[0] = '\0';
	for (line = strtok_r(s, "\n", &save); line && n + 1 < errlen;
	    line = strtok_r(NULL, "\n", &save))
		n += snprintf(err + n, errlen - n, "%s%s", n ? "; " : "",
		    line);
	if (!err[0])
		snprintf(err, errlen, "%s", what);
	g_free(s);
}

/* libvips' g_warning()s (a JPEG's recoverable glitches) would break the
 * one-line-per-problem rule; errors still come back through err. */
static void
quiet(const char *domain, GLogLevelFlags level, const char *msg, void *arg)
{
	(void)domain;
	(void)level;
	(void)msg;
	(void)arg;
}

/*
 * libvips starts on first use (a non-JPEG, a CMYK JPEG, a PNG to write):
 * its start-up (loading its modules) costs 30 ms of CPU, as much as 35
 * JPEG decodes, and most runs never need it.
 */
static const char *vips_argv0 = "relloc";
static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static atomic_int vips_state;   /* 0 not started, 1 started, -1 failed */
static char vips_start_err[256];

static void
vips_start(void)
{
	if (VIPS_INIT(vips_argv0)) {
		vips_err(vips_start_err, sizeof vips_start_err,
		    "cannot start libvips");
		vips_state = -1;
		return;
	}
	/* Our callers run one decode per worker thread; libvips' own thread
	 * pool and operation cache cost more than they save on small images. */
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, quiet, NULL);
	vips_concurrency_set(1);
	vips_cache_set_max(0);
	vips_cache_set_max_mem(0);
	vips_cache_set_max_files(0);
	vips_state = 1;
}

/* 0 once libvips runs, or -1 with the reason in err. */
static int
vips_ready(char *err, size_t errlen)
{
	pthread_once(&vips_once, vips_start);
	if (vips_state < 0) {
		snprintf(err, errlen, "%s", vips_start_err);
		return -1;
	}
	return 0;
}

int
img_start(const char *argv0, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	vips_argv0 = argv0;
	/* Every image allocates and frees a few buffers of 100 KB-10 MB;
	 * glibc would mmap and unmap each, and page faults then cost more
	 * than the decode. Keep such blocks on the heap for reuse. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	return 0;
}

void
img_thread_end(void)
{
	if (vips_state > 0)
		vips_thread_shutdown();
}

void
img_stop(void)
{
	if (vips_state > 0)
		vips_shutdown();
}

/* Read the whole file at path into *buf (g_malloc'd). */
static int
slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	size_t n;

	*buf = NULL;
	if (!fp || fstat(fileno(fp), &st) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fp)
			fclose(fp);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fclose(fp);
		snprintf(err, errlen, "not a regular file");
		return -1;
	}
	if ((*buf = g_try_malloc(st.st_size + 1)) == NULL) {
		fclose(fp);
		snprintf(err, errlen, "out of memory to read its %lld bytes",
		    (long long)st.st_size);
		return -1;
	}
	n = fread(*buf, 1, st.st_size, fp);
	if (ferror(fp) || n != (size_t)st.st_size) {
		snprintf(err, errlen, "read error: %s",
		    ferror(fp) ? strerror(errno) : "file changed size");
		fclose(fp);
		g_free(*buf);
		*buf = NULL;
		return -1;
	}
	fclose(fp);
	*len = n;
	return 0;
}

/* in -> 8-bit sRGB or grey without alpha; unrefs in. NULL on failure. */
static VipsImage *
to_rgb8(VipsImage *in)
{
	VipsImage *t;
	VipsInterpretation it = vips_image_guess_interpretation(in);

	if (vips_image_hasalpha(in)) {
		if (vips_extract_band(in, &t, 0, "n", in->Bands - 1, NULL))
			goto fail;
		g_object_unref(in);
		in = t;
	}
	if ((it != VIPS_INTERPRETATION_sRGB && it != VIPS_INTERPRETATION_B_W) ||
	    in->BandFmt != VIPS_FORMAT_UCHAR || (in->Bands != 1 &&
	    in->Bands != 3)) {
		if (it == VIPS_INTERPRETATION_B_W ||
		    it == VIPS_INTERPRETATION_GREY16) {
			if (vips_colourspace(in, &t, VIPS_INTERPRETATION_B_W,
			    NULL))
				goto fail;
		} else if (vips_colourspace(in, &t, VIPS_INTERPRETATION_sRGB,
		    NULL))
			goto fail;
		g_object_unref(in);
		in = t;
		if (in->BandFmt != VIPS_FORMAT_UCHAR) {
			if (vips_cast_uchar(in, &t, NULL))
				goto fail;
			g_object_unref(in);
			in = t;
		}
		if (in->Bands != 1 && in->Bands != 3) {
			if (vips_extract_band(in, &t, 0, "n",
			    in->Bands >= 3 ? 3 : 1, NULL))
				goto fail;
			g_object_unref(in);
			in = t;
		}
	}
	return in;
fail:
	g_object_unref(in);
	return NULL;
}

/* All of x's pixels, malloc'd, computed in the calling thread (not
 * handed to a libvips worker as vips_image_write_to_memory would) and
 * straight into our buffer, a strip at a time so that libvips' own
 * buffers stay small and in cache. */
static uint8_t *
pixels(VipsImage *x)
{
	size_t row = (size_t)x->Xsize * x->Bands, size = row * x->Ysize;
	uint8_t *px = malloc(size);
	VipsImage *mem;

	if (px == NULL) {
		vips_error("relloc", "out of memory for its %d x %d pixels",
		    x->Xsize, x->Ysize);
		return NULL;
	}
	mem = vips_image_new_from_memory(px, size, x->Xsize,
	    x->Ysize, x->Bands, VIPS_FORMAT_UCHAR);
	VipsRegion *src = vips_region_new(x), *dst = vips_region_new(mem);
	VipsRect all = { 0, 0, x->Xsize, x->Ysize };
	int ok = vips_region_image(dst, &all) == 0;

	for (int y = 0; ok && y < x->Ysize; y += IMG_STRIP) {
		VipsRect r = { 0, y, x->Xsize, RL_MIN(IMG_STRIP, x->Ysize - y) };
		ok = vips_region_prepare_to(src, dst, &r, 0, y) == 0;
	}
	g_object_unref(src);
	g_object_unref(dst);
	g_object_unref(mem);
	if (!ok) {
		free(px);
		return NULL;
	}
	return px;
}

/*
 * Run the loader called name on buf without the operation cache: even with
 * a cache of size 0, vips_image_new_from_buffer hashes every argument,
 * inserts and evicts the operation, which costs as much as the header.
 * The pixels are decoded later, when a region asks for them.
 */
static VipsImage *
load_op(const char *name, const char *buf, size_t len)
{
	VipsOperation *op = vips_operation_new(name);
	VipsBlob *blob;
	VipsImage *out = NULL;

	if (!op)
		return NULL;
	blob = vips_blob_new(NULL, buf, len);
	g_object_set(op, "buffer", blob, "access", VIPS_ACCESS_SEQUENTIAL,
	    "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
	vips_area_unref(VIPS_AREA(blob));
	if (vips_object_build(VIPS_OBJECT(op)) == 0)
		g_object_get(op, "out", &out, NULL);
	vips_object_unref_outputs(VIPS_OBJECT(op));
	g_object_unref(op);
	return out;
}

/* libvips' path: any format it reads (and the JPEGs jpeg.c declines). */
static int
vips_decode(Image *im, const char *buf, size_t len, int jpeg, int *fw,
    int *fh, char *err, size_t errlen)
{
	const char *loader;
	VipsImage *x;
	uint8_t *px;

	if (vips_ready(err, errlen) < 0)
		return -1;
	loader = jpeg ? "jpegload_buffer" :
	    vips_foreign_find_load_buffer(buf, len);
	if (!loader) {
		vips_error_clear();
		snprintf(err, errlen, "not an image (no libvips loader "
		    "recognises it)");
		return -1;
	}
	/* The header is read: refuse a huge image before decoding it. */
	if ((x = load_op(loader, buf, len)) != NULL &&
	    img_pixel_error(x->Xsize, x->Ysize, max_pixels, err, errlen)) {
		g_object_unref(x);
		return -1;
	}
	if (!x || !(x = to_rgb8(x)) || !(px = pixels(x))) {
		vips_err(err, errlen, "libvips could not decode it");
		if (x)
			g_object_unref(x);
		return -1;
	}
	im->w = *fw = x->Xsize;
	im->h = *fh = x->Ysize;
	im->bands = 3;
	if (x->Bands == 1) {
		size_t n = (size_t)im->w * im->h;
		if ((im->data = malloc(3 * n)) == NULL) {
			snprintf(err, errlen, "out of memory for its %d x %d "
			    "pixels", im->w, im->h);
			free(px);
			g_object_unref(x);
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			im->data[3 * i] = im->data[3 * i + 1] =
			    im->data[3 * i + 2] = px[i];
		free(px);
	} else
		im->data = px;
	g_object_unref(x);
	return 0;
}

int
img_load(Image *im, const char *path, int min_short, int *file_w,
    int *file_h, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int fw, fh, rc = 1, jpeg;

	memset(im, 0, sizeof *im);
	if (slurp(path, &buf, &len, err, errlen) < 0)
		return -1;
	if ((jpeg = jpeg_sniff(buf, len))) {
		rc = jpeg_decode(buf, len, min_short, max_pixels, &im->data,
		    &im->w, &im->h, &fw, &fh, err, errlen);
		im->bands = 3;
	}
	if (rc > 0)
		rc = vips_decode(im, buf, len, jpeg, &fw, &fh, err, errlen);
	g_free(buf);
	if (rc < 0) {
		memset(im, 0, sizeof *im);
		return -1;
	}
	if (file_w)
		*file_w = fw;
	if (file_h)
		*file_h = fh;
	return 0;
}

void
img_alloc(Image *im, int w, int h, int bands)
{
	im->w = w;
	im->h = h;
	im->bands = bands;
	im->data = ecalloc((size_t)w * h * bands, 1);
}

void
img_free(Image *im)
{
	free(im->data);
	memset(im, 0, sizeof *im);
}

/* px wrapped as a libvips image (not copied), or NULL with err set. */
static VipsImage *
wrap(const uint8_t *px, int w, int h, int bands, char *err, size_t errlen)
{
	VipsImage *x;

	if (vips_ready(err, errlen) < 0)
		return NULL;
	if (!(x = vips_image_new_from_memory(px, (size_t)w * h * bands, w, h,
	    bands, VIPS_FORMAT_UCHAR))) {
		vips_err(err, errlen, "cannot wrap pixels");
		return NULL;
	}
	x->Type = bands == 1 ? VIPS_INTERPRETATION_B_W :
	    VIPS_INTERPRETATION_sRGB;
	return x;
}

int
img_save_png(const char *path, const uint8_t *px, int w, int h, int bands,
    char *err, size_t errlen)
{
	VipsImage *x = wrap(px, w, h, bands, err, errlen);
	int rc;

	if (!x)
		return -1;
	rc = vips_pngsave(x, path, NULL);
	g_object_unref(x);
	if (rc) {
		char msg[512];
		size_t n = strlen(path);
		vips_err(msg, sizeof msg, "cannot write");
		/* libvips names the file itself, mostly. */
		if (strncmp(msg, path, n) == 0 && msg[n] == ':')
			snprintf(err, errlen, "%s", msg);
		else
			snprintf(err, errlen, "%s: %s", path, msg);
		return -1;
	}
	return 0;
}

/* As img_save_png, but atomically (RlAtomic): encoded in memory, then
 * written whole, so a reader never sees half a picture and a full disk
 * leaves the old one in place. */
static int
save_png_atomic(const char *path, const uint8_t *px, int w, int h,
    int bands, char *err, size_t errlen)
{
	VipsImage *x = wrap(px, w, h, bands, err, errlen);
	RlAtomic a = { 0 };
	void *png = NULL;
	size_t len = 0;
	FILE *fp;
	int rc;

	if (!x)
		return -1;
	rc = vips_pngsave_buffer(x, &png, &len, NULL);
	g_object_unref(x);
	if (rc) {
		char msg[400];
		vips_err(msg, sizeof msg, "cannot encode");
		snprintf(err, errlen, "%s: %s", path, msg);
		return -1;
	}
	if (!(fp = rl_atomic_open(&a, path, err, errlen))) {
		g_free(png);
		return -1;
	}
	fwrite(png, 1, len, fp);
	g_free(png);
	return rl_atomic_close(&a, err, errlen);
}

int
img_montage_png(const char *path, const uint8_t *const *tile, int n, int tw,
    int th, int cols, int pad, uint8_t bg, char *err, size_t errlen)
{
	int rows, W, H, rc;
	uint8_t *px;

	if (n < 1 || cols < 1 || tw < 1 || th < 1 || pad < 0) {
		snprintf(err, errlen, "%s: empty montage", path);
		return -1;
	}
	cols = RL_MIN(cols, n);
	rows = (n + cols - 1) / cols;
	W = cols * tw + (cols + 1) * pad;
	H = rows * th + (rows + 1) * pad;
	px = emalloc((size_t)W * H * 3);
	memset(px, bg, (size_t)W * H * 3);
	for (int i = 0; i < n; i++) {
		int x0 = pad + (i % cols) * (tw + pad);
		int y0 = pad + (i / cols) * (th + pad);
		if (!tile[i])
			continue;
		for (int y = 0; y < th; y++)
			memcpy(px + ((size_t)(y0 + y) * W + x0) * 3,
			    tile[i] + (size_t)y * tw * 3, (size_t)tw * 3);
	}
	rc = save_png_atomic(path, px, W, H, 3, err, errlen);
	free(px);
	return rc;
}

// ----------------------------------------------------------------------------
// Resampling: PIL's libImaging/Resample.c algorithm, written anew from its
// description (a triangle filter widened by the scale when shrinking,
// normalised weights in 22-bit fixed point, horizontal pass first).

#define PREC_BITS (32 - 8 - 2)

/* Coefficients for outputs o0..o0+n-1 of a 1-D resize in -> out. */
typedef struct {
	int ksize;
	int *lo, *cnt;     /* first input and tap count per output */
	int32_t *k;        /* n*ksize weights */
	int kmax;          /* the largest cnt */
	int *plo;          /* the same taps padded with zero weights to */
	int32_t *pk;       /* kmax each (n*kmax), plo + kmax <= in */
} Coef;

static double
triangle(double x)
{
	x = fabs(x);
	return x < 1.0 ? 1.0 - x : 0.0;
}

static void
coef_make(Coef *c, int in, int out, int o0, int n)
{
	double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
	double support = fscale, ss = 1.0 / fscale, *w;

	c->ksize = (int)ceil(support) * 2 + 1;
	c->lo = emalloc(2 * n * sizeof *c->lo);
	c->cnt = c->lo + n;
	c->k = emalloc((size_t)n * c->ksize * sizeof *c->k);
	w = emalloc(c->ksize * sizeof *w);
	for (int i = 0; i < n; i++) {
		double center = (o0 + i + 0.5) * scale, sum = 0;
		int lo = (int)(center - support + 0.5);
		int hi = (int)(center + support + 0.5);
		if (lo < 0)
			lo = 0;
		if (hi > in)
			hi = in;
		hi -= lo;
		for (int x = 0; x < hi; x++) {
			w[x] = triangle((x + lo - center + 0.5) * ss);
			sum += w[x];
		}
		for (int x = 0; x < c->ksize; x++) {
			double v = x < hi ? (sum != 0.0 ? w[x] / sum : w[x])
			    : 0.0;
			c->k[i * c->ksize + x] = (int32_t)(v < 0 ?
			    -0.5 + v * (1 << PREC_BITS) :
			    0.5 + v * (1 << PREC_BITS));
		}
		c->lo[i] = lo;
		c->cnt[i] = hi;
	}
	free(w);
	/* Zero weights add nothing to the integer sums: the padded form
	 * gives the same bytes, with a tap count the compiler can unroll. */
	c->kmax = 1;
	for (int i = 0; i < n; i++)
		c->kmax = RL_MAX(c->kmax, c->cnt[i]);
	c->plo = emalloc(n * sizeof *c->plo);
	c->pk = ecalloc((size_t)n * c->kmax, sizeof *c->pk);
	for (int i = 0; i < n; i++) {
		int p = RL_MAX(0, RL_MIN(c->lo[i], in - c->kmax));
		c->plo[i] = p;
		for (int t = 0; t < c->cnt[i]; t++)
			c->pk[i * c->kmax + c->lo[i] - p + t] =
			    c->k[i * c->ksize + t];
	}
}

static void
coef_free(Coef *c)
{
	free(c->lo);
	free(c->k);
	free(c->plo);
	free(c->pk);
}

static inline uint8_t
clip8(int32_t v)
{
	if (v >= (1 << PREC_BITS << 8))
		return 255;
	if (v <= 0)
		return 0;
	return (uint8_t)(v >> PREC_BITS);
}

void
img_short_side_size(int w, int h, int s, int *ow, int *oh)
{
	if (w <= h) {
		*ow = s;
		*oh = (int)((double)s * h / w);
	} else {
		*oh = s;
		*ow = (int)((double)s * w / h);
	}
}

/* One RGB output pixel of the horizontal pass from K taps at p. */
static inline void
hpix_rgb(uint8_t *d, const uint8_t *p, const int32_t *k, const int K)
{
	int32_t a0 = 1 << (PREC_BITS - 1), a1 = a0, a2 = a0;

	for (int t = 0; t < K; t++) {
		a0 += p[3 * t] * k[t];
		a1 += p[3 * t + 1] * k[t];
		a2 += p[3 * t + 2] * k[t];
	}
	d[0] = clip8(a0);
	d[1] = clip8(a1);
	d[2] = clip8(a2);
}

/*
 * The horizontal pass for RGB with K taps per output; K is a constant
 * where it is called, so the tap loop unrolls. With SSE4.1 a pixel's three
 * channels are one vector: 4 bytes are loaded (the 4th, the next pixel's
 * red, gets a lane of its own and is dropped), so the last pixel of the
 * buffer (last_row and a tap on the row's end) goes the scalar way.
 */
static inline void
hpass_rgb(uint8_t *d, const uint8_t *s, int w, int sw, int last_row,
    const Coef *c, const int K)
{
#if defined(__SSE4_1__)
	const __m128i half = _mm_set1_epi32(1 << (PREC_BITS - 1));

	for (int x = 0; x < w; x++) {
		const int32_t *k = c->pk + x * K;
		const uint8_t *p = s + (size_t)c->plo[x] * 3;
		__m128i a = half;
		int32_t v;
		if (last_row && c->plo[x] + K == sw) {
			hpix_rgb(d + 3 * x, p, k, K);
			continue;
		}
		for (int t = 0; t < K; t++) {
			memcpy(&v, p + 3 * t, 4);
			a = _mm_add_epi32(a, _mm_mullo_epi32(_mm_cvtepu8_epi32(
			    _mm_cvtsi32_si128(v)), _mm_set1_epi32(k[t])));
		}
		/* clip8: >> 22, then saturate to 0..255. */
		a = _mm_srai_epi32(a, PREC_BITS);
		a = _mm_packus_epi16(_mm_packs_epi32(a, a), a);
		v = _mm_cvtsi128_si32(a);
		memcpy(d + 3 * x, &v, 3);
	}
#else
	(void)sw;
	(void)last_row;
	for (int x = 0; x < w; x++)
		hpix_rgb(d + 3 * x, s + (size_t)c->plo[x] * 3, c->pk + x * K,
		    K);
#endif
}

/* One row of the horizontal pass: w outputs from the input row s. */
static void
hpass_row(uint8_t *d, const uint8_t *s, int w, int sw, int last_row,
    int bands, const Coef *c)
{
	const int32_t half = 1 << (PREC_BITS - 1);

	if (bands == 3) {
		switch (c->kmax) {
		case 1: hpass_rgb(d, s, w, sw, last_row, c, 1); return;
		case 2: hpass_rgb(d, s, w, sw, last_row, c, 2); return;
		case 3: hpass_rgb(d, s, w, sw, last_row, c, 3); return;
		case 4: hpass_rgb(d, s, w, sw, last_row, c, 4); return;
		case 5: hpass_rgb(d, s, w, sw, last_row, c, 5); return;
		case 6: hpass_rgb(d, s, w, sw, last_row, c, 6); return;
		default: hpass_rgb(d, s, w, sw, last_row, c, c->kmax); return;
		}
	}
	for (int x = 0; x < w; x++) {
		const int32_t *k = c->pk + x * c->kmax;
		const uint8_t *p = s + (size_t)c->plo[x] * bands;
		for (int b = 0; b < bands; b++) {
			int32_t a = half;
			for (int t = 0; t < c->kmax; t++)
				a += p[t * bands + b] * k[t];
			d[x * bands + b] = clip8(a);
		}
	}
}

void
img_resample(uint8_t *dst, int x0, int y0, int w, int h, int ow, int oh,
    const uint8_t *src, int sw, int sh, int bands)
{
	Coef cx, cy;
	const uint8_t *rows;     // (ny, rstride): input rows ylo..yhi
	uint8_t *tmp = NULL;     // (ny, w, bands): the horizontal pass
	int32_t *acc;            // (w*bands): one row of the vertical pass
	int ylo, yhi, ny, n = w * bands;
	size_t rstride;

	/* The input rows the vertical pass reads. */
	coef_make(&cy, sh, oh, y0, h);
	ylo = cy.lo[0];
	yhi = ylo;
	for (int i = 0; i < h; i++)
		yhi = RL_MAX(yhi, cy.lo[i] + cy.cnt[i]);
	ny = yhi - ylo;

	if (ow == sw) {          /* PIL skips the pass; it would copy */
		rows = src + ((size_t)ylo * sw + x0) * bands;
		rstride = (size_t)sw * bands;
	} else {
		coef_make(&cx, sw, ow, x0, w);
		tmp = emalloc((size_t)ny * n);
		for (int y = 0; y < ny; y++)
			hpass_row(tmp + (size_t)y * n,
			    src + (size_t)(ylo + y) * sw * bands, w, sw,
			    ylo + y == sh - 1, bands, &cx);
		coef_free(&cx);
		rows = tmp;
		rstride = n;
	}
	acc = emalloc(n * sizeof *acc);
	for (int y = 0; y < h; y++) {
		uint8_t *d = dst + (size_t)y * n;
		const uint8_t *s = rows + (size_t)(cy.lo[y] - ylo) * rstride;
		const int32_t *k = cy.k + y * cy.ksize;
		if (oh == sh) {
			memcpy(d, s, n);
			continue;
		}
		for (int x = 0; x < n; x++)
			acc[x] = 1 << (PREC_BITS - 1);
		for (int t = 0; t < cy.cnt[y]; t++) {
			const uint8_t *r = s + t * rstride;
			int32_t kt = k[t];
			for (int x = 0; x < n; x++)
				acc[x] += r[x] * kt;
		}
		for (int x = 0; x < n; x++)
			d[x] = clip8(acc[x]);
	}
	free(acc);
	coef_free(&cy);
	free(tmp);
}

void
img_gray_rgb(uint8_t *px, size_t npix)
{
	for (size_t i = 0; i < npix; i++, px += 3)
		px[0] = px[1] = px[2] = img_luma(px[0], px[1], px[2]);
}

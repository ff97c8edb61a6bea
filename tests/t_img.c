/* t_img: img.h on real files through libjpeg-turbo and libvips, and
 * PIL-exact resampling; the pixel limit on a real decompression bomb.
 * `t_img --png-bomb path w h` writes that bomb for the CLI tests. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vips/vips.h>
#include <zlib.h>

#include "common/img.h"
#include "common/jpeg.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

#define DATA "tests/data/"

static char err[512];

/* The synthetic source the PIL hashes below were computed on. */
static uint8_t *
pattern(int w, int h)
{
	uint8_t *a = malloc((size_t)w * h * 3);

	th_pattern(a, w, h);
	return a;
}

TEST(load_png_rgb)
{
	Image im;
	int fw = 0, fh = 0;

	CHECK(img_load(&im, DATA "rgb12x9.png", 0, &fw, &fh, err,
	    sizeof err) == 0, "%s", err);
	CHECK(im.w == 12 && im.h == 9 && im.bands == 3 && fw == 12 &&
	    fh == 9, "%dx%dx%d", im.w, im.h, im.bands);
	for (int y = 0; y < 9; y++)
		for (int x = 0; x < 12; x++) {
			const uint8_t *p = im.data + (y * 12 + x) * 3;
			CHECK(p[0] == x * 20 && p[1] == y * 25 &&
			    p[2] == (x + y) * 10, "pixel %d,%d", x, y);
		}
	img_free(&im);
}

TEST(load_grey_and_alpha)
{
	Image im;

	CHECK(img_load(&im, DATA "grey12x9.png", 0, NULL, NULL, err,
	    sizeof err) == 0, "%s", err);
	CHECK(im.bands == 3, "grey becomes RGB");
	CHECK(im.data[(4 * 12 + 5) * 3] == 5 * 20 + 4 &&
	    im.data[(4 * 12 + 5) * 3 + 2] == 5 * 20 + 4, "grey copied");
	img_free(&im);
	CHECK(img_load(&im, DATA "rgba12x9.png", 0, NULL, NULL, err,
	    sizeof err) == 0, "%s", err);
	CHECK(im.bands == 3 && im.data[(2 * 12 + 3) * 3 + 2] == 50,
	    "alpha dropped, RGB kept");
	img_free(&im);
}

TEST(load_jpeg)
{
	Image im;
	double sum[3] = {0};

	CHECK(img_load(&im, DATA "photo64x48.jpg", 0, NULL, NULL, err,
	    sizeof err) == 0, "%s", err);
	CHECK(im.w == 64 && im.h == 48, "%dx%d", im.w, im.h);
	for (int i = 0; i < 64 * 48; i++)
		for (int c = 0; c < 3; c++)
			sum[c] += im.data[3 * i + c];
	/* PIL (libjpeg-turbo) decodes it to means 125.90, 117.58, 127.49
	 * and pixel (20,10) = 81,49,122. */
	CHECK_NEAR(sum[0] / (64 * 48), 125.90, 0.5, 0);
	CHECK_NEAR(sum[1] / (64 * 48), 117.58, 0.5, 0);
	CHECK_NEAR(sum[2] / (64 * 48), 127.49, 0.5, 0);
	CHECK_NEAR(im.data[(10 * 64 + 20) * 3], 81, 2, 0);
	img_free(&im);
}

TEST(shrink_on_load)
{
	Image im;
	int fw, fh;

	/* 64x48 with a 20 px minimum: 1/2 keeps 24 >= 20, 1/4 would not. */
	CHECK(img_load(&im, DATA "photo64x48.jpg", 20, &fw, &fh, err,
	    sizeof err) == 0, "%s", err);
	CHECK(im.w == 32 && im.h == 24 && fw == 64 && fh == 48,
	    "%dx%d of %dx%d", im.w, im.h, fw, fh);
	img_free(&im);
	CHECK(img_load(&im, DATA "photo64x48.jpg", 25, &fw, &fh, err,
	    sizeof err) == 0, "%s", err);
	CHECK(im.w == 64 && im.h == 48, "no shrink below the minimum");
	img_free(&im);
}

TEST(refused)
{
	Image im;

	CHECK(img_load(&im, DATA "truncated.jpg", 0, NULL, NULL, err,
	    sizeof err) < 0, "a truncated JPEG loads");
	CHECK(strstr(err, "Premature end") != NULL && !strchr(err, '\n'),
	    "message: %s", err);
	CHECK(img_load(&im, DATA "notimage.jpg", 0, NULL, NULL, err,
	    sizeof err) < 0, "text loads as an image");
	CHECK(strstr(err, "not an image") != NULL, "message: %s", err);
	CHECK(img_load(&im, DATA "no-such-file.png", 0, NULL, NULL, err,
	    sizeof err) < 0, "a missing file loads");
	CHECK(strstr(err, "No such file") != NULL, "message: %s", err);
	CHECK(im.data == NULL, "empty after failure");
}

/* libvips' own decode of path (jpegload with shrink), grey copied to RGB
 * and CMYK converted to sRGB: what img_load must give. */
static uint8_t *
vips_pixels(const char *path, int shrink, int *w, int *h)
{
	VipsImage *x, *t;
	size_t n;
	uint8_t *px;

	x = shrink > 1 ? vips_image_new_from_file(path, "shrink", shrink,
	    NULL) : vips_image_new_from_file(path, NULL);
	if (!x)
		return NULL;
	if (x->Type == VIPS_INTERPRETATION_CMYK) {
		if (vips_colourspace(x, &t, VIPS_INTERPRETATION_sRGB, NULL))
			return NULL;
		g_object_unref(x);
		x = t;
	}
	if (x->Bands == 1) {
		VipsImage *b[3] = { x, x, x };
		if (vips_bandjoin(b, &t, 3, NULL))
			return NULL;
		g_object_unref(x);
		x = t;
	}
	px = vips_image_write_to_memory(x, &n);
	*w = x->Xsize;
	*h = x->Ysize;
	g_object_unref(x);
	return px;
}

/* Write path as a JPEG made by libvips from photo64x48.jpg in the colour
 * space it (b-w, cmyk). */
static int
make_jpeg(const char *path, VipsInterpretation it)
{
	VipsImage *x = vips_image_new_from_file(DATA "photo64x48.jpg", NULL),
	    *t;
	int rc;

	if (!x)
		return -1;
	rc = it == VIPS_INTERPRETATION_CMYK ?
	    vips_icc_export(x, &t, "output_profile", "cmyk", NULL) :
	    vips_colourspace(x, &t, it, NULL);
	g_object_unref(x);
	if (rc)
		return -1;
	rc = vips_jpegsave(t, path, NULL);
	g_object_unref(t);
	return rc;
}

/* img_load decodes a colour, a grey and a CMYK JPEG (the first two through
 * jpeg.c, the last through libvips), at full size and shrunk, to exactly
 * libvips' pixels. */
TEST(jpeg_matches_libvips)
{
	const char *tmp = getenv("TMP");
	char grey[512], cmyk[512];
	const char *path[3] = { DATA "photo64x48.jpg", grey, cmyk };

	snprintf(grey, sizeof grey, "%s/grey.jpg", tmp ? tmp : "/tmp");
	snprintf(cmyk, sizeof cmyk, "%s/cmyk.jpg", tmp ? tmp : "/tmp");
	CHECK(make_jpeg(grey, VIPS_INTERPRETATION_B_W) == 0 &&
	    make_jpeg(cmyk, VIPS_INTERPRETATION_CMYK) == 0, "libvips: %s",
	    vips_error_buffer());
	for (int i = 0; i < 3; i++)
		for (int shrink = 1; shrink <= 2; shrink++) {
			Image im;
			int w = 0, h = 0, fw, fh;
			uint8_t *ref = vips_pixels(path[i], i < 2 ? shrink : 1,
			    &w, &h);

			CHECK(ref != NULL, "libvips reads %s", path[i]);
			CHECK(img_load(&im, path[i], shrink == 2 ? 24 : 0, &fw,
			    &fh, err, sizeof err) == 0, "%s: %s", path[i], err);
			if (!ref || !im.data)
				continue;
			CHECK(fw == 64 && fh == 48 && im.w == w && im.h == h &&
			    im.bands == 3, "%s: %dx%d, libvips %dx%d", path[i],
			    im.w, im.h, w, h);
			if (im.w == w && im.h == h)
				CHECK(memcmp(im.data, ref, (size_t)w * h * 3) ==
				    0, "%s at 1/%d: pixels differ from libvips'",
				    path[i], shrink);
			img_free(&im);
			g_free(ref);
		}
	unlink(grey);
	unlink(cmyk);
}

/* A JPEG cut anywhere is refused (libjpeg would fill the rest with grey),
 * even one that lacks only its EOI marker, as libvips (fail_on=truncated)
 * and PIL refuse it. */
TEST(jpeg_cut)
{
	FILE *fp = fopen(DATA "photo64x48.jpg", "rb");
	static uint8_t buf[1 << 16];
	size_t len = fp ? fread(buf, 1, sizeof buf, fp) : 0;
	uint8_t *px;
	int w, h, fw, fh;

	if (fp)
		fclose(fp);
	CHECK(len > 1000 && buf[len - 2] == 0xff && buf[len - 1] == 0xd9,
	    "photo64x48.jpg ends with EOI");
	CHECK(jpeg_sniff(buf, len) && !jpeg_sniff("\x89PNG", 4), "sniff");
	for (int k = 1; k <= 9; k++) {
		size_t cut = len * k / 10;
		CHECK(jpeg_decode(buf, cut, 0, IMG_MAX_PIXELS_DEFAULT, &px, &w,
		    &h, &fw, &fh, err, sizeof err) < 0 && px == NULL,
		    "cut at %zu of %zu loads",
		    cut, len);
		CHECK(strchr(err, '\n') == NULL && err[0], "one line: %s",
		    err);
	}
	CHECK(jpeg_decode(buf, len - 2, 0, IMG_MAX_PIXELS_DEFAULT, &px, &w,
	    &h, &fw, &fh, err, sizeof err) < 0 && strstr(err, "Premature end"),
	    "no EOI loads");
	/* One pixel over the limit is refused from the header. */
	CHECK(jpeg_decode(buf, len, 0, 64 * 48 - 1, &px, &w, &h, &fw, &fh, err,
	    sizeof err) < 0 && px == NULL && strstr(err, "64 x 48 = 3072 "
	    "pixels, over the limit of 3071"), "limit: %s", err);
	CHECK(jpeg_decode(buf, len, 0, 64 * 48, &px, &w, &h, &fw, &fh, err,
	    sizeof err) == 0 && w == 64 && h == 48, "%s", err);
	free(px);
}

/* Deflate's bits, least significant first (RFC 1951 3.1.1). */
typedef struct {
	FILE *fp;
	uint32_t acc;
	int n;
} Bits;

static void
put_bits(Bits *b, uint32_t v, int n)
{
	b->acc |= v << b->n;
	for (b->n += n; b->n >= 8; b->n -= 8, b->acc >>= 8)
		putc((int)(b->acc & 0xff), b->fp);
}

/* A Huffman code goes most significant bit first. */
static void
put_code(Bits *b, uint32_t code, int n)
{
	uint32_t r = 0;

	for (int i = 0; i < n; i++)
		r |= ((code >> i) & 1) << (n - 1 - i);
	put_bits(b, r, n);
}

static void
put_chunk(FILE *fp, const char *type, const uint8_t *d, uint32_t n)
{
	uint8_t len[4] = { n >> 24, n >> 16, n >> 8, n };
	uint32_t crc = (uint32_t)crc32(crc32(0, (const Bytef *)type, 4), d, n);
	uint8_t c[4] = { crc >> 24, crc >> 16, crc >> 8, crc };

	fwrite(len, 1, 4, fp);
	fwrite(type, 1, 4, fp);
	if (n > 0)
		fwrite(d, 1, n, fp);
	fwrite(c, 1, 4, fp);
}

/*
 * A valid w x h black 8-bit grey PNG, written without compressing its
 * h (w + 1) zero bytes: one fixed-Huffman deflate block of a literal 0
 * and copies of 258 bytes at distance 1 (13 bits per 258 pixels). A
 * 30000 x 30000 one is 5.7 MB and takes milliseconds to write. 0 or -1.
 */
static int
png_bomb(const char *path, uint32_t w, uint32_t h)
{
	uint64_t raw = (uint64_t)h * (w + 1), left = raw - 1;
	uint32_t adler = (uint32_t)((raw % 65521) << 16 | 1);
	char *z = NULL;
	size_t zlen = 0;
	FILE *mem = open_memstream(&z, &zlen), *fp;
	Bits b = { mem, 0, 0 };
	uint8_t ihdr[13] = { w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16,
	    h >> 8, h, 8, 0, 0, 0, 0 };
	uint8_t a[4] = { adler >> 24, adler >> 16, adler >> 8, adler };

	if (mem == NULL)
		return -1;
	putc(0x78, mem);
	putc(0x01, mem);
	put_bits(&b, 1, 1);             /* BFINAL */
	put_bits(&b, 1, 2);             /* fixed Huffman codes */
	put_code(&b, 0x30, 8);          /* literal 0 */
	for (; left >= 258; left -= 258) {
		put_code(&b, 0xc5, 8);  /* length 258 (symbol 285) */
		put_code(&b, 0, 5);     /* distance 1 */
	}
	for (; left > 0; left--)
		put_code(&b, 0x30, 8);
	put_code(&b, 0, 7);             /* end of block */
	put_bits(&b, 0, 7);             /* to a byte boundary */
	fwrite(a, 1, 4, mem);
	fclose(mem);
	if ((fp = fopen(path, "wb")) == NULL) {
		free(z);
		return -1;
	}
	fwrite("\x89PNG\r\n\x1a\n", 1, 8, fp);
	put_chunk(fp, "IHDR", ihdr, sizeof ihdr);
	put_chunk(fp, "IDAT", (const uint8_t *)z, (uint32_t)zlen);
	put_chunk(fp, "IEND", NULL, 0);
	free(z);
	return fclose(fp) == 0 ? 0 : -1;
}

/* A 30000 x 30000 PNG is refused from its header, at once; the limit
 * moves; a small bomb decodes to the right pixels (so the file is real). */
TEST(pixel_limit)
{
	const char *t = getenv("TMP");
	char path[4096];
	Image im;
	double t0;
	int ok;

	snprintf(path, sizeof path, "%s/bomb.png", t && *t ? t : "/tmp");
	CHECK(png_bomb(path, 300, 200) == 0, "write %s", path);
	CHECK(img_load(&im, path, 0, NULL, NULL, err, sizeof err) == 0 &&
	    im.w == 300 && im.h == 200 && im.data[0] == 0 &&
	    im.data[3 * 300 * 200 - 1] == 0, "small bomb: %s", err);
	img_free(&im);
	CHECK(png_bomb(path, 30000, 30000) == 0, "write %s", path);
	t0 = now_seconds();
	CHECK(img_load(&im, path, 0, NULL, NULL, err, sizeof err) == -1 &&
	    im.data == NULL && strstr(err, "30000 x 30000 = 900000000 pixels, "
	    "over the limit of 178956970"), "big bomb: %s", err);
	CHECK(now_seconds() - t0 < 1, "took %g s", now_seconds() - t0);
	unlink(path);

	img_set_max_pixels(12 * 9 - 1);
	CHECK(img_max_pixels() == 107, "limit %llu",
	    (unsigned long long)img_max_pixels());
	CHECK(img_load(&im, DATA "rgb12x9.png", 0, NULL, NULL, err,
	    sizeof err) == -1 && strstr(err, "12 x 9 = 108 pixels"), "png: %s",
	    err);
	CHECK(img_load(&im, DATA "photo64x48.jpg", 0, NULL, NULL, err,
	    sizeof err) == -1 && strstr(err, "64 x 48"), "jpeg: %s", err);
	img_set_max_pixels(12 * 9);
	ok = img_load(&im, DATA "rgb12x9.png", 0, NULL, NULL, err,
	    sizeof err) == 0;
	CHECK(ok, "at the limit: %s", err);
	img_free(&im);
	img_set_max_pixels(0);
	CHECK(img_max_pixels() == IMG_MAX_PIXELS_DEFAULT, "default back");
}

TEST(short_side_rule)
{
	int w, h;

	img_short_side_size(500, 375, 292, &w, &h);
	CHECK(w == 389 && h == 292, "%dx%d", w, h);   /* int(292*500/375) */
	img_short_side_size(375, 500, 292, &w, &h);
	CHECK(w == 292 && h == 389, "%dx%d", w, h);
	img_short_side_size(28, 28, 96, &w, &h);
	CHECK(w == 96 && h == 96, "%dx%d", w, h);
	img_short_side_size(640, 427, 292, &w, &h);
	CHECK(w == 437 && h == 292, "%dx%d", w, h);   /* 437.65 truncated */
}

/* Hashes of PIL 9.4 Image.resize(BILINEAR) on pattern(w, h). */
TEST(resample_matches_pil)
{
	static const struct { int w, h, ow, oh; uint32_t hash; } c[] = {
		{ 7, 5, 4, 3, 0x83a41d63 },
		{ 53, 37, 29, 41, 0xae29b3b8 },
		{ 53, 37, 17, 13, 0xb9e51308 },
		{ 53, 37, 53, 20, 0x26dfa603 },
		{ 53, 37, 80, 37, 0x9c9d02e2 },
		{ 500, 375, 389, 292, 0x72aacbc1 },
	};
	static const uint8_t first[12] = {
		25, 98, 171, 86, 159, 160, 158, 180, 48, 162, 48, 109 };

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		uint8_t *src = pattern(c[i].w, c[i].h);
		uint8_t *dst = malloc((size_t)c[i].ow * c[i].oh * 3);
		img_resample(dst, 0, 0, c[i].ow, c[i].oh, c[i].ow, c[i].oh,
		    src, c[i].w, c[i].h, 3);
		CHECK(th_fnv1a(dst, (size_t)c[i].ow * c[i].oh * 3) == c[i].hash,
		    "%dx%d -> %dx%d differs from PIL", c[i].w, c[i].h,
		    c[i].ow, c[i].oh);
		if (i == 0)
			CHECK(memcmp(dst, first, 12) == 0, "first pixels");
		free(src);
		free(dst);
	}
}

TEST(resample_window)
{
	int w = 53, h = 37, ow = 41, oh = 60;
	uint8_t *src = pattern(w, h), *full = malloc(ow * oh * 3);
	uint8_t win[9 * 13 * 3];

	img_resample(full, 0, 0, ow, oh, ow, oh, src, w, h, 3);
	for (int t = 0; t < 4; t++) {
		int x0 = t * 10, y0 = t * 15;
		img_resample(win, x0, y0, 9, 13, ow, oh, src, w, h, 3);
		for (int y = 0; y < 13; y++)
			CHECK(memcmp(win + y * 9 * 3,
			    full + ((y0 + y) * ow + x0) * 3, 27) == 0,
			    "window %d row %d", t, y);
	}
	img_resample(win, 0, 0, 9, 13, w, h, src, w, h, 3);
	CHECK(memcmp(win, src, 27) == 0, "same size copies");
	free(src);
	free(full);
}

TEST(png_and_montage)
{
	const char *tmp = getenv("TMP");
	char path[512];
	uint8_t t0[6 * 4 * 3], t1[6 * 4 * 3];
	const uint8_t *tiles[3] = { t0, t1, t0 };
	Image im;

	memset(t0, 200, sizeof t0);
	memset(t1, 10, sizeof t1);
	snprintf(path, sizeof path, "%s/m.png", tmp ? tmp : "/tmp");
	CHECK(img_montage_png(path, tiles, 3, 6, 4, 2, 1, 255, err,
	    sizeof err) == 0, "%s", err);
	CHECK(img_load(&im, path, 0, NULL, NULL, err, sizeof err) == 0,
	    "%s", err);
	/* 2 columns, 2 rows: 2*6 + 3 by 2*4 + 3. */
	CHECK(im.w == 15 && im.h == 11, "%dx%d", im.w, im.h);
	CHECK(im.data[0] == 255 && im.data[(1 * 15 + 1) * 3] == 200 &&
	    im.data[(1 * 15 + 8) * 3] == 10 &&
	    im.data[(6 * 15 + 8) * 3] == 255, "tile placement");
	img_free(&im);
	CHECK(img_save_png("/nonexistent-dir/x.png", t0, 6, 4, 3, err,
	    sizeof err) < 0 && strstr(err, "/nonexistent-dir/x.png"),
	    "unwritable path: %s", err);
	unlink(path);
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--png-bomb") == 0)
		return png_bomb(argv[2], (uint32_t)atol(argv[3]),
		    (uint32_t)atol(argv[4])) == 0 ? 0 : 1;
	if (img_start(argv[0], err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	RUN(load_png_rgb);
	RUN(load_grey_and_alpha);
	RUN(load_jpeg);
	RUN(shrink_on_load);
	RUN(refused);
	RUN(jpeg_matches_libvips);
	RUN(jpeg_cut);
	RUN(pixel_limit);
	RUN(short_side_rule);
	RUN(resample_matches_pil);
	RUN(resample_window);
	RUN(png_and_montage);
	img_stop();
	return check_summary();
}

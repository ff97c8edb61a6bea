/* t_prep: the evaluation presets against torchvision on PIL images
 * (hashes and values computed with torchvision 0.14 and PIL 9.4 on the
 * synthetic pattern below), the centre-crop rounding and refusals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/prep.h"
#include "tests/check.h"
#include "tests/helpers.h"

static char err[512];

/* The pattern of t_img.c: smooth ramps with a small-period texture. */
static void
pattern(Image *im, int w, int h)
{
	img_alloc(im, w, h, 3);
	th_pattern(im->data, w, h);
}

/*
 * /usr/bin/python3: for (w, h): im = Image.fromarray(pattern(w, h));
 * fnv1a(np.asarray(T.Compose([T.Resize(256), T.Resize((224, 224))])(im)))
 * and the same with T.CenterCrop(224) for the second resize. 300x459 and
 * 300x457 resize to 256x391 and 256x389: crop tops 83.5 and 82.5, which
 * Python rounds to 84 and 82.
 */
TEST(presets_match_torchvision)
{
	static const struct {
		int w, h;
		uint32_t svm, center;
	} want[] = {
		{500, 375, 0x0b1509bd, 0xc8795e27},
		{300, 459, 0x7e356478, 0xbdff442f},
		{300, 457, 0x8cd46210, 0x92841cf6},
		{459, 300, 0x72d3693d, 0x15b6b361},
		{224, 224, 0xcb0e5efb, 0x019ba7fc},
	};
	uint8_t *px = malloc(224 * 224 * 3);
	PrepBuf pb = {0};

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		PrepSpec svm = {PREP_SVM, 256, 224};
		PrepSpec cen = {PREP_CENTER, 256, 224};
		Image im;

		pattern(&im, want[i].w, want[i].h);
		CHECK(prep_pixels(px, &im, &svm, &pb, err, sizeof err) == 0,
		    "%s", err);
		CHECK(th_fnv1a(px, 224 * 224 * 3) == want[i].svm, "svm %dx%d: "
		    "0x%08x", want[i].w, want[i].h, th_fnv1a(px, 224 * 224 * 3));
		CHECK(prep_pixels(px, &im, &cen, &pb, err, sizeof err) == 0,
		    "%s", err);
		CHECK(th_fnv1a(px, 224 * 224 * 3) == want[i].center, "center "
		    "%dx%d: 0x%08x", want[i].w, want[i].h,
		    th_fnv1a(px, 224 * 224 * 3));
		img_free(&im);
	}
	prep_buf_free(&pb);
	free(px);
}

TEST(center_offset)
{
	// Python: round(d / 2), halves to even
	static const int d[] = {0, 1, 2, 3, 5, 32, 165, 167, 276};
	static const int want[] = {0, 0, 1, 2, 2, 16, 82, 84, 138};

	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		CHECK(prep_center_offset(d[i]) == want[i], "round(%d/2) = %d",
		    d[i], prep_center_offset(d[i]));
}

/* ToTensor + Normalize: torchvision's values for the centre preset of the
 * 500x375 pattern at (h, w) = (0, 0) and (100, 37). */
TEST(normalize)
{
	static const float want[2][3] = {
		{-0.35405433f, 1.0455183f, 0.98422676f},
		{0.21106265f, 1.3081232f, -0.09638336f},
	};
	static const int at[2] = {0, 100 * 224 + 37};
	PrepSpec cen = {PREP_CENTER, 256, 224};
	float *x = malloc(224 * 224 * 3 * sizeof *x);
	PrepBuf pb = {0};
	Image im;

	pattern(&im, 500, 375);
	CHECK(prep_image(x, &im, &cen, &pb, err, sizeof err) == 0, "%s", err);
	for (int k = 0; k < 2; k++)
		for (int c = 0; c < 3; c++)
			CHECK_NEAR(x[at[k] * 3 + c], want[k][c], 0, 2e-7);
	img_free(&im);
	prep_buf_free(&pb);
	free(x);
}

TEST(none_and_refusals)
{
	PrepSpec none = {PREP_NONE, 256, 224}, cen = {PREP_CENTER, 16, 8};
	uint8_t *px = malloc(224 * 224 * 3);
	PrepBuf pb = {0};
	Image im;

	pattern(&im, 224, 224);
	CHECK(prep_pixels(px, &im, &none, &pb, err, sizeof err) == 0 &&
	    memcmp(px, im.data, 224 * 224 * 3) == 0, "none copies");
	img_free(&im);
	pattern(&im, 225, 224);
	CHECK(prep_pixels(px, &im, &none, &pb, err, sizeof err) == -1 &&
	    strstr(err, "225x224") && strstr(err, "224x224"), "%s", err);
	img_free(&im);
	// 1000x1: the shorter side 1 becomes 16, the longer 16000; fine
	pattern(&im, 1000, 1);
	CHECK(prep_pixels(px, &im, &cen, &pb, err, sizeof err) == 0, "%s",
	    err);
	img_free(&im);
	prep_buf_free(&pb);
	free(px);
}

TEST(names)
{
	PrepMode m;

	CHECK(prep_parse("svm", &m) == 0 && m == PREP_SVM, "svm");
	CHECK(prep_parse("center", &m) == 0 && m == PREP_CENTER, "center");
	CHECK(prep_parse("none", &m) == 0 && m == PREP_NONE, "none");
	CHECK(prep_parse("centre", &m) == -1, "unknown");
	CHECK(strcmp(prep_name(PREP_CENTER), "center") == 0, "name");
}

int
main(void)
{
	RUN(presets_match_torchvision);
	RUN(center_offset);
	RUN(normalize);
	RUN(none_and_refusals);
	RUN(names);
	return check_summary();
}

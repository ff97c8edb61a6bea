/* t_grid: the presets' geometry over many draws, grey, chroma handling. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/grid.h"
#include "common/img.h"
#include "common/rng.h"
#include "tests/check.h"

static char err[512];

TEST(presets)
{
	GridConfig c;

	CHECK(grid_config_init(&c, "mmselfsup", NULL, err, sizeof err) == 0,
	    "%s", err);
	CHECK(c.short_side == 292 && c.crop == 255 && c.pitch == 85 &&
	    c.patch == 64 && c.jitter == 21, "mmselfsup geometry");
	CHECK(c.gray_p == 0.66 && c.chroma == GRID_CHROMA_NONE &&
	    c.down_p == 0, "mmselfsup colour");
	CHECK(grid_config_init(&c, "doersch2015", NULL, err, sizeof err) == 0,
	    "%s", err);
	CHECK(c.short_side == 0 && c.area_min == 150000 &&
	    c.area_max == 450000, "doersch size");
	CHECK(c.patch == 96 && c.pitch == 144 && c.jitter == 14 &&
	    c.crop == 2 * 144 + 96 + 14, "doersch geometry");
	CHECK(c.chroma == GRID_CHROMA_DROP && c.down_p == 0.33 &&
	    c.down_min == 100 && c.gray_p == 0, "doersch colour");
}

TEST(overrides)
{
	GridConfig c;
	GridGeometry g = { .resize = 96, .crop = 90, .patch = 24 };

	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) == 0,
	    "%s", err);
	CHECK(c.short_side == 96 && c.pitch == 30 && c.patch == 24 &&
	    c.jitter == 6, "fashion geometry %d %d %d", c.pitch, c.patch,
	    c.jitter);
	g = (GridGeometry){ .crop = 90 };
	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) == 0 &&
	    c.jitter == 7 && c.patch == 23, "jitter scales with the cell");
	g = (GridGeometry){ .resize = 96, .patch = 24, .gap = 6, .jitter = 2 };
	CHECK(grid_config_init(&c, "doersch2015", &g, err, sizeof err) == 0,
	    "%s", err);
	CHECK(c.short_side == 96 && c.area_max == 0 && c.pitch == 30 &&
	    c.jitter == 4 && c.crop == 88, "doersch small %d", c.crop);
	g = (GridGeometry){ .jitter = GRID_NO_JITTER };
	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) == 0 &&
	    c.jitter == 0 && c.patch == 85, "no jitter: %d", c.patch);
	CHECK(grid_config_init(&c, "doersch2015", &g, err, sizeof err) == 0 &&
	    c.jitter == 0 && c.crop == 2 * 144 + 96, "no jitter: %d", c.crop);
	g = (GridGeometry){ .area_min = 1000, .area_max = 2000 };
	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) < 0,
	    "a 255 crop in 2000 pixels");
	g = (GridGeometry){ .gap = 5 };
	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) < 0 &&
	    strstr(err, "gap"), "gap in the cells layout: %s", err);
	g = (GridGeometry){ .patch = 80, .jitter = 10 };
	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) < 0,
	    "patch + jitter beyond the cell");
	g = (GridGeometry){ .resize = 200 };
	CHECK(grid_config_init(&c, "mmselfsup", &g, err, sizeof err) < 0,
	    "resize below the crop");
	g = (GridGeometry){ .crop = 300 };
	CHECK(grid_config_init(&c, "doersch2015", &g, err, sizeof err) < 0,
	    "crop below the lattice");
	CHECK(grid_config_init(&c, "imagenet", NULL, err, sizeof err) < 0 &&
	    strstr(err, "unknown preset"), "unknown preset");
}

/* Every invariant of one draw. */
static int
grid_ok(const Grid *g, const GridConfig *c, int w, int h)
{
	int ok = 1;

	if (c->short_side) {
		int ow, oh;
		img_short_side_size(w, h, c->short_side, &ow, &oh);
		ok &= g->out_w == ow && g->out_h == oh;
	} else {
		double a = (double)g->out_w * g->out_h;
		ok &= a >= c->area_min * 0.99 && a <= c->area_max * 1.01;
		ok &= fabs((double)g->out_w / g->out_h - (double)w / h) <
		    0.02 * w / h;
	}
	ok &= g->wx >= 0 && g->wy >= 0 && g->wx + c->crop <= g->out_w &&
	    g->wy + c->crop <= g->out_h;
	for (int i = 0; i < RECORD_NPATCH; i++) {
		int dx = g->x[i] - g->wx - (i % 3) * c->pitch;
		int dy = g->y[i] - g->wy - (i / 3) * c->pitch;
		ok &= dx >= 0 && dx <= c->jitter && dy >= 0 && dy <= c->jitter;
		ok &= g->x[i] + c->patch <= g->wx + c->crop &&
		    g->y[i] + c->patch <= g->wy + c->crop;
		ok &= g->down[i] == 0 || (g->down[i] >= 10 &&
		    g->down[i] < c->patch);
		ok &= c->chroma != GRID_CHROMA_DROP ||
		    (g->keep[i] >= 0 && g->keep[i] < 3);
	}
	/* Row-major: the centre (index 4) lies between its neighbours. */
	ok &= g->x[3] < g->x[4] && g->x[4] < g->x[5] &&
	    g->y[1] < g->y[4] && g->y[4] < g->y[7];
	return ok;
}

static void
many_draws(const char *preset, const GridGeometry *geo, int ndraw,
    double *gray_rate, double *down_rate, int *jmin, int *jmax)
{
	static const int size[][2] = { { 500, 375 }, { 375, 500 },
	    { 640, 427 }, { 1200, 300 }, { 400, 400 }, { 3000, 2000 },
	    { 28, 28 } };
	GridConfig c;
	Grid g;
	Rng r;
	int bad = 0, ngray = 0, ndown = 0, n = 0;

	CHECK(grid_config_init(&c, preset, geo, err, sizeof err) == 0, "%s",
	    err);
	*jmin = 1 << 30;
	*jmax = -1;
	for (int k = 0; k < ndraw; k++) {
		int w = size[k % 7][0], h = size[k % 7][1];
		rng_init(&r, 7, RNG_STREAM_SAMPLE, k);
		if (grid_draw(&g, &c, w, h, &r, err, sizeof err) < 0)
			continue;
		n++;
		bad += !grid_ok(&g, &c, w, h);
		ngray += g.gray;
		for (int i = 0; i < RECORD_NPATCH; i++) {
			int dx = g.x[i] - g.wx - (i % 3) * c.pitch;
			ndown += g.down[i] > 0;
			*jmin = dx < *jmin ? dx : *jmin;
			*jmax = dx > *jmax ? dx : *jmax;
		}
	}
	CHECK(n > ndraw / 2, "%s: only %d of %d draws fit", preset, n, ndraw);
	CHECK(bad == 0, "%s: %d draws break an invariant", preset, bad);
	*gray_rate = (double)ngray / n;
	*down_rate = (double)ndown / (9.0 * n);
}

TEST(mmselfsup_draws)
{
	double gr, dr;
	int jmin, jmax;
	GridGeometry fm = { .resize = 96, .crop = 90, .patch = 24 };

	many_draws("mmselfsup", NULL, 7000, &gr, &dr, &jmin, &jmax);
	CHECK_NEAR(gr, 0.66, 0.025, 0);
	CHECK(dr == 0, "no downsampling");
	CHECK(jmin == 0 && jmax == 21, "offsets cover 0..21: %d..%d", jmin,
	    jmax);
	many_draws("mmselfsup", &fm, 3000, &gr, &dr, &jmin, &jmax);
	CHECK(jmin == 0 && jmax == 6, "offsets 0..6: %d..%d", jmin, jmax);
}

TEST(doersch_draws)
{
	double gr, dr;
	int jmin, jmax;

	many_draws("doersch2015", NULL, 7000, &gr, &dr, &jmin, &jmax);
	CHECK(gr == 0, "no grey");
	CHECK_NEAR(dr, 0.33, 0.02, 0);
	CHECK(jmin == 0 && jmax == 14, "offsets cover -7..7: %d..%d", jmin,
	    jmax);
}

TEST(too_small)
{
	GridConfig c;
	Grid g;
	Rng r;

	rng_init(&r, 1, RNG_STREAM_SAMPLE, 0);
	grid_config_init(&c, "doersch2015", NULL, err, sizeof err);
	CHECK(grid_draw(&g, &c, 2000, 200, &r, err, sizeof err) < 0 &&
	    strstr(err, "too small"), "10:1 at <= 450K: %s", err);
	CHECK(grid_draw(&g, &c, 500, 375, &r, err, sizeof err) == 0,
	    "500x375 fits: %s", err);
	CHECK(g.out_w >= 398 && g.out_h >= 398, "window fits");
	grid_config_init(&c, "mmselfsup", NULL, err, sizeof err);
	CHECK(grid_draw(&g, &c, 7, 100, &r, err, sizeof err) < 0 &&
	    strstr(err, "too small"), "7 px: %s", err);
}

TEST(gray_values)
{
	/* PIL 9.4 convert('L') of these colours. */
	static const uint8_t rgb[][4] = { { 255, 0, 0, 76 }, { 0, 255, 0, 150 },
	    { 0, 0, 255, 29 }, { 10, 200, 30, 124 }, { 128, 128, 128, 128 },
	    { 1, 2, 3, 2 }, { 250, 251, 3, 222 }, { 255, 255, 255, 255 } };
	uint8_t px[3 * 8];

	for (int i = 0; i < 8; i++) {
		CHECK(img_luma(rgb[i][0], rgb[i][1], rgb[i][2]) == rgb[i][3],
		    "luma %d", i);
		memcpy(px + 3 * i, rgb[i], 3);
	}
	img_gray_rgb(px, 8);
	for (int i = 0; i < 8; i++)
		CHECK(px[3 * i] == rgb[i][3] && px[3 * i + 1] == rgb[i][3] &&
		    px[3 * i + 2] == rgb[i][3], "grey copied %d", i);
}

TEST(projection)
{
	double B[3][3], a[3] = { -1, 2, -1 };
	static const double want[3][3] = { { 5.0 / 6, 1.0 / 3, -1.0 / 6 },
	    { 1.0 / 3, 1.0 / 3, 1.0 / 3 }, { -1.0 / 6, 1.0 / 3, 5.0 / 6 } };

	grid_projection(B);
	for (int i = 0; i < 3; i++) {
		double ba = 0;
		for (int j = 0; j < 3; j++) {
			double bb = 0;
			CHECK_NEAR(B[i][j], want[i][j], 1e-12, 0);
			CHECK_NEAR(B[i][j], B[j][i], 1e-12, 0);
			for (int k = 0; k < 3; k++)
				bb += B[i][k] * B[k][j];
			CHECK_NEAR(bb, B[i][j], 1e-12, 0);   /* idempotent */
			ba += B[i][j] * a[j];
		}
		CHECK_NEAR(ba, 0, 1e-12, 0);    /* a is projected out */
	}
}

TEST(colour_handling)
{
	GridConfig c;
	GridGeometry geo = { .resize = 96, .patch = 24, .gap = 6, .jitter = 2 };
	Grid g;
	Rng r;
	uint8_t px[24 * 24 * 3], orig[24 * 24 * 3];

	for (int i = 0; i < 24 * 24; i++) {
		orig[3 * i] = i % 251;
		orig[3 * i + 1] = (i * 7) % 256;
		orig[3 * i + 2] = 200;
	}
	grid_config_init(&c, "doersch2015", &geo, err, sizeof err);
	memset(&g, 0, sizeof g);
	g.keep[0] = 1;
	rng_init(&r, 3, RNG_STREAM_SAMPLE, 0);
	memcpy(px, orig, sizeof px);
	grid_patch_colour(px, &c, &g, 0, &r);
	int same = 1, spread = 0;
	for (int i = 0; i < 24 * 24; i++) {
		same &= px[3 * i + 1] == orig[3 * i + 1];
		spread |= abs(px[3 * i] - 127) > 5 || abs(px[3 * i + 2] - 127) > 5;
	}
	CHECK(same, "the kept channel is untouched");
	CHECK(!spread, "the dropped channels sit at its mean");

	c.chroma = GRID_CHROMA_PROJECT;
	memcpy(px, orig, sizeof px);
	grid_patch_colour(px, &c, &g, 0, &r);
	/* (r, g, 200) -> ((5r + 2g - 200)/6, (r + g + 200)/3, ...). */
	for (int i = 0; i < 24 * 24; i += 37) {
		double R = orig[3 * i], G = orig[3 * i + 1];
		double v = (5 * R + 2 * G - 200) / 6;
		CHECK_NEAR(px[3 * i], v < 0 ? 0 : v, 0.5, 0);
		CHECK_NEAR(px[3 * i + 1], (R + G + 200) / 3, 0.5, 0);
	}

	c.chroma = GRID_CHROMA_NONE;
	g.down[0] = 10;
	memset(px, 90, sizeof px);
	grid_patch_colour(px, &c, &g, 0, &r);
	int flat = 1;
	for (size_t i = 0; i < sizeof px; i++)
		flat &= px[i] == 90;
	CHECK(flat, "down and up again keeps a flat patch flat");
	memcpy(px, orig, sizeof px);
	grid_patch_colour(px, &c, &g, 0, &r);
	CHECK(memcmp(px, orig, sizeof px) != 0, "downsampling blurs");
}

TEST(sample_record)
{
	GridConfig c;
	GridGeometry geo = { .resize = 40, .crop = 36, .patch = 10 };
	Image im;
	Record a, b;
	Grid g;
	Rng r;
	uint8_t want[10 * 10 * 3];

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	img_alloc(&im, 50, 45, 3);
	for (int i = 0; i < 50 * 45 * 3; i++)
		im.data[i] = (i * 13) % 256;
	grid_config_init(&c, "mmselfsup", &geo, err, sizeof err);
	c.gray_p = 0;
	rng_init(&r, 9, RNG_STREAM_SAMPLE, 5);
	CHECK(grid_sample(&a, &g, &c, &im, 50, 45, &r, err, sizeof err) == 0,
	    "%s", err);
	CHECK(a.patch == 10 && a.cell == 12 && a.src_w == 50 && a.src_h == 45,
	    "record geometry");
	CHECK(g.out_w == 44 && g.out_h == 40, "%dx%d", g.out_w, g.out_h);
	for (int i = 0; i < 9; i++) {
		img_resample(want, g.x[i], g.y[i], 10, 10, 44, 40, im.data,
		    50, 45, 3);
		CHECK(memcmp(want, a.pixels + i * 300, 300) == 0, "patch %d", i);
		CHECK_NEAR(a.box[i][0], g.x[i] * 50.0 / 44, 1e-4, 0);
		CHECK_NEAR(a.box[i][3], (g.y[i] + 10) * 45.0 / 40, 1e-4, 0);
	}
	rng_init(&r, 9, RNG_STREAM_SAMPLE, 5);
	grid_sample(&b, NULL, &c, &im, 50, 45, &r, err, sizeof err);
	CHECK(memcmp(a.pixels, b.pixels, record_pixel_bytes(10)) == 0 &&
	    memcmp(a.box, b.box, sizeof a.box) == 0, "same key, same grid");

	uint8_t *tile = malloc(36 * 36 * 3);
	grid_tile(tile, &c, &g, a.pixels, 7);
	CHECK(tile[0] == 7 || (g.x[0] == g.wx && g.y[0] == g.wy),
	    "background");
	int x4 = g.x[4] - g.wx, y4 = g.y[4] - g.wy;
	CHECK(memcmp(tile + (y4 * 36 + x4) * 3, a.pixels + 4 * 300, 30) == 0,
	    "centre placed");
	free(tile);
	free(a.pixels);
	free(b.pixels);
	img_free(&im);
}

TEST(config_json)
{
	GridConfig c;
	json_t *o;

	grid_config_init(&c, "mmselfsup", NULL, err, sizeof err);
	o = grid_config_json(&c);
	CHECK(json_integer_value(json_object_get(o, "patch")) == 64 &&
	    json_integer_value(json_object_get(o, "resize")) == 292 &&
	    !strcmp(json_string_value(json_object_get(o, "preset")),
	    "mmselfsup"), "json fields");
	json_decref(o);
}

int
main(void)
{
	RUN(presets);
	RUN(overrides);
	RUN(mmselfsup_draws);
	RUN(doersch_draws);
	RUN(too_small);
	RUN(gray_values);
	RUN(projection);
	RUN(colour_handling);
	RUN(sample_record);
	RUN(config_json);
	return check_summary();
}

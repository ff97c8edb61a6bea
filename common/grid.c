/* grid: the presets' geometry and colour handling. See grid.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grid.h"
#include "common/util.h"

// ----------------------------------------------------------------------------
// Configuration

/* The user's jitter: 0 unset (dflt), GRID_NO_JITTER none. */
static int
user_jitter(const GridGeometry *g, int dflt)
{
	return g->jitter == 0 ? dflt : g->jitter < 0 ? 0 : g->jitter;
}

static int
cells_layout(GridConfig *c, const GridGeometry *g, char *err, size_t errlen)
{
	c->crop = g->crop ? g->crop : 255;
	c->pitch = c->crop / 3;
	if (g->gap) {
		snprintf(err, errlen, "the gap is fixed by crop and patch in "
		    "the %s layout (use --jitter or --patch)", c->preset);
		return -1;
	}
	if (g->patch && g->jitter) {
		c->patch = g->patch;
		c->jitter = user_jitter(g, 0);
	} else if (g->patch) {
		c->patch = g->patch;
		c->jitter = c->pitch - c->patch;
	} else {
		/* 21 of 85 in MMSelfSup; the same share of other cells. */
		c->jitter = user_jitter(g, (int)lround(c->pitch * 21.0 / 85.0));
		c->patch = c->pitch - c->jitter;
	}
	if (c->patch < 1 || c->jitter < 0 || c->patch + c->jitter > c->pitch) {
		snprintf(err, errlen, "patch %d + jitter %d do not fit the "
		    "%d px cells of a %d px crop", c->patch, c->jitter,
		    c->pitch, c->crop);
		return -1;
	}
	return 0;
}

static int
gap_layout(GridConfig *c, const GridGeometry *g, char *err, size_t errlen)
{
	int extent;

	c->patch = g->patch ? g->patch : 96;
	c->pitch = c->patch + (g->gap ? g->gap : 48);
	c->jitter = 2 * user_jitter(g, 7);
	extent = 2 * c->pitch + c->patch + c->jitter;
	c->crop = g->crop ? g->crop : extent;
	if (c->crop < extent) {
		snprintf(err, errlen, "crop %d is smaller than the lattice "
		    "(%d px: 3 patches of %d, gaps of %d, jitter +/-%d)",
		    c->crop, extent, c->patch, c->pitch - c->patch,
		    c->jitter / 2);
		return -1;
	}
	return 0;
}

int
grid_config_init(GridConfig *c, const char *name, const GridGeometry *geo,
    char *err, size_t errlen)
{
	GridGeometry none = {0};
	const GridGeometry *g = geo ? geo : &none;

	memset(c, 0, sizeof *c);
	if (strcmp(name, "mmselfsup") == 0) {
		c->preset = "mmselfsup";
		c->short_side = 292;
		c->gray_p = 0.66;
		c->chroma = GRID_CHROMA_NONE;
		if (cells_layout(c, g, err, errlen) < 0)
			return -1;
	} else if (strcmp(name, "doersch2015") == 0) {
		c->preset = "doersch2015";
		c->area_min = 150000;
		c->area_max = 450000;
		c->chroma = GRID_CHROMA_DROP;
		c->down_p = 0.33;
		c->down_min = 100;
		if (gap_layout(c, g, err, errlen) < 0)
			return -1;
	} else {
		snprintf(err, errlen, "unknown preset '%s' (mmselfsup, "
		    "doersch2015)", name);
		return -1;
	}
	if (g->resize) {
		c->short_side = g->resize;
		c->area_min = c->area_max = 0;
	}
	if (g->area_max) {
		c->short_side = 0;
		c->area_min = g->area_min;
		c->area_max = g->area_max;
		if (c->area_min < 1 || c->area_min > c->area_max ||
		    c->area_max < (long)c->crop * c->crop) {
			snprintf(err, errlen, "pixel range %ld-%ld is empty "
			    "or too small for a %d px window", c->area_min,
			    c->area_max, c->crop);
			return -1;
		}
	}
	if (c->short_side && c->short_side < c->crop) {
		snprintf(err, errlen, "resize %d is smaller than the crop %d",
		    c->short_side, c->crop);
		return -1;
	}
	if (c->crop > GRID_MAX_SIDE) {
		snprintf(err, errlen, "crop %d is too large", c->crop);
		return -1;
	}
	return 0;
}

static const char *const chroma_names[] = { "none", "drop", "project" };

int
grid_chroma_parse(const char *s, GridChroma *out)
{
	int i = rl_lookup(s, chroma_names, RL_NELEM(chroma_names));

	if (i >= 0)
		*out = (GridChroma)i;
	return i < 0 ? -1 : 0;
}

json_t *
grid_config_json(const GridConfig *c)
{
	json_t *o = json_object();

	json_object_set_new(o, "preset", json_string(c->preset));
	if (c->short_side)
		json_object_set_new(o, "resize", json_integer(c->short_side));
	else {
		json_object_set_new(o, "area_min", json_integer(c->area_min));
		json_object_set_new(o, "area_max", json_integer(c->area_max));
	}
	json_object_set_new(o, "crop", json_integer(c->crop));
	json_object_set_new(o, "pitch", json_integer(c->pitch));
	json_object_set_new(o, "patch", json_integer(c->patch));
	json_object_set_new(o, "jitter", json_integer(c->jitter));
	json_object_set_new(o, "gray_p", json_real(c->gray_p));
	json_object_set_new(o, "chroma", json_string(chroma_names[c->chroma]));
	json_object_set_new(o, "downsample_p", json_real(c->down_p));
	json_object_set_new(o, "downsample_min_pixels",
	    json_integer(c->down_min));
	return o;
}

// ----------------------------------------------------------------------------
// Geometry

/* The resized size for a total of n pixels, aspect kept. */
static void
area_size(int w, int h, double n, int *ow, int *oh)
{
	double s = sqrt(n / ((double)w * h));

	*ow = (int)(w * s + 0.5);
	*oh = (int)(h * s + 0.5);
}

static int
draw_size(Grid *g, const GridConfig *c, int w, int h, Rng *r, char *err,
    size_t errlen)
{
	if (c->short_side) {
		img_short_side_size(w, h, c->short_side, &g->out_w, &g->out_h);
	} else {
		/* The fewest pixels that give the window room, at this
		 * aspect: the shorter side must reach crop. */
		double s = (double)c->crop / RL_MIN(w, h);
		long need = (long)ceil(s * s * w * h * (1 + 1e-12));
		long lo = RL_MAX(c->area_min, need);
		if (lo > c->area_max) {
			snprintf(err, errlen, "too small for the grid: %dx%d "
			    "needs %ld pixels to hold a %d px window, more "
			    "than %ld", w, h, need, c->crop, c->area_max);
			return -1;
		}
		lo += rng_below(r, c->area_max - lo + 1);
		area_size(w, h, lo, &g->out_w, &g->out_h);
	}
	if (g->out_w > GRID_MAX_SIDE || g->out_h > GRID_MAX_SIDE) {
		snprintf(err, errlen, "too elongated: %dx%d would be resized "
		    "to %dx%d", w, h, g->out_w, g->out_h);
		return -1;
	}
	return 0;
}

int
grid_draw(Grid *g, const GridConfig *c, int w, int h, Rng *r, char *err,
    size_t errlen)
{
	int P = c->patch;

	memset(g, 0, sizeof *g);
	if (w < GRID_MIN_SIDE || h < GRID_MIN_SIDE) {
		snprintf(err, errlen, "too small: %dx%d (at least %d px a "
		    "side)", w, h, GRID_MIN_SIDE);
		return -1;
	}
	if (draw_size(g, c, w, h, r, err, errlen) < 0)
		return -1;
	if (g->out_w < c->crop || g->out_h < c->crop) {
		snprintf(err, errlen, "too small: %dx%d resized to %dx%d "
		    "cannot hold a %d px window", w, h, g->out_w, g->out_h,
		    c->crop);
		return -1;
	}
	g->wy = rng_below(r, g->out_h - c->crop + 1);
	g->wx = rng_below(r, g->out_w - c->crop + 1);
	g->gray = c->gray_p > 0 && rng_uniform(r) < c->gray_p;
	for (int i = 0; i < RECORD_NPATCH; i++) {
		g->y[i] = g->wy + (i / 3) * c->pitch +
		    rng_below(r, c->jitter + 1);
		g->x[i] = g->wx + (i % 3) * c->pitch +
		    rng_below(r, c->jitter + 1);
	}
	for (int i = 0; i < RECORD_NPATCH; i++) {
		g->keep[i] = -1;
		if (c->chroma == GRID_CHROMA_DROP)
			g->keep[i] = rng_below(r, 3);
		/* deepcontext: side sqrt(U*(95^2 - 10^2) + 10^2) for 96 px. */
		if (c->down_p > 0 && rng_uniform(r) < c->down_p) {
			double lo = c->down_min, hi = (double)(P - 1) * (P - 1);
			int side = (int)sqrt(rng_uniform(r) * (hi - lo) + lo);
			if (hi > lo && side >= 1 && side < P)
				g->down[i] = side;
		}
	}
	return 0;
}

// ----------------------------------------------------------------------------
// Colour

void
grid_projection(double B[3][3])
{
	static const double a[3] = { -1, 2, -1 };
	double aa = 0;

	for (int i = 0; i < 3; i++)
		aa += a[i] * a[i];
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			B[i][j] = (i == j) - a[i] * a[j] / aa;
}

static uint8_t
clamp8(double v)
{
	return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5);
}

/* A standard normal, approximately: the sum of four 16-bit uniforms from
 * one draw, centred and scaled to unit variance (Irwin-Hall). Colour
 * dropping needs two per pixel; Box-Muller's log and sincos made it the
 * slowest part of sampling. */
static double
approx_normal(Rng *r)
{
	uint64_t u = rng_u64(r);
	double s = (double)(u & 0xffff) + ((u >> 16) & 0xffff) +
	    ((u >> 32) & 0xffff) + (u >> 48);

	return ((s + 2) / 65536.0 - 2.0) * 1.7320508075688772;
}

static void
project(uint8_t *px, size_t n)
{
	double B[3][3];

	grid_projection(B);
	for (size_t i = 0; i < n; i++, px += 3) {
		double r = px[0], g = px[1], b = px[2];
		for (int k = 0; k < 3; k++)
			px[k] = clamp8(B[k][0] * r + B[k][1] * g + B[k][2] * b);
	}
}

static void
drop(uint8_t *px, size_t n, int keep, Rng *r)
{
	double sum = 0, sq = 0, mean, sd;

	for (size_t i = 0; i < n; i++)
		sum += px[3 * i + keep];
	mean = sum / n;
	for (size_t i = 0; i < n; i++) {
		double d = px[3 * i + keep] - mean;
		sq += d * d;
	}
	sd = sqrt(sq / n) / 100;
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			if (k != keep)
				px[3 * i + k] = clamp8(mean + sd * approx_normal(r));
}

void
grid_patch_colour(uint8_t *px, const GridConfig *c, const Grid *g, int i,
    Rng *r)
{
	int P = c->patch;
	size_t n = (size_t)P * P;

	if (g->down[i] > 0) {
		int s = g->down[i];
		uint8_t *small = emalloc((size_t)s * s * 3);
		uint8_t *big = emalloc(n * 3);
		img_resample(small, 0, 0, s, s, s, s, px, P, P, 3);
		img_resample(big, 0, 0, P, P, P, P, small, s, s, 3);
		memcpy(px, big, n * 3);
		free(small);
		free(big);
	}
	if (g->gray)
		img_gray_rgb(px, n);
	if (c->chroma == GRID_CHROMA_DROP && g->keep[i] >= 0)
		drop(px, n, g->keep[i], r);
	else if (c->chroma == GRID_CHROMA_PROJECT)
		project(px, n);
}

// ----------------------------------------------------------------------------
// Sampling

int
grid_sample(Record *rec, Grid *gout, const GridConfig *c, const Image *im,
    int file_w, int file_h, Rng *r, char *err, size_t errlen)
{
	Grid gl, *g = gout ? gout : &gl;
	int P = c->patch;
	size_t psz = (size_t)P * P * 3;
	double sx, sy;

	if (grid_draw(g, c, file_w, file_h, r, err, errlen) < 0)
		return -1;
	if (!rec->pixels || rec->patch != (uint32_t)P)
		rec->pixels = erealloc(rec->pixels, record_pixel_bytes(P));
	rec->src_w = file_w;
	rec->src_h = file_h;
	rec->patch = P;
	rec->cell = c->pitch;
	rec->gray = g->gray;
	sx = (double)file_w / g->out_w;
	sy = (double)file_h / g->out_h;
	for (int i = 0; i < RECORD_NPATCH; i++) {
		uint8_t *px = rec->pixels + i * psz;
		img_resample(px, g->x[i], g->y[i], P, P, g->out_w, g->out_h,
		    im->data, im->w, im->h, 3);
		grid_patch_colour(px, c, g, i, r);
		rec->box[i][0] = (float)(g->x[i] * sx);
		rec->box[i][1] = (float)(g->y[i] * sy);
		rec->box[i][2] = (float)((g->x[i] + P) * sx);
		rec->box[i][3] = (float)((g->y[i] + P) * sy);
	}
	return 0;
}

void
grid_tile(uint8_t *tile, const GridConfig *c, const Grid *g,
    const uint8_t *pixels, uint8_t bg)
{
	int C = c->crop, P = c->patch;

	memset(tile, bg, (size_t)C * C * 3);
	for (int i = 0; i < RECORD_NPATCH; i++) {
		const uint8_t *s = pixels + (size_t)i * P * P * 3;
		int x0 = g->x[i] - g->wx, y0 = g->y[i] - g->wy;
		for (int y = 0; y < P; y++)
			memcpy(tile + ((size_t)(y0 + y) * C + x0) * 3,
			    s + (size_t)y * P * 3, (size_t)P * 3);
	}
}

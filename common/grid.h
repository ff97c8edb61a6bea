/*
 * grid: where the nine patches of a Relative-Location grid come from, and
 * what is done to their colours, as pure functions of the image size and a
 * random generator (so the same seed gives the same grids whatever the
 * thread count).
 *
 * Every preset is one picture: the image is resized (shorter side to a
 * fixed length, or to a random total pixel count); a square window of side
 * `crop` is placed uniformly inside it; the window holds a 3x3 lattice of
 * cells `pitch` apart; the patch of side `patch` of cell (row, col) sits at
 * (col*pitch + U{0..jitter}, row*pitch + U{0..jitter}) in the window.
 *
 *   mmselfsup    Resize(292), RandomCrop(255), RandomGrayscale(0.66),
 *                85 px cells holding 64 px patches, offsets 0..21
 *                (MMSelfSup 0.x, relloc-protocols(7), SAMPLING).
 *   doersch2015  150K-450K total pixels, 96 px patches 48 px apart,
 *                +/-7 px jitter, colour dropping, p=0.33 downsampling
 *                (Doersch et al. 2015 and cdoersch/deepcontext).
 *
 * Not here: decoding (img.h), transport (stream.h).
 */
#ifndef RL_GRID_H
#define RL_GRID_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/img.h"
#include "common/record.h"
#include "common/rng.h"

#define GRID_MIN_SIDE 8        /* smaller sources are refused */
#define GRID_MAX_SIDE 32768    /* so is a resize beyond this */

typedef enum {
	GRID_CHROMA_NONE,      /* colours as they are */
	GRID_CHROMA_DROP,      /* keep one random channel per patch */
	GRID_CHROMA_PROJECT    /* project out the green-magenta axis */
} GridChroma;

typedef struct {
	const char *preset;    /* the preset's name */
	int short_side;        /* > 0: the shorter side becomes this */
	long area_min, area_max; /* short_side == 0: pixels, uniform */
	int crop;              /* the window's side */
	int pitch;             /* cell pitch in the window */
	int patch;             /* patch side */
	int jitter;            /* patch offset in its cell: U{0..jitter} */
	double gray_p;         /* probability the grid turns grey */
	GridChroma chroma;
	double down_p;         /* probability a patch is downsampled */
	int down_min;          /* its smallest area then, pixels */
} GridConfig;

/* The user's geometry overrides; 0 leaves the preset's value. */
typedef struct {
	int resize;            /* shorter side */
	long area_min, area_max;
	int crop, patch, gap;
	int jitter;            /* GRID_NO_JITTER: patches at fixed places */
} GridGeometry;
#define GRID_NO_JITTER (-1)

/*
 * Fill c from the preset called name ("mmselfsup" or "doersch2015") with
 * the overrides in geo (NULL: none). In mmselfsup's layout the pitch is
 * crop/3 and patch + jitter fill a cell (give one, the other follows);
 * --gap is refused there. In doersch2015's the pitch is patch + gap,
 * jitter is +/- (a range of 2*jitter) and crop defaults to the lattice's
 * extent. Returns 0, or -1 with a message on an unknown preset or an
 * impossible geometry.
 */
int grid_config_init(GridConfig *c, const char *name, const GridGeometry *geo,
    char *err, size_t errlen);

/* The chroma handling named s ("none", "drop", "project") in *out.
 * Returns 0, or -1 for another name. */
int grid_chroma_parse(const char *s, GridChroma *out);

/* c as a JSON object (for the LMDB metadata); the caller owns it. */
json_t *grid_config_json(const GridConfig *c);

/* One drawn grid. Coordinates are in the resized frame (out_w x out_h). */
typedef struct {
	int out_w, out_h;      /* the resized image */
	int wx, wy;            /* the window's top-left */
	int x[RECORD_NPATCH], y[RECORD_NPATCH];   /* patches' top-left */
	int gray;              /* 1: the whole grid turns grey */
	int keep[RECORD_NPATCH];  /* GRID_CHROMA_DROP: the kept channel */
	int down[RECORD_NPATCH];  /* > 0: downsample to this side first */
} Grid;

/*
 * Draw a grid for a w x h source from r, in this order: the resize (area
 * mode), the window (y, then x), grey, then per patch y and x offsets,
 * then per patch the kept channel (drop) and the downsampling draw.
 * Returns 0, or -1 with "too small ..." when the source or its resize
 * cannot hold the lattice.
 */
int grid_draw(Grid *g, const GridConfig *c, int w, int h, Rng *r,
    char *err, size_t errlen);

/*
 * Apply patch i's colour handling to px (patch*patch RGB, in place): the
 * downsampling (down to g->down[i] on a side and back up, both with
 * img_resample), grey, then colour dropping (the kept channel as is, the
 * other two its mean plus noise of 1/100 of its standard deviation,
 * approximately Gaussian (a sum of four uniforms), rounded, drawn from r)
 * or the projection.
 */
void grid_patch_colour(uint8_t *px, const GridConfig *c, const Grid *g, int i,
    Rng *r);

/*
 * Draw a grid and cut it from im into rec: geometry in the file's frame
 * (file_w x file_h; im may be a shrink-on-load of it), patches resampled
 * straight from im, colours handled, rec's box/patch/cell/gray/src and
 * pixels (reallocated as needed) filled. g (may be NULL) gets the draw.
 * The rest of rec (id, source, label) is the caller's. 0 or -1 as
 * grid_draw.
 */
int grid_sample(Record *rec, Grid *g, const GridConfig *c, const Image *im,
    int file_w, int file_h, Rng *r, char *err, size_t errlen);

/* The chromatic projection B = I - a'a/(aa'), a = [-1, 2, -1]. */
void grid_projection(double B[3][3]);

/*
 * Draw a sampled grid the way the trainer sees it: a crop x crop RGB tile
 * of background bg with each patch of pixels (rec->pixels) placed at its
 * position in the window, the gaps visible.
 */
void grid_tile(uint8_t *tile, const GridConfig *c, const Grid *g,
    const uint8_t *pixels, uint8_t bg);

#endif

/* prep: evaluation preprocessing presets. See prep.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prep.h"
#include "common/util.h"

const float prep_mean[3] = {0.485f, 0.456f, 0.406f};
const float prep_std[3] = {0.229f, 0.224f, 0.225f};

static const char *const names[] = {
	[PREP_SVM] = "svm", [PREP_CENTER] = "center", [PREP_NONE] = "none",
};

int
prep_parse(const char *name, PrepMode *m)
{
	int i = rl_lookup(name, names, RL_NELEM(names));

	if (i >= 0)
		*m = (PrepMode)i;
	return i < 0 ? -1 : 0;
}

const char *
prep_name(PrepMode m)
{
	return names[m];
}

void
prep_buf_free(PrepBuf *pb)
{
	free(pb->a);
	free(pb->b);
	memset(pb, 0, sizeof *pb);
}

static uint8_t *
grow(uint8_t **p, size_t *n, size_t want)
{
	if (*n < want) {
		free(*p);
		*p = emalloc(want);
		*n = want;
	}
	return *p;
}

int
prep_center_offset(int d)
{
	int h = d / 2;

	// d odd: d/2 = h + 0.5, which Python rounds to the even neighbour
	if (d % 2 && h % 2)
		h++;
	return h;
}

int
prep_pixels(uint8_t *px, const Image *im, const PrepSpec *ps, PrepBuf *pb,
    char *err, size_t errlen)
{
	int S = ps->size, rw, rh;
	uint8_t *mid;

	if (im->bands != 3) {
		snprintf(err, errlen, "image has %d bands, 3 expected",
		    im->bands);
		return -1;
	}
	if (ps->mode == PREP_NONE) {
		if (im->w != S || im->h != S) {
			snprintf(err, errlen, "image is %dx%d; preset none "
			    "takes %dx%d images as they are (use svm or "
			    "center to resize)", im->w, im->h, S, S);
			return -1;
		}
		memcpy(px, im->data, (size_t)S * S * 3);
		return 0;
	}
	img_short_side_size(im->w, im->h, ps->resize, &rw, &rh);
	if (rw < 1 || rh < 1) {
		snprintf(err, errlen, "image is %dx%d, too thin to resize to a "
		    "shorter side of %d", im->w, im->h, ps->resize);
		return -1;
	}
	if (ps->mode == PREP_CENTER) {
		if (rw < S || rh < S) {
			snprintf(err, errlen, "resized to %dx%d, smaller than "
			    "the %dx%d centre crop", rw, rh, S, S);
			return -1;
		}
		// only the crop's window of the resized image is computed
		img_resample(px, prep_center_offset(rw - S),
		    prep_center_offset(rh - S), S, S, rw, rh, im->data, im->w,
		    im->h, 3);
		return 0;
	}
	// svm: two PIL resizes, each rounding to 8 bits
	mid = grow(&pb->a, &pb->na, (size_t)rw * rh * 3);
	img_resample(mid, 0, 0, rw, rh, rw, rh, im->data, im->w, im->h, 3);
	img_resample(px, 0, 0, S, S, S, S, mid, rw, rh, 3);
	return 0;
}

void
prep_normalize(float *out, const uint8_t *px, size_t npix)
{
	for (size_t i = 0; i < npix; i++)
		for (int c = 0; c < 3; c++) {
			// float32 steps as ToTensor (div 255) then Normalize
			float v = (float)px[i * 3 + c] / 255.0f;
			out[i * 3 + c] = (v - prep_mean[c]) / prep_std[c];
		}
}

int
prep_image(float *out, const Image *im, const PrepSpec *ps, PrepBuf *pb,
    char *err, size_t errlen)
{
	size_t n = (size_t)ps->size * ps->size;
	uint8_t *px = grow(&pb->b, &pb->nb, n * 3);

	if (prep_pixels(px, im, ps, pb, err, errlen))
		return -1;
	prep_normalize(out, px, n);
	return 0;
}

/*
 * helpers.h: what several tests/t_*.c need beside check.h: random
 * fills, relative differences, a pixel hash and the synthetic image the
 * PIL references were computed on, and scratch paths. Static inline, so
 * a test takes what it uses.
 */
#ifndef RL_TESTS_HELPERS_H
#define RL_TESTS_HELPERS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/rng.h"
#include "common/util.h"

/* x[0..n) = scale * N(0, 1) drawn from g, rounded to float. */
static inline void
th_fill_normal(float *x, size_t n, Rng *g, double scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(scale * rng_normal(g));
}

/* The same into a new array (emalloc'd). */
static inline float *
th_randn(Rng *g, size_t n, double scale)
{
	float *x = emalloc(n * sizeof *x);

	th_fill_normal(x, n, g, scale);
	return x;
}

/*
 * max |a - b| / (floor + max |b|) over n values, in double; the plain
 * difference when the denominator is 0 (floor 0 and b all zero). floor 1
 * gives a difference that is absolute near zero and relative above one.
 */
static inline double
th_reldiff(const float *a, const float *b, size_t n, double floor)
{
	double d = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return floor + m > 0 ? d / (floor + m) : d;
}

/* FNV-1a, 32 bits, of n bytes: the hash the PIL references record. */
static inline uint32_t
th_fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The synthetic w x h RGB image (HWC) the PIL and torchvision hashes of
 * t_img.c and t_prep.c were computed on: ramps with a small texture. */
static inline void
th_pattern(uint8_t *a, int w, int h)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++)
				a[(y * w + x) * 3 + c] = (x * 37 + y * 11 +
				    c * 73 + (x * y) % 17 * 5) % 256;
}

/* A fresh directory $TMP/name.XXXXXX (/tmp without TMP) in dir; exits 1
 * when it cannot be made. */
static inline void
th_scratch_dir(char *dir, size_t n, const char *name)
{
	const char *t = getenv("TMP");

	snprintf(dir, n, "%s/%s.XXXXXX", t && *t ? t : "/tmp", name);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		exit(1);
	}
}

/* dir/name in one of 8 rotating static buffers (so a call may take a few
 * paths at once). */
static inline const char *
th_path(const char *dir, const char *name)
{
	static char p[8][600];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

#endif

/*
 * rng: a small counter-based random number generator.
 *
 * A generator is keyed by (seed, stream, index): the seed the user gave
 * with -s, a constant naming what the numbers are for (RNG_STREAM_*), and
 * the item they are for (an image's position in the input, a step number).
 * Results therefore never depend on how many threads run or in which order
 * items are processed. The sequence itself is splitmix64 (Steele et al.,
 * "Fast splittable pseudorandom number generators", OOPSLA 2014); the key is
 * mixed with the same finaliser. Not for cryptography.
 */
#ifndef RL_RNG_H
#define RL_RNG_H

#include <stdint.h>

typedef struct {
	uint64_t state;
	int has_spare;     /* rng_normal's second value */
	double spare;
} Rng;

/* What the numbers are for; a new use takes a new constant. */
enum {
	RNG_STREAM_SAMPLE = 1,  /* rl-sample: per image grid geometry/colour */
	RNG_STREAM_INIT,        /* network weight initialisation */
	RNG_STREAM_SHUFFLE,     /* epoch order, shuffle buffers */
	RNG_STREAM_DROPOUT,     /* dropout masks, per step */
	RNG_STREAM_LOWSHOT,     /* low-shot SVM samples */
	RNG_STREAM_SVM,         /* coordinate-descent permutations */
	RNG_STREAM_PROBE,       /* linear-probe init and order */
	/* rl-train's, at the values its first checkpoints were made with */
	RNG_STREAM_NECK_INIT = 140,  /* neck and head initialisation */
	RNG_STREAM_BUFFER = 141,     /* the stream shuffle buffer */
	RNG_STREAM_USER = 100   /* first free value */
};

/* Key g by (seed, stream, index). */
void rng_init(Rng *g, uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform 64 random bits. */
uint64_t rng_u64(Rng *g);
/* Uniform in [0, 1), 53 bits. */
double rng_uniform(Rng *g);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t rng_below(Rng *g, uint64_t n);
/* Standard normal (Box-Muller). */
double rng_normal(Rng *g);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle_u32(Rng *g, uint32_t *idx, uint64_t n);

#endif

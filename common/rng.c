/* rng: splitmix64 keyed by (seed, stream, index). See rng.h. */
#include <math.h>

#include "common/rng.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
rng_init(Rng *g, uint64_t seed, uint64_t stream, uint64_t index)
{
	uint64_t k = mix64(seed + 0x9e3779b97f4a7c15ULL);

	k = mix64(k ^ (stream * 0xd1b54a32d192ed03ULL));
	g->state = mix64(k ^ (index * 0x8cb92ba72f3d8dd7ULL));
	g->has_spare = 0;
	g->spare = 0;
}

uint64_t
rng_u64(Rng *g)
{
	g->state += 0x9e3779b97f4a7c15ULL;
	return mix64(g->state);
}

double
rng_uniform(Rng *g)
{
	return (rng_u64(g) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t
rng_below(Rng *g, uint64_t n)
{
	uint64_t lim = -n % n, r;   /* 2^64 mod n: reject below it */

	do
		r = rng_u64(g);
	while (r < lim);
	return r % n;
}

double
rng_normal(Rng *g)
{
	double u, v, r;

	if (g->has_spare) {
		g->has_spare = 0;
		return g->spare;
	}
	do
		u = rng_uniform(g);
	while (u <= 0);
	v = rng_uniform(g);
	r = sqrt(-2 * log(u));
	g->spare = r * sin(2 * M_PI * v);
	g->has_spare = 1;
	return r * cos(2 * M_PI * v);
}

void
rng_shuffle_u32(Rng *g, uint32_t *idx, uint64_t n)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rng_below(g, i);
		uint32_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

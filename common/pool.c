/* pool: Feature1-5 and the global average of a ResNet's stages. See pool.h. */
#include <stdio.h>
#include <string.h>

#include "common/layers.h"
#include "common/pool.h"

/* 0.x:mmselfsup/models/utils/multi_pooling.py, POOL_PARAMS['resnet50'] */
static const PoolSpec specs[POOL_NFEAT] = {
	{"feat1", 0, 10, 10, 4},
	{"feat2", 1, 16, 8, 0},
	{"feat3", 2, 13, 5, 0},
	{"feat4", 3, 8, 3, 0},
	{"feat5", 4, 6, 1, 0},
	{"gap", 4, 0, 0, 0},
};

const PoolSpec *
pool_spec(int i)
{
	return (i >= 0 && i < POOL_NFEAT) ? &specs[i] : NULL;
}

int
pool_find(const char *name)
{
	for (int i = 0; i < POOL_NFEAT; i++)
		if (strcmp(specs[i].name, name) == 0)
			return i;
	return -1;
}

int
pool_parse_list(const char *s, unsigned *mask, char *err, size_t errlen)
{
	const char *p = s;

	*mask = 0;
	if (strcmp(s, "all") == 0) {
		*mask = (1u << POOL_NFEAT) - 1;
		return 0;
	}
	for (;;) {
		size_t n = strcspn(p, ",");
		char name[16];
		int i;

		if (n == 0 || n >= sizeof name) {
			snprintf(err, errlen, "'%s': %s", s, n ? "unknown feature"
			    : "empty name in the list");
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if ((i = pool_find(name)) < 0) {
			snprintf(err, errlen, "'%s': unknown feature (want "
			    "feat1..feat5, gap or all)", name);
			return -1;
		}
		if (*mask & (1u << i)) {
			snprintf(err, errlen, "'%s': named twice", name);
			return -1;
		}
		*mask |= 1u << i;
		if (p[n] == '\0')
			return 0;
		p += n + 1;
	}
}

int
pool_dims(const PoolSpec *ps, int C, int H, int W, int *oh, int *ow,
    size_t *dim, char *err, size_t errlen)
{
	if (ps->k == 0) {
		*oh = *ow = 1;
	} else {
		if (H + 2 * ps->p < ps->k || W + 2 * ps->p < ps->k) {
			snprintf(err, errlen, "%s: stage %d is %dx%d, too small "
			    "for AvgPool2d(%d, %d, %d) (a larger input size "
			    "is needed)", ps->name, ps->stage, H, W, ps->k,
			    ps->s, ps->p);
			return -1;
		}
		*oh = (H + 2 * ps->p - ps->k) / ps->s + 1;
		*ow = (W + 2 * ps->p - ps->k) / ps->s + 1;
	}
	*dim = (size_t)C * *oh * *ow;
	return 0;
}

size_t
pool_work_floats(const PoolSpec *ps, int B, int C, int H, int W)
{
	if (ps->k == 0)
		return 0;
	return (size_t)B * C * ((H + 2 * ps->p - ps->k) / ps->s + 1) *
	    ((W + 2 * ps->p - ps->k) / ps->s + 1);
}

void
pool_flatten_chw(float *out, const float *inp, int B, int HW, int C)
{
#pragma omp parallel for schedule(static)
	for (long bc = 0; bc < (long)B * C; bc++) {
		long b = bc / C, c = bc % C;
		const float *x = inp + (size_t)b * HW * C + c;
		float *y = out + (size_t)bc * HW;

		for (int i = 0; i < HW; i++)
			y[i] = x[(size_t)i * C];
	}
}

void
pool_forward(float *out, const float *inp, int B, int H, int W, int C,
    const PoolSpec *ps, float *work)
{
	int OH, OW;

	if (ps->k == 0) {
		gap_forward(out, inp, B, H, W, C);
		return;
	}
	OH = (H + 2 * ps->p - ps->k) / ps->s + 1;
	OW = (W + 2 * ps->p - ps->k) / ps->s + 1;
	// work (B, OH, OW, C), then out (B, C, OH, OW)
	avgpool_forward(work, inp, B, H, W, C, ps->k, ps->s, ps->p);
	pool_flatten_chw(out, work, B, OH * OW, C);
}

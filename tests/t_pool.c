/* t_pool: the Feature1-5 pooling table, AvgPool2d with count_include_pad
 * and the channel-major flattening, against direct NCHW loops. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "tests/check.h"

static char err[512];

/* A deterministic pseudo-random float in [-1, 1). */
static float
val(uint32_t i)
{
	i = i * 2654435761u + 12345u;
	i ^= i >> 15;
	i *= 2246822519u;
	i ^= i >> 13;
	return (float)(i % 20000) / 10000.0f - 1.0f;
}

/*
 * The reference: nn.AvgPool2d(k, s, p, count_include_pad=True) on the
 * NCHW view of x (B, H, W, C), then view(B, -1); for k 0 the mean over
 * H and W. Direct loops in double.
 */
static void
pool_ref(float *out, const float *x, int B, int H, int W, int C, int k,
    int s, int p)
{
	int OH = k ? (H + 2 * p - k) / s + 1 : 1;
	int OW = k ? (W + 2 * p - k) / s + 1 : 1;

	for (int b = 0; b < B; b++)
		for (int c = 0; c < C; c++)
			for (int oh = 0; oh < OH; oh++)
				for (int ow = 0; ow < OW; ow++) {
					double sum = 0;
					int h0 = k ? oh * s - p : 0;
					int w0 = k ? ow * s - p : 0;
					int kh = k ? k : H, kw = k ? k : W;

					for (int h = h0; h < h0 + kh; h++)
						for (int w = w0; w < w0 + kw;
						    w++)
							if (h >= 0 && h < H &&
							    w >= 0 && w < W)
								sum += x[((b * H +
								    h) * W + w) *
								    C + c];
					out[((b * C + c) * OH + oh) * OW + ow] =
					    (float)(sum / (kh * kw));
				}
}

TEST(table)
{
	static const struct {
		const char *name;
		int stage, k, s, p;
	} want[POOL_NFEAT] = {
		{"feat1", 0, 10, 10, 4}, {"feat2", 1, 16, 8, 0},
		{"feat3", 2, 13, 5, 0}, {"feat4", 3, 8, 3, 0},
		{"feat5", 4, 6, 1, 0}, {"gap", 4, 0, 0, 0},
	};

	for (int i = 0; i < POOL_NFEAT; i++) {
		const PoolSpec *ps = pool_spec(i);
		CHECK(strcmp(ps->name, want[i].name) == 0 &&
		    ps->stage == want[i].stage && ps->k == want[i].k &&
		    ps->s == want[i].s && ps->p == want[i].p, "spec %d", i);
		CHECK(pool_find(want[i].name) == i, "find %s", want[i].name);
	}
	CHECK(pool_spec(POOL_NFEAT) == NULL && pool_find("feat6") == -1,
	    "out of range");
	CHECK(strcmp(pool_spec(POOL_GAP)->name, "gap") == 0, "gap index");
}

/* The protocol's table: ResNet-50's stages at 224 give 9216, 9216, 8192,
 * 9216, 8192 and 2048; ResNet-18's (64, 64, 128, 256, 512 channels). */
TEST(dims_224)
{
	static const int side[5] = {112, 56, 28, 14, 7};
	static const int c50[5] = {64, 256, 512, 1024, 2048};
	static const int c18[5] = {64, 64, 128, 256, 512};
	static const size_t d50[POOL_NFEAT] = {9216, 9216, 8192, 9216, 8192,
	    2048};
	static const size_t d18[POOL_NFEAT] = {9216, 2304, 2048, 2304, 2048,
	    512};
	static const int pooled[POOL_NFEAT] = {12, 6, 4, 3, 2, 1};

	for (int i = 0; i < POOL_NFEAT; i++) {
		const PoolSpec *ps = pool_spec(i);
		int st = ps->stage, oh, ow;
		size_t dim;

		CHECK(pool_dims(ps, c50[st], side[st], side[st], &oh, &ow,
		    &dim, err, sizeof err) == 0, "%s", err);
		CHECK(oh == pooled[i] && ow == pooled[i] && dim == d50[i],
		    "r50 %s: %dx%d, %zu", ps->name, oh, ow, dim);
		CHECK(pool_dims(ps, c18[st], side[st], side[st], &oh, &ow,
		    &dim, err, sizeof err) == 0 && dim == d18[i],
		    "r18 %s: %zu", ps->name, dim);
	}
}

TEST(too_small)
{
	int oh, ow;
	size_t dim;

	// layer4 of a 64x64 input is 2x2: no room for AvgPool2d(6, 1, 0)
	CHECK(pool_dims(pool_spec(4), 2048, 2, 2, &oh, &ow, &dim, err,
	    sizeof err) == -1 && strstr(err, "too small"), "%s", err);
	// feat1's padding lets 2x2 through: (2 + 8 - 10) / 10 + 1 = 1
	CHECK(pool_dims(pool_spec(0), 64, 2, 2, &oh, &ow, &dim, err,
	    sizeof err) == 0 && oh == 1 && dim == 64, "padded 2x2");
}

/* Each spec (and gap) on a non-square, odd-sized stage against the NCHW
 * loops: padding counted, rows channel-major, images kept apart. */
TEST(forward_vs_reference)
{
	const int B = 3, H = 27, W = 19, C = 5;
	size_t n = (size_t)B * H * W * C;
	float *x = malloc(n * sizeof *x);

	for (size_t i = 0; i < n; i++)
		x[i] = val((uint32_t)i);
	for (int i = 0; i < POOL_NFEAT; i++) {
		const PoolSpec *ps = pool_spec(i);
		int oh, ow;
		size_t dim, nw = pool_work_floats(ps, B, C, H, W);
		float *out, *ref, *work = malloc((nw + 1) * sizeof *work);
		double md = 0;

		CHECK(pool_dims(ps, C, H, W, &oh, &ow, &dim, err, sizeof err) ==
		    0, "%s", err);
		out = malloc(B * dim * sizeof *out);
		ref = malloc(B * dim * sizeof *ref);
		pool_forward(out, x, B, H, W, C, ps, work);
		pool_ref(ref, x, B, H, W, C, ps->k, ps->s, ps->p);
		for (size_t j = 0; j < B * dim; j++)
			md = fmax(md, fabs(out[j] - ref[j]));
		CHECK(md < 1e-6, "%s: maxdiff %g", ps->name, md);
		free(out);
		free(ref);
		free(work);
	}
	free(x);
}

TEST(flatten)
{
	// (2, 3 positions, 4 channels) -> (2, 4 channels, 3 positions)
	float in[24], out[24];

	for (int i = 0; i < 24; i++)
		in[i] = (float)i;
	pool_flatten_chw(out, in, 2, 3, 4);
	for (int b = 0; b < 2; b++)
		for (int c = 0; c < 4; c++)
			for (int p = 0; p < 3; p++)
				CHECK(out[(b * 4 + c) * 3 + p] ==
				    in[(b * 3 + p) * 4 + c], "b%d c%d p%d", b, c,
				    p);
}

TEST(parse_list)
{
	unsigned m;

	CHECK(pool_parse_list("feat1,feat5,gap", &m, err, sizeof err) == 0 &&
	    m == (1u | 1u << 4 | 1u << 5), "mask %x", m);
	CHECK(pool_parse_list("all", &m, err, sizeof err) == 0 && m == 0x3f,
	    "all");
	CHECK(pool_parse_list("feat3", &m, err, sizeof err) == 0 && m == 4,
	    "one");
	CHECK(pool_parse_list("feat1,feat1", &m, err, sizeof err) == -1 &&
	    strstr(err, "twice"), "repeat: %s", err);
	CHECK(pool_parse_list("feat1,,gap", &m, err, sizeof err) == -1,
	    "empty name");
	CHECK(pool_parse_list("feat6", &m, err, sizeof err) == -1 &&
	    strstr(err, "unknown"), "unknown: %s", err);
	CHECK(pool_parse_list("", &m, err, sizeof err) == -1, "empty");
	CHECK(pool_parse_list("feat1,", &m, err, sizeof err) == -1,
	    "trailing comma");
}

int
main(void)
{
	RUN(table);
	RUN(dims_224);
	RUN(too_small);
	RUN(forward_vs_reference);
	RUN(flatten);
	RUN(parse_list);
	return check_summary();
}

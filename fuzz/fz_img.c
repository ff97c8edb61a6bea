/* fz_img: JPEG bytes through rl-sample's path after the file is read:
 * jpeg_decode (libjpeg-turbo with our error handling; the first byte picks
 * the shrink-on-load target), then a grid of each preset cut from what
 * decoded (grid_sample: resize, window, patches, colours, all in img.c and
 * grid.c). What decodes has the size the header promised, shrunk by at
 * most the factor that keeps the short side; a grid that is drawn has its
 * patches inside the resized image. */
#include "common/grid.h"
#include "common/img.h"
#include "common/jpeg.h"
#include "fuzz/fuzz.h"

/* small, so that a header's claim of a large image costs little */
#define FZ_MAX_PIXELS ((uint64_t)1 << 20)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *presets[] = { "mmselfsup", "doersch2015" };
	char err[512];
	uint8_t *px;
	int w, h, fw, fh, min_short;
	unsigned sum = 0;

	if (size < 1)
		return 0;
	min_short = data[0] & 1 ? (data[0] >> 1) * 4 : 0;   /* 0, 4..508 */
	if (jpeg_decode(data + 1, size - 1, min_short, FZ_MAX_PIXELS, &px, &w,
	    &h, &fw, &fh, err, sizeof err) != 0)
		return 0;
	FUZZ_ASSERT(px != NULL && w >= 1 && h >= 1);
	FUZZ_ASSERT((uint64_t)fw * fh <= FZ_MAX_PIXELS);
	/* a shrink by f (1, 2, 4, 8) gives ceil(side / f) */
	for (int f = 1; f <= 8; f *= 2)
		if (w == (fw + f - 1) / f && h == (fh + f - 1) / f)
			break;
		else
			FUZZ_ASSERT(f < 8);
	for (size_t i = 0; i < (size_t)w * h * 3; i++)
		sum += px[i];   /* every byte written (ASan: allocated) */
	for (int k = 0; k < 2; k++) {
		Image im = { w, h, 3, px };
		GridConfig c;
		Grid g;
		Record rec;
		Rng r;

		memset(&rec, 0, sizeof rec);
		rec.source = estrdup("fuzz");
		rec.label = -1;
		rec.version = RECORD_VERSION;
		if (grid_config_init(&c, presets[k], NULL, err, sizeof err))
			abort();
		rng_init(&r, data[0], (uint64_t)k, size);
		if (grid_sample(&rec, &g, &c, &im, fw, fh, &r, err,
		    sizeof err) == 0) {
			for (int i = 0; i < RECORD_NPATCH; i++)
				FUZZ_ASSERT(g.x[i] >= 0 && g.y[i] >= 0 &&
				    g.x[i] + c.patch <= g.out_w &&
				    g.y[i] + c.patch <= g.out_h);
			FUZZ_ASSERT(record_check(&rec, err, sizeof err) == 0);
		}
		record_free(&rec);
	}
	free(px);
	return sum == 0xffffffffu;
}

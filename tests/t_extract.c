/*
 * t_extract: feature extraction end to end against PyTorch, and the
 * model and loader rules.
 *
 * The reference is tests/ref/bottleneck.safetensors (tests/ref/README):
 * a Bottleneck ResNet of width 2, blocks 2-1-1-1, and Feature1-5 of the
 * 224x224 image pool.input_u8 in eval mode with the running statistics
 * updated.*. The test writes that backbone (updated statistics in place
 * of the initial ones, the head's tensors left in) as a checkpoint, the
 * image as a PNG, and runs both the module (extract.h) and build/rl-extract
 * with the `none` preset; each feature must satisfy
 *     max |ours - ref| <= 1e-4 * max |ref|
 * (the README's forward tolerance).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ckpt.h"
#include "common/extract.h"
#include "common/img.h"
#include "common/npy.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

#define REF "tests/ref/bottleneck.safetensors"
#define TOL 1e-4

static char err[CKPT_ERRLEN], tmp[512];

static const char *
tpath(const char *name)
{
	return th_path(tmp, name);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* max |a - b| / max |b| over n values. */
static double
reldiff(const float *a, const float *b, size_t n)
{
	return th_reldiff(a, b, n, 0);
}

/*
 * tmp/ref.safetensors: the reference backbone with updated.* statistics,
 * plus head.fc.* (a tensor the extractor must ignore); tmp/a.png the
 * reference image, tmp/b.png its transpose. 0 on success.
 */
static int
make_ref_files(void)
{
	CkptWriter *w;
	Ckpt *c;
	const CkptTensor *img;
	uint8_t *a, *b;
	int rc = -1;

	if (ckpt_open(&c, REF, err, sizeof err))
		return -1;
	ckpt_writer_create(&w);
	for (size_t i = 0; i < ckpt_ntensors(c); i++) {
		const CkptTensor *t = ckpt_tensor(c, i), *u;
		char up[160];

		if (strncmp(t->name, "conv1.", 6) && strncmp(t->name, "bn1.", 4)
		    && strncmp(t->name, "layer", 5) &&
		    strncmp(t->name, "head.", 5))
			continue;
		u = t;
		if (ends_with(t->name, "running_mean") ||
		    ends_with(t->name, "running_var") ||
		    ends_with(t->name, "num_batches_tracked")) {
			snprintf(up, sizeof up, "updated.%s", t->name);
			if ((u = ckpt_find(c, up)) == NULL)
				goto out;
		}
		if (ckpt_writer_add(w, t->name, u->dtype, u->ndim, u->shape,
		    u->data, err, sizeof err))
			goto out;
	}
	if (ckpt_writer_write(w, tpath("ref.safetensors"), err, sizeof err))
		goto out;
	img = ckpt_find(c, "pool.input_u8");
	a = malloc(224 * 224 * 3);
	b = malloc(224 * 224 * 3);
	for (int ch = 0; ch < 3; ch++)
		for (int y = 0; y < 224; y++)
			for (int x = 0; x < 224; x++) {
				uint8_t v = ((const uint8_t *)img->data)[(ch *
				    224 + y) * 224 + x];
				a[(y * 224 + x) * 3 + ch] = v;
				b[(x * 224 + y) * 3 + ch] = v;
			}
	rc = img_save_png(tpath("a.png"), a, 224, 224, 3, err, sizeof err) ||
	    img_save_png(tpath("b.png"), b, 224, 224, 3, err, sizeof err);
	free(a);
	free(b);
out:
	ckpt_writer_free(w);
	ckpt_close(c);
	return rc;
}

/* The reference Feature k (1..5) and its length. */
static const float *
ref_feat(const Ckpt *c, int k, size_t *n)
{
	char name[32];
	const CkptTensor *t;

	snprintf(name, sizeof name, "pool.feat%d", k);
	t = ckpt_find(c, name);
	*n = t ? t->count : 0;
	return t ? t->data : NULL;
}

/* The module: model inferred from the tensors, the none preset, a batch
 * of the image and its transpose; row 0 is the reference. */
TEST(module_matches_pytorch)
{
	ExtractModel m;
	ExtractPlan plan;
	PrepSpec ps = {PREP_NONE, 256, 224};
	PrepBuf pb = {0};
	Ckpt *c, *r;
	Image im[2];
	float *x, *out[POOL_NFEAT];

	CHECK(ckpt_open(&c, tpath("ref.safetensors"), err, sizeof err) == 0,
	    "%s", err);
	CHECK(ckpt_open(&r, REF, err, sizeof err) == 0, "%s", err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == 0, "%s",
	    err);
	CHECK(strcmp(m.arch, "resnet(bottleneck, blocks 2-1-1-1, width 2)") ==
	    0, "arch '%s'", m.arch);
	CHECK(extract_plan(&plan, &m, 0x3f, 224, 2, err, sizeof err) == 0,
	    "%s", err);
	x = malloc(2 * 224 * 224 * 3 * sizeof *x);
	CHECK(img_load(&im[0], tpath("a.png"), 0, NULL, NULL, err,
	    sizeof err) == 0, "%s", err);
	CHECK(img_load(&im[1], tpath("b.png"), 0, NULL, NULL, err,
	    sizeof err) == 0, "%s", err);
	for (int i = 0; i < 2; i++) {
		CHECK(prep_image(x + i * 224 * 224 * 3, &im[i], &ps, &pb, err,
		    sizeof err) == 0, "%s", err);
		img_free(&im[i]);
	}
	for (int i = 0; i < plan.nfeat; i++)
		out[i] = malloc(2 * plan.feat[i].dim * sizeof(float));
	extract_batch(&plan, &m, x, 2, out);
	for (int k = 1; k <= 5; k++) {
		size_t n;
		const float *ref = ref_feat(r, k, &n);
		double d;

		CHECK(ref && n == plan.feat[k - 1].dim, "feat%d: %zu values, "
		    "%zu expected", k, plan.feat[k - 1].dim, n);
		if (!ref || n != plan.feat[k - 1].dim)
			continue;
		d = reldiff(out[k - 1], ref, n);
		printf("  feat%d n=%zu maxdiff %.3g\n", k, n, d);
		CHECK(d <= TOL, "feat%d: maxdiff %g", k, d);
		CHECK(reldiff(out[k - 1] + n, ref, n) > 1e-2,
		    "feat%d: the transposed image gives the same features", k);
	}
	CHECK(plan.feat[POOL_GAP].dim == 64, "gap dim %zu",
	    plan.feat[POOL_GAP].dim);
	for (int i = 0; i < plan.nfeat; i++)
		free(out[i]);
	free(x);
	prep_buf_free(&pb);
	extract_plan_free(&plan);
	extract_model_free(&m);
	ckpt_close(c);
	ckpt_close(r);
}

/* The tool: a list of a, b, a in batches of 2 (a's rows in two different
 * batches), labels, sidecar. */
TEST(tool_matches_pytorch)
{
	const char *bin = getenv("BIN") ? getenv("BIN") : "build";
	char cmd[2048];
	FILE *fp;
	Ckpt *r;
	Npy a, y;
	json_t *js;
	json_error_t je;

	fp = fopen(tpath("list.txt"), "w");
	fprintf(fp, "a.png 3\nb.png 1\n# a comment\na.png 4\n");
	fclose(fp);
	snprintf(cmd, sizeof cmd, "%s/rl-extract -m %s -P none -b 2 -r %s "
	    "-o %s -p ref %s", bin, tpath("ref.safetensors"), tmp, tmp,
	    tpath("list.txt"));
	CHECK(system(cmd) == 0, "%s failed", cmd);
	CHECK(ckpt_open(&r, REF, err, sizeof err) == 0, "%s", err);
	for (int k = 1; k <= 5; k++) {
		char name[32];
		size_t n;
		const float *ref = ref_feat(r, k, &n);

		snprintf(name, sizeof name, "ref_feat%d.npy", k);
		if (npy_read(tpath(name), &a, err, sizeof err)) {
			CHECK(0, "%s", err);
			continue;
		}
		CHECK(a.type == NPY_F32 && a.ndim == 2 && a.shape[0] == 3 &&
		    (size_t)a.shape[1] == n, "%s: shape", name);
		if ((size_t)a.shape[1] == n && a.shape[0] == 3) {
			const float *f = a.data;
			double d0 = reldiff(f, ref, n),
			    d2 = reldiff(f + 2 * n, ref, n);
			printf("  %s rows 0, 2 maxdiff %.3g %.3g\n", name, d0,
			    d2);
			CHECK(d0 <= TOL && d2 <= TOL, "%s: %g %g", name, d0,
			    d2);
		}
		npy_free(&a);
	}
	ckpt_close(r);
	CHECK(npy_read(tpath("ref_labels.npy"), &y, err, sizeof err) == 0,
	    "%s", err);
	CHECK(y.type == NPY_I64 && y.ndim == 1 && y.shape[0] == 3 &&
	    ((int64_t *)y.data)[0] == 3 && ((int64_t *)y.data)[1] == 1 &&
	    ((int64_t *)y.data)[2] == 4, "labels");
	npy_free(&y);
	js = json_load_file(tpath("ref.json"), 0, &je);
	CHECK(js != NULL, "ref.json: %s", je.text);
	if (js) {
		json_t *l = json_object_get(js, "list");
		json_t *f = json_array_get(json_object_get(js, "features"), 1);

		CHECK(json_integer_value(json_object_get(l, "images")) == 3,
		    "images");
		CHECK(json_integer_value(json_object_get(f, "dim")) == 288 &&
		    strcmp(json_string_value(json_object_get(f, "name")),
		    "feat2") == 0, "feat2 entry");
		CHECK(strcmp(json_string_value(json_object_get(json_object_get(
		    js, "preprocess"), "preset")), "none") == 0, "preset");
		json_decref(js);
	}
}

/* The stage sizes and pooled dims a real forward gives at 224. */
TEST(dims_resnet18_resnet50)
{
	static const size_t d50[POOL_NFEAT] = {9216, 9216, 8192, 9216, 8192,
	    2048};
	static const size_t d18[POOL_NFEAT] = {9216, 2304, 2048, 2304, 2048,
	    512};
	const char *arch[2] = {"resnet18", "resnet50"};
	const size_t *want[2] = {d18, d50};

	for (int a = 0; a < 2; a++) {
		ExtractModel m;
		ExtractPlan plan;
		float *x = calloc(224 * 224 * 3, sizeof *x), *out[POOL_NFEAT];

		CHECK(extract_model_random(&m, arch[a], 1, err, sizeof err) ==
		    0, "%s", err);
		CHECK(extract_plan(&plan, &m, 0x3f, 224, 1, err, sizeof err) ==
		    0, "%s", err);
		for (int i = 0; i < POOL_NFEAT; i++) {
			CHECK(plan.feat[i].dim == want[a][i], "%s %s: %zu",
			    arch[a], plan.feat[i].spec->name,
			    plan.feat[i].dim);
			out[i] = malloc(plan.feat[i].dim * sizeof(float));
		}
		// extract_batch asserts the stages have the planned sizes
		extract_batch(&plan, &m, x, 1, out);
		for (int i = 0; i < POOL_NFEAT; i++)
			free(out[i]);
		extract_plan_free(&plan);
		extract_model_free(&m);
		free(x);
	}
}

/* A resnet18 file: inferred, refused as resnet50 by -a or by metadata,
 * found under backbone.; a file without conv1.weight refused. */
TEST(arch_rules)
{
	ExtractModel m, m18;
	CkptWriter *w;
	Ckpt *c;

	CHECK(extract_model_random(&m18, "resnet18", 3, err, sizeof err) ==
	    0, "%s", err);
	ckpt_writer_create(&w);
	CHECK(resnet_add_to_writer(m18.net, w, "", err, sizeof err) == 0,
	    "%s", err);
	CHECK(ckpt_writer_write(w, tpath("r18.safetensors"), err,
	    sizeof err) == 0, "%s", err);
	ckpt_writer_meta(w, "arch", "resnet50", err, sizeof err);
	CHECK(ckpt_writer_write(w, tpath("r18meta50.safetensors"), err,
	    sizeof err) == 0, "%s", err);
	ckpt_writer_free(w);

	ckpt_open(&c, tpath("r18.safetensors"), err, sizeof err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == 0 &&
	    strcmp(m.arch, "resnet18") == 0, "inferred: %s", err);
	if (m.net) {
		// the same weights came back
		CHECK(memcmp(resnet_params(m.net), resnet_params(m18.net),
		    resnet_nparams(&m.cfg) * sizeof(float)) == 0, "weights");
		extract_model_free(&m);
	}
	CHECK(extract_model_load(&m, c, "resnet18", err, sizeof err) == 0,
	    "-a resnet18: %s", err);
	extract_model_free(&m);
	CHECK(extract_model_load(&m, c, "resnet50", err, sizeof err) == -1 &&
	    strstr(err, "holds a resnet18 backbone, not the resnet50"),
	    "-a resnet50: %s", err);
	CHECK(extract_model_load(&m, c, "resnet101", err, sizeof err) == -1 &&
	    strstr(err, "resnet101"), "unknown arch: %s", err);
	ckpt_close(c);

	ckpt_open(&c, tpath("r18meta50.safetensors"), err, sizeof err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == -1 &&
	    strstr(err, "not the resnet50 named by its arch metadata"),
	    "metadata: %s", err);
	ckpt_close(c);

	ckpt_writer_create(&w);
	CHECK(resnet_add_to_writer(m18.net, w, "backbone.", err, sizeof err) ==
	    0, "%s", err);
	ckpt_writer_write(w, tpath("bb.safetensors"), err, sizeof err);
	ckpt_writer_free(w);
	ckpt_open(&c, tpath("bb.safetensors"), err, sizeof err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == 0 &&
	    strcmp(m.prefix, "backbone.") == 0, "backbone.: %s", err);
	extract_model_free(&m);
	ckpt_close(c);

	CHECK(ckpt_open(&c, "tests/ref/bottleneck.safetensors", err,
	    sizeof err) == 0, "%s", err);
	CHECK(extract_model_load(&m, c, "resnet50", err, sizeof err) == -1 &&
	    strstr(err, "blocks 2-1-1-1, width 2) backbone, not the "
	    "resnet50"), "tiny as resnet50: %s", err);
	ckpt_close(c);
	extract_model_free(&m18);
}

/* What rl-train --width 8 writes (arch metadata "resnet18") loads, with
 * the counters in [1] as some converters write them; a file whose header
 * claims width 4096 with empty tensors is refused before any network is
 * made (it used to ask for 130 GB). */
TEST(width_and_header)
{
	ResNetConfig cfg;
	ResNet *net;
	ExtractModel m;
	CkptWriter *w;
	Ckpt *c;
	int64_t one[1] = {1}, big[4] = {4096, 0, 7, 7}, zero = 0;

	CHECK(resnet_config(&cfg, 18, 8, err, sizeof err) == 0, "%s", err);
	resnet_create(&net, &cfg, NULL, NULL, 5);
	ckpt_writer_create(&w);
	CHECK(resnet_add_to_writer(net, w, "", err, sizeof err) == 0, "%s",
	    err);
	ckpt_writer_meta(w, "arch", "resnet18", err, sizeof err);
	CHECK(ckpt_writer_write(w, tpath("w8.safetensors"), err, sizeof err) ==
	    0, "%s", err);
	ckpt_writer_free(w);
	CHECK(ckpt_open(&c, tpath("w8.safetensors"), err, sizeof err) == 0,
	    "%s", err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == 0 &&
	    m.cfg.width == 8 && !strcmp(m.arch, "resnet18 (width 8)"),
	    "width 8 by metadata: %s", err);
	if (m.net)
		CHECK(memcmp(resnet_params(m.net), resnet_params(net),
		    resnet_nparams(&cfg) * sizeof(float)) == 0, "weights");
	extract_model_free(&m);
	CHECK(extract_model_load(&m, c, "resnet18", err, sizeof err) == 0,
	    "width 8 by -a: %s", err);
	extract_model_free(&m);
	CHECK(extract_model_load(&m, c, "resnet34", err, sizeof err) == -1 &&
	    strstr(err, "width 8) backbone, not the resnet34"), "34: %s", err);
	ckpt_close(c);

	// every num_batches_tracked as [1]
	ckpt_writer_create(&w);
	for (size_t i = 0; i < resnet_ntensors(net); i++) {
		const ResNetTensor *t = resnet_tensor(net, i);
		int nbt = t->ndim == 0;

		CHECK(ckpt_writer_add(w, t->name, t->dtype, nbt ? 1 : t->ndim,
		    nbt ? one : t->shape, t->data, err, sizeof err) == 0, "%s",
		    err);
	}
	CHECK(ckpt_writer_write(w, tpath("nbt1.safetensors"), err,
	    sizeof err) == 0, "%s", err);
	ckpt_writer_free(w);
	ckpt_open(&c, tpath("nbt1.safetensors"), err, sizeof err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == 0,
	    "num_batches_tracked [1]: %s", err);
	extract_model_free(&m);
	ckpt_close(c);

	// width 4096 claimed by empty tensors: the header alone is refused
	ckpt_writer_create(&w);
	ckpt_writer_add(w, "conv1.weight", CKPT_F32, 4, big, &zero, err,
	    sizeof err);
	for (int s = 1; s <= 4; s++) {
		char name[64];
		snprintf(name, sizeof name, "layer%d.0.conv1.weight", s);
		ckpt_writer_add(w, name, CKPT_F32, 4, big, &zero, err,
		    sizeof err);
	}
	CHECK(ckpt_writer_write(w, tpath("huge.safetensors"), err,
	    sizeof err) == 0, "%s", err);
	ckpt_writer_free(w);
	ckpt_open(&c, tpath("huge.safetensors"), err, sizeof err);
	CHECK(extract_model_load(&m, c, NULL, err, sizeof err) == -1 &&
	    strstr(err, "huge.safetensors: conv1.weight: shape") && !m.net,
	    "huge: %s", err);
	ckpt_close(c);
	resnet_free(net);
}

/* Batches come out in list order whatever thread decoded them, the
 * last one short; a file that fails to decode stops the loader with its
 * name. */
TEST(loader)
{
	static const int wh[7][2] = {{40, 30}, {30, 41}, {33, 33}, {50, 20},
	    {21, 60}, {32, 32}, {45, 44}};
	PrepSpec ps = {PREP_SVM, 20, 16};
	List l = {0};
	PrepBuf pb = {0};
	ExtractLoader *ld;
	const float *x;
	float *want = malloc(16 * 16 * 3 * sizeof *want);
	int nb, row = 0, nbatch = 0;

	for (int i = 0; i < 7; i++) {
		uint8_t *px = malloc((size_t)wh[i][0] * wh[i][1] * 3);
		char name[32];

		for (int j = 0; j < wh[i][0] * wh[i][1] * 3; j++)
			px[j] = (uint8_t)(j * (i + 3) + i * 50);
		snprintf(name, sizeof name, "l%d.png", i);
		img_save_png(tpath(name), px, wh[i][0], wh[i][1], 3, err,
		    sizeof err);
		list_add(&l, tpath(name), NULL, 0);
		free(px);
	}
	CHECK(extract_loader_start(&ld, &l, &ps, 3, 3, err, sizeof err) == 0,
	    "%s", err);
	while (extract_loader_next(ld, &x, &nb, err, sizeof err) == 0 &&
	    nb > 0) {
		CHECK(nb == (nbatch < 2 ? 3 : 1), "batch %d has %d", nbatch,
		    nb);
		for (int i = 0; i < nb; i++, row++) {
			Image im;

			img_load(&im, l.item[row].path, 0, NULL, NULL, err,
			    sizeof err);
			prep_image(want, &im, &ps, &pb, err, sizeof err);
			img_free(&im);
			CHECK(memcmp(x + i * 16 * 16 * 3, want, 16 * 16 * 3 *
			    sizeof *want) == 0, "row %d out of order", row);
		}
		nbatch++;
	}
	CHECK(row == 7 && nbatch == 3, "%d rows in %d batches", row, nbatch);
	extract_loader_stop(ld);

	// item 4 becomes a file that is not an image
	free(l.item[4].path);
	l.item[4].path = estrdup("tests/data/notimage.jpg");
	CHECK(extract_loader_start(&ld, &l, &ps, 3, 2, err, sizeof err) == 0,
	    "%s", err);
	row = 0;
	while (extract_loader_next(ld, &x, &nb, err, sizeof err) == 0 &&
	    nb > 0)
		row += nb;
	CHECK(row <= 3 && strstr(err, "tests/data/notimage.jpg: "),
	    "%d rows, then: %s", row, err);
	CHECK(extract_loader_next(ld, &x, &nb, err, sizeof err) == -1,
	    "stays failed");
	extract_loader_stop(ld);
	list_free(&l);
	prep_buf_free(&pb);
	free(want);
}

TEST(check_files)
{
	List l = {0};
	size_t nbad;
	int e;

	list_add(&l, "tests/data/rgb12x9.png", NULL, 0);
	list_add(&l, "tests/data/no-such-1.png", NULL, 0);
	list_add(&l, "tests/data/no-such-2.png", NULL, 0);
	CHECK(extract_check_files(&l, &nbad, &e) == 1 && nbad == 2 &&
	    e != 0, "missing");
	l.n = 1;
	CHECK(extract_check_files(&l, &nbad, &e) == -1 && nbad == 0, "ok");
	l.n = 3;
	list_free(&l);
}

int
main(void)
{
	const char *t = getenv("TMP");

	snprintf(tmp, sizeof tmp, "%s", t ? t : "/tmp");
	if (img_start("t_extract", err, sizeof err) || make_ref_files()) {
		fprintf(stderr, "set-up: %s\n", err);
		return 1;
	}
	RUN(module_matches_pytorch);
	RUN(tool_matches_pytorch);
	RUN(dims_resnet18_resnet50);
	RUN(arch_rules);
	RUN(width_and_header);
	RUN(loader);
	RUN(check_files);
	img_stop();
	return check_summary();
}

/* fz_ckpt: safetensors checkpoints (ckpt_open: the 8-byte length, the
 * JSON header, offsets and shapes) and the backbone found in them
 * (extract_model_load: shapes from the header before any allocation). */
#include "common/ckpt.h"
#include "common/extract.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CKPT_ERRLEN];
	const char *k, *v;
	ExtractModel m;
	Ckpt *c;
	size_t sum = 0;

	if (ckpt_open(&c, fuzz_file("x.safetensors", data, size), err,
	    sizeof err))
		return 0;
	for (size_t i = 0; i < ckpt_ntensors(c); i++) {
		const CkptTensor *t = ckpt_tensor(c, i);
		size_t n = 1;

		for (int d = 0; d < t->ndim; d++)
			n *= (size_t)t->shape[d];
		FUZZ_ASSERT(n == t->count && t->nbytes == n *
		    ckpt_dtype_size(t->dtype) && t->nbytes <= size);
		FUZZ_ASSERT(ckpt_find(c, t->name) == t);
		for (size_t b = 0; b < t->nbytes; b++)
			sum += ((const uint8_t *)t->data)[b];
	}
	for (size_t i = 0; i < ckpt_nmeta(c); i++) {
		ckpt_meta_at(c, i, &k, &v);
		sum += strlen(k) + strlen(v);
	}
	if (extract_model_load(&m, c, NULL, err, sizeof err) == 0)
		extract_model_free(&m);
	ckpt_close(c);
	return sum == 1;
}

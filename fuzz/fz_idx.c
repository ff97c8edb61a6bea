/* fz_idx: IDX (MNIST) files, raw or gzip'd, through idx_read. */
#include "common/idx.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	size_t n = 1;
	Idx x;

	if (idx_read(&x, fuzz_file("x.idx", data, size), 0, err, sizeof err))
		return 0;
	for (int i = 0; i < x.ndim; i++)
		n *= x.dim[i];
	FUZZ_ASSERT(n == x.n && x.data != NULL);
	FUZZ_ASSERT(x.n == 0 || x.data[x.n - 1] == x.data[x.n - 1]);
	idx_free(&x);
	return 0;
}

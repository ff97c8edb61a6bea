/* fz_npy: .npy headers (npy_header) and whole files (npy_read). What is
 * accepted holds exactly count elements of its type. */
#include "common/npy.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	size_t off, cnt = 1;
	Npy a;
	double sum = 0;

	if (npy_header("fuzz.npy", data, size, &a, &off, err, sizeof err) == 0) {
		for (int i = 0; i < a.ndim; i++)
			cnt *= (size_t)a.shape[i];
		FUZZ_ASSERT(off <= size && cnt == a.count);
	}
	if (npy_read(fuzz_file("x.npy", data, size), &a, err, sizeof err))
		return 0;
	FUZZ_ASSERT(a.count * npy_elsize(a.type) == size - off);
	for (size_t i = 0; i < a.count; i++)
		sum += npy_get(&a, i);
	npy_free(&a);
	return sum != sum;
}

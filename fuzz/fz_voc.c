/* fz_voc: VOC class files (voc_split_read). The input up to the first
 * "\n\n\n" is the first ten classes' file, the rest the last ten's. */
#include <sys/stat.h>

#include "common/voc.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], name[128];
	const uint8_t *cut = NULL;
	size_t na = size;
	VocSplit s;

	for (size_t i = 0; i + 3 <= size; i++)
		if (!memcmp(data + i, "\n\n\n", 3)) {
			cut = data + i + 3, na = i;
			break;
		}
	mkdir(fuzz_path("ImageSets"), 0777);
	mkdir(fuzz_path("ImageSets/Main"), 0777);
	for (int c = 0; c < VOC_NCLASS; c++) {
		snprintf(name, sizeof name, "ImageSets/Main/%s_x.txt",
		    voc_class[c]);
		if (c < 10 || !cut)
			fuzz_file(name, data, na);
		else
			fuzz_file(name, cut, size - (cut - data));
	}
	if (voc_split_read(&s, fuzz_dir(), "x", err, sizeof err))
		return 0;
	FUZZ_ASSERT(s.n > 0);
	for (size_t i = 1; i < s.n; i++)
		FUZZ_ASSERT(strcmp(s.id[i - 1], s.id[i]) < 0);
	for (size_t i = 0; i < s.n * VOC_NCLASS; i++)
		FUZZ_ASSERT(s.label[i] >= -1 && s.label[i] <= 1);
	voc_split_free(&s);
	return 0;
}

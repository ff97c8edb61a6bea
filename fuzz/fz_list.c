/* fz_list: list-file lines (list_read): every item has a non-empty path
 * without control bytes (tabs are not control bytes here). */
#include "common/list.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	List l = {0};
	FILE *fp = fopen(fuzz_file("list.txt", data, size), "r");

	FUZZ_ASSERT(fp != NULL);
	if (list_read(&l, fp, "list.txt", "root", err, sizeof err) == 0)
		for (size_t i = 0; i < l.n; i++) {
			FUZZ_ASSERT(l.item[i].path[0] != '\0');
			FUZZ_ASSERT(l.item[i].line >= 1);
			for (const char *p = l.item[i].path; *p; p++)
				FUZZ_ASSERT(((unsigned char)*p >= 0x20 ||
				    *p == '\t') && *p != 0x7f);
		}
	fclose(fp);
	list_free(&l);
	return 0;
}

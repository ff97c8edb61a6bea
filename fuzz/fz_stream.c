/* fz_stream: the byte-stream framing (a record file or stdin, stream.h's
 * STREAM_FILE source): every record read until the end or an error. */
#include "common/stream.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Record r;
	RecordSource *src;
	char err[512];
	const char *path = fuzz_file("in.rec", data, size);
	int rc;

	if (source_open(&src, STREAM_FILE, path, NULL, err, sizeof err))
		return 0;
	while ((rc = source_next(src, &r, err, sizeof err)) == 1)
		FUZZ_ASSERT(r.pixels != NULL && r.source != NULL);
	FUZZ_ASSERT(rc == 0 || err[0]);
	source_close(src);
	return 0;
}

/* fz_record: the record decoder (record_frame, record_decode) on bytes,
 * as LMDB values and ZeroMQ messages reach it. An accepted record must
 * pack again and decode to the same fields. */
#include "common/record.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Record r, back;
	msgpack_sbuffer sb;
	char err[256];
	ptrdiff_t n;

	n = record_frame(data, size, err, sizeof err);
	FUZZ_ASSERT(n >= -1 && n <= (ptrdiff_t)size);
	if (record_decode(data, size, &r, err, sizeof err) == -1)
		return 0;
	FUZZ_ASSERT(n == (ptrdiff_t)size);
	msgpack_sbuffer_init(&sb);
	FUZZ_ASSERT(record_pack(&r, &sb, err, sizeof err) == 0);
	FUZZ_ASSERT(record_decode(sb.data, sb.size, &back, err,
	    sizeof err) == 0);
	FUZZ_ASSERT(back.id == r.id && back.patch == r.patch &&
	    back.label == r.label && !strcmp(back.source, r.source) &&
	    !memcmp(back.pixels, r.pixels, record_pixel_bytes(r.patch)));
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

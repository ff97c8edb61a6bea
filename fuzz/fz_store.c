/*
 * fz_store: what a reader takes from an LMDB record store: its metadata
 * entry and its records (store_open, store_get, record_decode), and a
 * data.mdb cut short (the truncation check). The input is split at each
 * "RLSEP": the first part is the metadata, the others the records; its
 * first byte, when below 0x40, cuts data.mdb to that many 4 KiB pages.
 * The store is written through store_create/store_append (LMDB's own
 * page format is LMDB's business; what it holds is the input's).
 */
#include <jansson.h>

#include "common/record.h"
#include "common/store.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Record r;
	StoreItem items[64];
	const uint8_t *p = data, *end = data + size, *meta;
	size_t n = 0, metalen = 0;
	char err[512], path[300], mdb[300];
	const void *v;
	size_t vl;
	Store *st;
	int cut = size > 0 && data[0] < 0x40 ? data[0] : -1;

	// the parts
	meta = p;
	for (;;) {
		const uint8_t *q = p;
		while (q + 5 <= end && memcmp(q, "RLSEP", 5))
			q++;
		if (q + 5 > end)
			q = end;
		if (p == meta)
			metalen = q - p;
		else if (n < RL_NELEM(items))
			items[n].data = p, items[n++].len = q - p;
		if (q == end)
			break;
		p = q + 5;
	}
	// a fresh environment (no fork: system() of an ASan process is slow)
	snprintf(path, sizeof path, "%s/data.mdb", fuzz_path("db"));
	unlink(path);
	snprintf(path, sizeof path, "%s/lock.mdb", fuzz_path("db"));
	unlink(path);
	if (store_create(&st, fuzz_path("db"), 1 << 20, err, sizeof err))
		return 0;
	// LMDB refuses empty values: then nothing is written
	if (store_append(st, items, n, meta, metalen, err, sizeof err)) {
		store_close(st);
		return 0;
	}
	store_close(st);
	snprintf(mdb, sizeof mdb, "%s/data.mdb", fuzz_path("db"));
	if (cut >= 0)
		FUZZ_ASSERT(truncate(mdb, (off_t)cut * 4096) == 0);
	if (store_open(&st, fuzz_path("db"), err, sizeof err))
		return 0;
	FUZZ_ASSERT(store_count(st) == n);
	for (uint64_t i = 0; i < store_count(st); i++) {
		FUZZ_ASSERT(store_get(st, i, &v, &vl, err, sizeof err) == 0);
		FUZZ_ASSERT(vl == items[i].len && !memcmp(v, items[i].data, vl));
		record_decode(v, vl, &r, err, sizeof err);
	}
	if (store_meta(st) != NULL) {
		json_error_t je;
		json_t *js = json_loads(store_meta(st), 0, &je);
		json_decref(js);
	}
	store_close(st);
	return 0;
}

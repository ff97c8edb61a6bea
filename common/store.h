/*
 * store: records in an LMDB environment directory (man rl-record.5).
 *
 * Record i is stored under its 8-byte big-endian index, so keys sort in
 * record order, and its value is the record's msgpack map (record.h);
 * this module only moves those bytes. One more entry, under the 9-byte
 * key STORE_META_KEY (it cannot collide with an 8-byte record key), holds
 * a JSON object: how the records were made, and their count.
 *
 * A writer appends records in batches, one write transaction each, and
 * grows the map (doubling it) whenever LMDB reports MDB_MAP_FULL, so no
 * size has to be guessed. A reader opens the environment read-only and
 * sees the snapshot taken at open: count and random access by index.
 *
 * Not here: msgpack (record.h), choosing batches (stream.h), signals.
 */
#ifndef RL_STORE_H
#define RL_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_META_KEY "rl-record"    /* 9 bytes, no NUL */
#define STORE_MAPSIZE_DEFAULT ((size_t)64 << 20)

typedef struct Store Store;

/* One value to write: len bytes at data (borrowed for the call). */
typedef struct {
	const void *data;
	size_t len;
} StoreItem;

/*
 * Open dir for writing, creating the directory (one level) if it does not
 * exist. An environment that already holds records is refused: a store is
 * written once, by one writer. mapsize is the initial map size in bytes
 * (0: STORE_MAPSIZE_DEFAULT); it doubles as needed. 0, or -1 with a
 * message naming dir.
 */
int store_create(Store **st, const char *dir, size_t mapsize, char *err,
    size_t errlen);

/*
 * Append n records (keys count .. count+n-1) and, when meta is not NULL,
 * replace the metadata entry with metalen bytes at meta, all in one write
 * transaction: after a crash the store holds whole batches and a count
 * that matches them. On MDB_MAP_FULL the map is doubled and the batch
 * retried. 0, or -1 with a message (a full disk: "No space left on
 * device"); after -1 nothing of this batch was written.
 */
int store_append(Store *st, const StoreItem *items, size_t n,
    const void *meta, size_t metalen, char *err, size_t errlen);

/*
 * Open dir read-only and take a snapshot (a read transaction kept until
 * store_close). The records' keys must be 0 .. count-1; anything else is
 * refused as not a record store. 0, or -1 with a message naming dir.
 */
int store_open(Store **st, const char *dir, char *err, size_t errlen);

/* Records in the store (the snapshot for a reader, written so far for a
 * writer). */
uint64_t store_count(const Store *st);

/*
 * Reader: record i (0 <= i < count) as *data, *len. The bytes point into
 * the map and are valid until store_close; do not modify them. 0, or -1
 * with a message.
 */
int store_get(Store *st, uint64_t i, const void **data, size_t *len,
    char *err, size_t errlen);

/* Reader: the metadata entry as a NUL-terminated string owned by st
 * (valid until store_close), or NULL when the store has none. */
const char *store_meta(const Store *st);

/* The map size in bytes now in use (it grows while writing). */
size_t store_mapsize(const Store *st);

/* Close and free st (NULL is ignored). A writer must have appended its
 * last batch: nothing is pending here. */
void store_close(Store *st);

#endif

/*
 * store: records in an LMDB environment (see store.h, man rl-record.5).
 *
 * Record keys are 8-byte big-endian indexes, appended with MDB_APPEND so
 * pages fill completely. The 9-byte metadata key sorts after every record
 * key below 0x72 << 56, so each batch deletes it, appends its records and
 * puts it back last, all in one transaction.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/store.h"
#include "common/util.h"

struct Store {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rtxn;          /* reader: the snapshot */
	char *dir;
	char *meta;             /* reader: NUL-terminated copy */
	uint64_t count;
	size_t mapsize;
};

static const MDB_val meta_key = { sizeof STORE_META_KEY - 1,
    (void *)STORE_META_KEY };

static void
key_put(unsigned char k[8], uint64_t i)
{
	int b;

	for (b = 7; b >= 0; b--, i >>= 8)
		k[b] = (unsigned char)(i & 0xff);
}

static uint64_t
key_get(const unsigned char k[8])
{
	uint64_t i = 0;
	int b;

	for (b = 0; b < 8; b++)
		i = i << 8 | k[b];
	return i;
}

static int
lmdb_fail(const Store *st, const char *what, int rc, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", st->dir, what, mdb_strerror(rc));
	return -1;
}

/* Create the handle and the environment; flags for mdb_env_open. */
static int
env_open(Store **out, const char *dir, size_t mapsize, unsigned flags,
    char *err, size_t errlen)
{
	Store *st = ecalloc(1, sizeof *st);
	int rc;

	st->dir = estrdup(dir);
	st->mapsize = mapsize;
	if ((rc = mdb_env_create(&st->env)) != 0) {
		lmdb_fail(st, "mdb_env_create", rc, err, errlen);
		st->env = NULL;
		goto fail;
	}
	if (mapsize != 0 && (rc = mdb_env_set_mapsize(st->env, mapsize)) != 0) {
		lmdb_fail(st, "mdb_env_set_mapsize", rc, err, errlen);
		goto fail;
	}
	if ((rc = mdb_env_open(st->env, dir, flags, 0644)) != 0) {
		lmdb_fail(st, "cannot open LMDB environment", rc, err, errlen);
		goto fail;
	}
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

/*
 * Open the main database in txn, find the record count and check the keys
 * are 0 .. count-1. *has_meta tells whether the metadata entry exists.
 */
static int
scan(Store *st, MDB_txn *txn, int *has_meta, char *err, size_t errlen)
{
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_dbi_open(txn, NULL, 0, &st->dbi)) != 0)
		return lmdb_fail(st, "mdb_dbi_open", rc, err, errlen);
	if ((rc = mdb_stat(txn, st->dbi, &ms)) != 0)
		return lmdb_fail(st, "mdb_stat", rc, err, errlen);
	rc = mdb_get(txn, st->dbi, (MDB_val *)&meta_key, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail(st, "reading the metadata", rc, err, errlen);
	*has_meta = rc == 0;
	st->count = ms.ms_entries - (size_t)*has_meta;
	if (st->count == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->dbi, &cur)) != 0)
		return lmdb_fail(st, "mdb_cursor_open", rc, err, errlen);
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && (k.mv_size != 8 || key_get(k.mv_data) != 0))
		rc = -1;
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && *has_meta)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	if (rc == 0 && (k.mv_size != 8 || key_get(k.mv_data) != st->count - 1))
		rc = -1;
	mdb_cursor_close(cur);
	if (rc == -1) {
		snprintf(err, errlen, "%s: not a record store (keys are not "
		    "0 .. %llu)", st->dir, (unsigned long long)st->count - 1);
		return -1;
	}
	if (rc != 0)
		return lmdb_fail(st, "reading keys", rc, err, errlen);
	return 0;
}

/*
 * LMDB maps its lock file and writes its reader table through the map: on
 * a full disk the page cannot be had and the process dies of SIGBUS
 * inside mdb_env_open. Allocating the file's blocks first turns that into
 * ENOSPC here (LMDB keeps a lock file larger than it needs).
 */
#define LOCK_BYTES 16384

static int
lock_reserve(const char *dir, char *err, size_t errlen)
{
	char *path = rl_concat(dir, "/lock.mdb", NULL);
	int fd, rc;

	if ((fd = open(path, O_RDWR | O_CREAT, 0644)) == -1)
		rc = errno;
	else {
		rc = posix_fallocate(fd, 0, LOCK_BYTES);
		if (rc == EINVAL || rc == EOPNOTSUPP)
			rc = 0;         /* a file system without it */
		close(fd);
	}
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(rc));
	free(path);
	return rc == 0 ? 0 : -1;
}

int
store_create(Store **out, const char *dir, size_t mapsize, char *err,
    size_t errlen)
{
	struct stat sb;
	MDB_txn *txn;
	Store *st;
	int rc, has_meta;

	if (mkdir(dir, 0777) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (mapsize == 0)
		mapsize = STORE_MAPSIZE_DEFAULT;
	if (lock_reserve(dir, err, errlen) == -1)
		return -1;
	if (env_open(&st, dir, mapsize, 0, err, errlen) == -1)
		return -1;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
		lmdb_fail(st, "mdb_txn_begin", rc, err, errlen);
		goto fail;
	}
	if (scan(st, txn, &has_meta, err, errlen) == -1) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if (st->count > 0) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "%s: already holds %llu records (remove "
		    "it or choose another directory)", dir,
		    (unsigned long long)st->count);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		lmdb_fail(st, "mdb_txn_commit", rc, err, errlen);
		goto fail;
	}
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

/* One attempt at a batch: 0, or an LMDB error code (the txn is gone). */
static int
append_txn(Store *st, const StoreItem *items, size_t n, const void *meta,
    size_t metalen, const char **what)
{
	unsigned char kb[8];
	MDB_txn *txn;
	MDB_val k, v;
	size_t i;
	int rc;

	*what = "mdb_txn_begin";
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return rc;
	*what = "removing the old metadata";
	rc = mdb_del(txn, st->dbi, (MDB_val *)&meta_key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto abort;
	*what = "writing a record";
	for (i = 0; i < n; i++) {
		key_put(kb, st->count + i);
		k.mv_size = 8;
		k.mv_data = kb;
		v.mv_size = items[i].len;
		v.mv_data = (void *)items[i].data;
		if ((rc = mdb_put(txn, st->dbi, &k, &v, MDB_APPEND)) != 0)
			goto abort;
	}
	if (meta != NULL) {
		*what = "writing the metadata";
		v.mv_size = metalen;
		v.mv_data = (void *)meta;
		rc = mdb_put(txn, st->dbi, (MDB_val *)&meta_key, &v, 0);
		if (rc != 0)
			goto abort;
	}
	*what = "committing";
	return mdb_txn_commit(txn);
abort:
	mdb_txn_abort(txn);
	return rc;
}

int
store_append(Store *st, const StoreItem *items, size_t n, const void *meta,
    size_t metalen, char *err, size_t errlen)
{
	struct statvfs vfs;
	const char *what;
	char buf[64];
	int rc;

	while ((rc = append_txn(st, items, n, meta, metalen, &what)) ==
	    MDB_MAP_FULL) {
		if (st->mapsize > SIZE_MAX / 2) {
			snprintf(err, errlen, "%s: map full at %zu bytes and "
			    "cannot grow", st->dir, st->mapsize);
			return -1;
		}
		if ((rc = mdb_env_set_mapsize(st->env, st->mapsize * 2)) != 0) {
			snprintf(buf, sizeof buf, "growing the map to %zu bytes",
			    st->mapsize * 2);
			return lmdb_fail(st, buf, rc, err, errlen);
		}
		st->mapsize *= 2;
	}
	if (rc != 0) {
		lmdb_fail(st, what, rc, err, errlen);
		/* LMDB reports a short write, as on a full disk, as EIO. */
		if ((rc == EIO || rc == ENOSPC) && statvfs(st->dir, &vfs) == 0 &&
		    (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)64 << 20))
			snprintf(err + strlen(err), errlen - strlen(err),
			    " (the disk is full: %llu bytes free)",
			    (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		return -1;
	}
	st->count += n;
	return 0;
}

/*
 * The data file must hold every page the environment's meta page counts
 * (LMDB reads the meta pages with read(2), the rest through the map, where
 * a page past the end of the file is a SIGBUS).
 */
static int
check_size(Store *st, char *err, size_t errlen)
{
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;
	mdb_filehandle_t fd;
	int rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0)
		return lmdb_fail(st, "mdb_env_info", rc, err, errlen);
	if ((rc = mdb_env_stat(st->env, &ms)) != 0)
		return lmdb_fail(st, "mdb_env_stat", rc, err, errlen);
	if ((rc = mdb_env_get_fd(st->env, &fd)) != 0)
		return lmdb_fail(st, "mdb_env_get_fd", rc, err, errlen);
	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: data.mdb: %s", st->dir,
		    strerror(errno));
		return -1;
	}
	if (ms.ms_psize == 0 || info.me_last_pgno >= SIZE_MAX / ms.ms_psize ||
	    (uint64_t)sb.st_size < (info.me_last_pgno + 1) * (uint64_t)ms.ms_psize) {
		snprintf(err, errlen, "%s: the database is truncated (data.mdb "
		    "is %lld bytes, its last page ends at %llu)", st->dir,
		    (long long)sb.st_size, (unsigned long long)
		    (info.me_last_pgno + 1) * ms.ms_psize);
		return -1;
	}
	return 0;
}

int
store_open(Store **out, const char *dir, char *err, size_t errlen)
{
	MDB_envinfo info;
	Store *st;
	MDB_val v;
	int rc, has_meta;

	if (env_open(&st, dir, 0, MDB_RDONLY, err, errlen) == -1)
		return -1;
	if (check_size(st, err, errlen) == -1)
		goto fail;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn)) != 0) {
		st->rtxn = NULL;
		lmdb_fail(st, "mdb_txn_begin", rc, err, errlen);
		goto fail;
	}
	if (scan(st, st->rtxn, &has_meta, err, errlen) == -1)
		goto fail;
	if ((rc = mdb_env_info(st->env, &info)) != 0) {
		lmdb_fail(st, "mdb_env_info", rc, err, errlen);
		goto fail;
	}
	st->mapsize = info.me_mapsize;
	if (has_meta) {
		rc = mdb_get(st->rtxn, st->dbi, (MDB_val *)&meta_key, &v);
		if (rc != 0) {
			lmdb_fail(st, "reading the metadata", rc, err, errlen);
			goto fail;
		}
		st->meta = emalloc(v.mv_size + 1);
		memcpy(st->meta, v.mv_data, v.mv_size);
		st->meta[v.mv_size] = '\0';
	}
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

uint64_t
store_count(const Store *st)
{
	return st->count;
}

int
store_get(Store *st, uint64_t i, const void **data, size_t *len, char *err,
    size_t errlen)
{
	unsigned char kb[8];
	MDB_val k, v;
	int rc;

	if (st->rtxn == NULL || i >= st->count) {
		snprintf(err, errlen, "%s: no record %llu (%llu records)",
		    st->dir, (unsigned long long)i,
		    (unsigned long long)st->count);
		return -1;
	}
	key_put(kb, i);
	k.mv_size = 8;
	k.mv_data = kb;
	if ((rc = mdb_get(st->rtxn, st->dbi, &k, &v)) != 0) {
		snprintf(err, errlen, "%s: record %llu: %s", st->dir,
		    (unsigned long long)i, mdb_strerror(rc));
		return -1;
	}
	*data = v.mv_data;
	*len = v.mv_size;
	return 0;
}

const char *
store_meta(const Store *st)
{
	return st->meta;
}

size_t
store_mapsize(const Store *st)
{
	return st->mapsize;
}

void
store_close(Store *st)
{
	if (st == NULL)
		return;
	if (st->rtxn != NULL)
		mdb_txn_abort(st->rtxn);
	if (st->env != NULL)
		mdb_env_close(st->env);
	free(st->meta);
	free(st->dir);
	free(st);
}

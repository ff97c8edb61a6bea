/*
 * stream: one interface for moving grid records (record.h) over a byte
 * stream (stdout/stdin or a file), an LMDB directory (store.h) or ZeroMQ
 * PUSH/PULL sockets. The framing of each is in rl-record(5):
 *   - a stream: the msgpack maps concatenated, nothing else;
 *   - LMDB: one map per 8-byte big-endian key, plus a metadata entry;
 *   - ZeroMQ: one map per message, and an empty message as the
 *     end-of-stream marker each sender sends when it closes.
 *
 * ZeroMQ peers and trust (rl-record(5) "Trust"): a receiving socket takes
 * no message larger than any record (ZMQ_MAXMSGSIZE: libzmq drops the
 * peer that sends one before buffering it). Every connection to a
 * receiver goes through a ZAP handler run by the receiver itself, which
 * names the peer (its address, and its key's name under CURVE) and, with
 * CURVE, admits only the allowed keys. A frame from a peer that is not a
 * valid record, an end-of-stream marker from a peer that sent no record
 * or ended already, or a record after its marker, is a bad frame: it is
 * skipped with a warning on stderr naming the peer, and the source fails
 * only after bad_max of them. A TCP endpoint whose host is not a loopback
 * address is refused without CURVE keys unless insecure is set.
 *
 * A record is packed whole before any of it is written, so a sink never
 * writes part of one. A sink reports every failure (a full disk, a full
 * map it could not grow, a closed pipe) as -1 with a message; it never
 * drops a record: a ZeroMQ PUSH blocks at the high-water mark.
 * A source ends with 0 only at a clean end (end of file on a record
 * boundary, the last record of an LMDB, the expected end-of-stream
 * markers); a truncated or corrupt stream, or a silent or vanished
 * ZeroMQ sender, is -1 with a message.
 *
 * The stream layer installs no signal handlers: a tool that catches
 * SIGINT/SIGTERM stops putting records and calls sink_close, which
 * commits everything put so far.
 */
#ifndef RL_STREAM_H
#define RL_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/record.h"

typedef enum { STREAM_FILE, STREAM_LMDB, STREAM_ZMQ } StreamKind;

#define STREAM_HWM_DEFAULT 64
#define STREAM_TIMEOUT_DEFAULT 120000   /* ms, ZeroMQ source */
#define STREAM_LINGER_DEFAULT 60000     /* ms, ZeroMQ sink */
#define STREAM_BATCH_DEFAULT 256

typedef struct {
	int hwm;            /* ZeroMQ high-water mark, messages (default 64) */
	int timeout_ms;     /* ZeroMQ source: report a silent sender after this
	                     * long (default 120000; -1 = wait forever).
	                     * ZeroMQ sink: > 0 reports a put blocked this long
	                     * at the high-water mark (default: block) */
	int linger_ms;      /* ZeroMQ sink: how long close waits to deliver
	                     * queued messages (default 60000) */
	int expect_ends;    /* ZeroMQ source: end-of-stream markers to wait
	                     * for (= number of senders, default 1) */
	int batch;          /* LMDB sink: records per write transaction
	                     * (default 256) */
	size_t mapsize;     /* LMDB sink: initial map size in bytes; it
	                     * doubles when full (default 64 MiB) */
	long bad_max;       /* ZeroMQ source: bad frames from peers skipped
	                     * before it fails (default 10; -1: none) */
	/* ZeroMQ CURVE (curve.h key files); all NULL: no encryption */
	const char *key_file;   /* this end's secret key file */
	const char *allow_file; /* source: the public keys of the senders
	                         * it accepts (needed with key_file) */
	const char *peer_file;  /* sink: the receiver's public key (needed
	                         * with key_file) */
	int insecure;       /* allow a non-loopback TCP endpoint without keys */
} StreamOptions;            /* zero fields take the defaults */

#define STREAM_BAD_MAX_DEFAULT 10

/*
 * The ZeroMQ security options of the tools (rl-keygen(1), rl-record(5)):
 * --allow file, --bad-records n, --insecure, --key file, --peer-key file,
 * as getopt_long codes and struct option entries, so that every tool
 * takes them alike. stream_option applies one (1), or says it is none of
 * them (0); a bad value exits with a usage error.
 * stream_options_need_zmq exits with a usage error when any is given
 * without a ZeroMQ endpoint (zmq 0).
 */
enum {
	STREAM_OPT_ALLOW = 0x5000, STREAM_OPT_BAD, STREAM_OPT_INSECURE,
	STREAM_OPT_KEY, STREAM_OPT_PEER_KEY
};
#define STREAM_LONGOPT_ALLOW { "allow", 1, NULL, STREAM_OPT_ALLOW }
#define STREAM_LONGOPT_BAD { "bad-records", 1, NULL, STREAM_OPT_BAD }
#define STREAM_LONGOPT_INSECURE { "insecure", 0, NULL, STREAM_OPT_INSECURE }
#define STREAM_LONGOPT_KEY { "key", 1, NULL, STREAM_OPT_KEY }
#define STREAM_LONGOPT_PEER_KEY { "peer-key", 1, NULL, STREAM_OPT_PEER_KEY }
int stream_option(StreamOptions *o, int code, const char *arg);
void stream_options_need_zmq(const StreamOptions *o, int zmq);

/* Parse "file", "lmdb", "zmq" (for options); -1 if none. */
int stream_kind_parse(const char *name, StreamKind *kind);

/*
 * The ZeroMQ endpoint convention, exposed for messages and tests.
 * spec: "N" means tcp://127.0.0.1:N; "host:N" means tcp://host:N; a
 * "scheme://..." endpoint is taken as is. (A socket that binds a TCP
 * host name binds the address it resolves to.) A leading '@' binds, '>'
 * connects; with neither, *bind is dflt_bind. Writes the endpoint to ep.
 * 0, or -1 with a message.
 */
int stream_endpoint(const char *spec, int dflt_bind, char *ep, size_t eplen,
    int *bind, char *err, size_t errlen);

typedef struct RecordSink RecordSink;

/*
 * Open a sink. where:
 *   STREAM_FILE: NULL, "" or "-" for stdout (fd 1, written with
 *     write(2) after fflush(stdout); not closed by sink_close: the tool
 *     fshut()s it), else a file path (created/truncated). A pipe gets
 *     each record as it is put; a regular file, blocks of about 1 MiB and
 *     the rest at sink_close, and it is cut back to the last whole record
 *     when a write fails;
 *   STREAM_LMDB: a directory (created; must not already hold records);
 *   STREAM_ZMQ: an endpoint (stream_endpoint); a PUSH that connects by
 *     default, so many samplers can feed one trainer.
 * opt may be NULL (all defaults). 0, or -1 with a message.
 */
int sink_open(RecordSink **s, StreamKind kind, const char *where,
    const StreamOptions *opt, char *err, size_t errlen);

/*
 * Write one record (checked by record_pack first: a bad record is -1 and
 * nothing is written). LMDB: batched transactions; the map grows when
 * full. Any failure is -1 with a message naming the destination. A
 * ZeroMQ put blocked at the high-water mark returns -1 with errno EINTR
 * when a signal arrives (the record is not sent), so a tool can stop; a
 * file write is retried instead.
 */
int sink_put(RecordSink *s, const Record *r, char *err, size_t errlen);

/*
 * LMDB: the JSON object to store in the metadata entry (the sampling
 * configuration, the seed); the stream layer adds "count" and
 * "record_version" and rewrites it with every batch. json must parse as a
 * JSON object. Others: accepted and ignored. 0 or -1.
 */
int sink_set_meta(RecordSink *s, const char *json, char *err,
    size_t errlen);

/* Records put so far. */
uint64_t sink_count(const RecordSink *s);

/*
 * Commit/flush everything put so far and close (LMDB: the last batch and
 * the metadata entry; a file: flush and check; ZeroMQ: the end-of-stream
 * marker, then wait up to linger_ms to deliver). s is freed in every case
 * (NULL is ignored). 0, or -1 with a message.
 */
int sink_close(RecordSink *s, char *err, size_t errlen);
/* For an interrupted run: a ZeroMQ sink is closed at once, without its
 * end-of-stream marker and dropping what is still queued (its receiver
 * reports a sender that ended early); other sinks close as sink_close. */
int sink_close_now(RecordSink *s, char *err, size_t errlen);

typedef struct RecordSource RecordSource;

/*
 * Open a source. where:
 *   STREAM_FILE: a path, or NULL, "" or "-" for stdin;
 *   STREAM_LMDB: a directory written by a sink;
 *   STREAM_ZMQ: an endpoint (stream_endpoint); a PULL that binds by
 *     default. "@tcp://127.0.0.1:*" binds an ephemeral port: see
 *     source_endpoint.
 * opt may be NULL. 0, or -1 with a message.
 */
int source_open(RecordSource **s, StreamKind kind, const char *where,
    const StreamOptions *opt, char *err, size_t errlen);

/*
 * The next record in order into r (buffers reused; see record.h):
 * 1 got one, 0 clean end of stream, -1 error: a truncated or corrupt
 * stream ("<input>: record N: ..."), a ZeroMQ timeout ("no record from
 * <ep> in N s"), a sender that disconnected without its end-of-stream
 * marker. After 0 or -1 every further call returns the same, except a
 * ZeroMQ wait interrupted by a signal: -1 with errno EINTR, not latched.
 */
int source_next(RecordSource *s, Record *r, char *err, size_t errlen);

/* LMDB: the number of records; others: 0 (unknown). */
uint64_t source_count(const RecordSource *s);

/* LMDB only: record i (0 <= i < count) into r, for shuffled epochs.
 * Others, or i out of range: -1 with a message. */
int source_get(RecordSource *s, uint64_t i, Record *r, char *err,
    size_t errlen);

/* LMDB: the metadata JSON (owned by s), or NULL; others: NULL. */
const char *source_meta(const RecordSource *s);

/* A name for messages: the path, directory or endpoint. For a ZeroMQ
 * source that bound, the endpoint actually bound (with its real port). */
const char *source_name(const RecordSource *s);

void source_close(RecordSource *s);

#endif

/*
 * stream: record sinks and sources over a byte stream, LMDB and ZeroMQ
 * (see stream.h; the framing is in man rl-record.5).
 *
 * Every sink packs a record whole into a msgpack_sbuffer before writing
 * anything. A byte-stream source reads with msgpack's streaming unpacker;
 * a ZeroMQ source watches its socket's monitor so that a sender that
 * disconnects without its end-of-stream marker is reported at once rather
 * than after the timeout.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "common/store.h"
#include "common/stream.h"
#include "common/util.h"

#define EP_MAX 512
#define READ_CHUNK ((size_t)1 << 16)
/* Larger than any record this version writes: a length in a corrupt
 * stream is refused here rather than waited for. */
#define RECORD_BYTES_MAX (record_pixel_bytes(RECORD_PATCH_MAX) + ((size_t)16 << 20))
/* After a sender disconnects, how long its queued messages may take to
 * show up before its missing end-of-stream marker is reported. */
#define DISCONNECT_GRACE_MS 500
/* A sink to a regular file writes its records once they reach this size. */
#define FILE_FLUSH_BYTES ((size_t)1 << 20)

struct RecordSink {
	StreamKind kind;
	StreamOptions opt;
	char *name;
	uint64_t count;         /* records put */
	msgpack_sbuffer sb;     /* FILE, LMDB: the pending records; ZeroMQ: one */
	size_t *offs;           /* FILE, LMDB: pending+1 record ends in sb */
	size_t pending, offcap; /* records in sb not yet written; offs' size */
	int failed;             /* FILE: a write failed, records were lost */
	/* FILE */
	int fd, own_fd;
	int regular;            /* fd is a regular file: cut back on error */
	off_t off0;             /* its offset before the pending records */
	/* LMDB */
	Store *st;
	StoreItem *items;
	json_t *meta;
	/* ZeroMQ */
	void *ctx, *sock;
};

struct RecordSource {
	StreamKind kind;
	StreamOptions opt;
	char *name;
	uint64_t n;             /* records returned by source_next */
	int state;              /* 1 open, 0 ended, -1 failed */
	char *msg;              /* the latched error */
	/* FILE */
	FILE *fp;
	int own_fp, eof;
	uint64_t nread;         /* bytes read */
	msgpack_unpacker up;
	msgpack_unpacked res;
	/* LMDB */
	Store *st;
	/* ZeroMQ */
	void *ctx, *sock, *mon;
	int ends, gone, hs_failed;
	zmq_msg_t zm;
};

// ---- options and names

static void
opt_defaults(StreamOptions *o, const StreamOptions *in)
{
	if (in != NULL)
		*o = *in;
	else
		memset(o, 0, sizeof *o);
	if (o->hwm <= 0)
		o->hwm = STREAM_HWM_DEFAULT;
	if (o->timeout_ms == 0)
		o->timeout_ms = STREAM_TIMEOUT_DEFAULT;
	if (o->linger_ms <= 0)
		o->linger_ms = STREAM_LINGER_DEFAULT;
	if (o->expect_ends <= 0)
		o->expect_ends = 1;
	if (o->batch <= 0)
		o->batch = STREAM_BATCH_DEFAULT;
	if (o->mapsize == 0)
		o->mapsize = STORE_MAPSIZE_DEFAULT;
}

static int
is_std(const char *where)
{
	return where == NULL || *where == '\0' || strcmp(where, "-") == 0;
}

int
stream_kind_parse(const char *name, StreamKind *kind)
{
	if (strcmp(name, "file") == 0)
		*kind = STREAM_FILE;
	else if (strcmp(name, "lmdb") == 0)
		*kind = STREAM_LMDB;
	else if (strcmp(name, "zmq") == 0)
		*kind = STREAM_ZMQ;
	else
		return -1;
	return 0;
}

int
stream_endpoint(const char *spec, int dflt_bind, char *ep, size_t eplen,
    int *bind, char *err, size_t errlen)
{
	const char *p = spec;
	size_t n;
	int w;

	*bind = dflt_bind;
	if (*p == '@' || *p == '>')
		*bind = *p++ == '@';
	n = strspn(p, "0123456789");
	if (*p == '\0') {
		snprintf(err, errlen, "empty endpoint '%s'", spec);
		return -1;
	}
	if (strstr(p, "://") != NULL)
		w = snprintf(ep, eplen, "%s", p);
	else if (p[n] == '\0')
		w = snprintf(ep, eplen, "tcp://127.0.0.1:%s", p);
	else if (strchr(p, ':') != NULL)
		w = snprintf(ep, eplen, "tcp://%s", p);
	else {
		snprintf(err, errlen, "endpoint '%s': want a port, host:port "
		    "or transport://address", spec);
		return -1;
	}
	if (w < 0 || (size_t)w >= eplen) {
		snprintf(err, errlen, "endpoint '%s': too long", spec);
		return -1;
	}
	return 0;
}

/* "what: zmq_strerror(errno)" for the endpoint. */
static int
zmq_fail(const char *ep, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", ep, what, zmq_strerror(errno));
	return -1;
}

/* A context and a socket of type, options set, bound or connected to
 * spec; *name is set to the endpoint used (malloc'd). */
static int
zmq_open(void **ctxp, void **sockp, int type, const char *spec, int dflt_bind,
    const StreamOptions *o, char **name, char *err, size_t errlen)
{
	void *ctx, *sock;
	int bind, zero = 0, linger;
	char ep[EP_MAX];
	size_t len, eplen = sizeof ep;

	if (spec == NULL) {
		snprintf(err, errlen, "no ZeroMQ endpoint");
		return -1;
	}
	if (stream_endpoint(spec, dflt_bind, ep, eplen, &bind, err, errlen) == -1)
		return -1;
	if ((ctx = zmq_ctx_new()) == NULL)
		return zmq_fail(ep, "zmq_ctx_new", err, errlen);
	if ((sock = zmq_socket(ctx, type)) == NULL) {
		zmq_fail(ep, "zmq_socket", err, errlen);
		zmq_ctx_term(ctx);
		return -1;
	}
	linger = type == ZMQ_PUSH ? o->linger_ms : 0;
	if (zmq_setsockopt(sock, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM,
	    &o->hwm, sizeof o->hwm) == -1 ||
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) == -1 ||
	    (type == ZMQ_PUSH && o->timeout_ms > 0 && zmq_setsockopt(sock,
	    ZMQ_SNDTIMEO, &o->timeout_ms, sizeof o->timeout_ms) == -1)) {
		zmq_fail(ep, "zmq_setsockopt", err, errlen);
		goto fail;
	}
	if ((bind ? zmq_bind(sock, ep) : zmq_connect(sock, ep)) == -1) {
		zmq_fail(ep, bind ? "bind" : "connect", err, errlen);
		goto fail;
	}
	if (bind) {
		len = eplen;
		if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len) == -1) {
			zmq_fail(ep, "zmq_getsockopt", err, errlen);
			goto fail;
		}
	}
	*ctxp = ctx;
	*sockp = sock;
	*name = estrdup(ep);
	return 0;
fail:
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return -1;
}

/* Close sock (if any) and terminate ctx, retrying on EINTR. */
static void
zmq_end(void *ctx, void *sock, void *mon)
{
	if (mon != NULL)
		zmq_close(mon);
	if (sock != NULL)
		zmq_close(sock);
	if (ctx != NULL)
		while (zmq_ctx_term(ctx) == -1 && errno == EINTR)
			;
}

// ---- sinks

/* The metadata JSON with the count of committed+pending records. */
static char *
meta_text(RecordSink *s, uint64_t count)
{
	if (json_object_set_new(s->meta, "record_version",
	    json_integer(RECORD_VERSION)) == -1 ||
	    json_object_set_new(s->meta, "count",
	    json_integer((json_int_t)count)) == -1)
		return NULL;
	return json_dumps(s->meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* LMDB: commit the pending records with the metadata, one transaction. */
static int
lmdb_flush(RecordSink *s, char *err, size_t errlen)
{
	char *meta;
	size_t i;
	int rc;

	if ((meta = meta_text(s, s->count)) == NULL) {
		snprintf(err, errlen, "%s: cannot build the metadata", s->name);
		return -1;
	}
	for (i = 0; i < s->pending; i++) {
		s->items[i].data = s->sb.data + s->offs[i];
		s->items[i].len = s->offs[i + 1] - s->offs[i];
	}
	rc = store_append(s->st, s->items, s->pending, meta, strlen(meta), err,
	    errlen);
	free(meta);
	if (rc == 0) {
		s->pending = 0;
		msgpack_sbuffer_clear(&s->sb);
	}
	return rc;
}

/*
 * FILE: write the pending records. On a failure (a full disk) a regular
 * file is cut back to the last whole record, so it never ends inside one.
 */
static int
file_flush(RecordSink *s, char *err, size_t errlen)
{
	size_t done = 0, keep;
	ssize_t w;
	int e;

	if (s->failed) {
		snprintf(err, errlen, "%s: an earlier write failed", s->name);
		return -1;
	}
	while (done < s->sb.size) {
		w = write(s->fd, s->sb.data + done, s->sb.size - done);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			break;
		done += (size_t)w;
	}
	if (done == s->sb.size) {
		s->off0 += (off_t)done;
		s->pending = 0;
		msgpack_sbuffer_clear(&s->sb);
		return 0;
	}
	e = errno;
	s->failed = 1;
	for (keep = s->pending; s->offs[keep] > done; keep--)
		;
	if (s->regular && ftruncate(s->fd, s->off0 + (off_t)s->offs[keep]) == 0)
		snprintf(err, errlen, "%s: %s (%llu whole records written)",
		    s->name, strerror(e), (unsigned long long)(s->count -
		    s->pending + keep));
	else
		snprintf(err, errlen, "%s: %s", s->name, strerror(e));
	return -1;
}

int
sink_open(RecordSink **out, StreamKind kind, const char *where,
    const StreamOptions *opt, char *err, size_t errlen)
{
	RecordSink *s = ecalloc(1, sizeof *s);
	struct stat sb;

	opt_defaults(&s->opt, opt);
	s->kind = kind;
	s->fd = -1;
	msgpack_sbuffer_init(&s->sb);
	switch (kind) {
	case STREAM_FILE:
		if (is_std(where)) {
			/* Anything the tool buffered goes first. */
			fflush(stdout);
			s->fd = STDOUT_FILENO;
			s->name = estrdup("<stdout>");
		} else {
			s->name = estrdup(where);
			s->fd = open(where, O_WRONLY | O_CREAT | O_TRUNC, 0666);
			if (s->fd == -1) {
				snprintf(err, errlen, "%s: %s", where,
				    strerror(errno));
				goto fail;
			}
			s->own_fd = 1;
		}
		if (fstat(s->fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (s->off0 = lseek(s->fd, 0, SEEK_CUR)) != -1)
			s->regular = 1;
		s->offcap = 64;
		s->offs = ecalloc(s->offcap, sizeof *s->offs);
		break;
	case STREAM_LMDB:
		s->name = estrdup(where != NULL ? where : "");
		if (store_create(&s->st, s->name, s->opt.mapsize, err,
		    errlen) == -1)
			goto fail;
		s->offcap = (size_t)s->opt.batch + 1;
		s->offs = ecalloc(s->offcap, sizeof *s->offs);
		s->items = ecalloc((size_t)s->opt.batch, sizeof *s->items);
		if ((s->meta = json_object()) == NULL) {
			snprintf(err, errlen, "%s: out of memory", s->name);
			goto fail;
		}
		break;
	case STREAM_ZMQ:
		if (zmq_open(&s->ctx, &s->sock, ZMQ_PUSH, where, 0, &s->opt,
		    &s->name, err, errlen) == -1)
			goto fail;
		break;
	default:
		snprintf(err, errlen, "unknown stream kind %d", (int)kind);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	s->kind = STREAM_FILE;          /* nothing to commit */
	s->own_fd = 0;
	s->fd = -1;
	store_close(s->st);
	s->st = NULL;
	sink_close(s, NULL, 0);
	return -1;
}

int
sink_put(RecordSink *s, const Record *r, char *err, size_t errlen)
{
	char e[256];

	if (s->kind == STREAM_ZMQ)
		msgpack_sbuffer_clear(&s->sb);
	else if (s->failed) {
		snprintf(err, errlen, "%s: an earlier write failed", s->name);
		return -1;
	}
	if (record_pack(r, &s->sb, e, sizeof e) == -1) {
		snprintf(err, errlen, "%s: record %llu: %s", s->name,
		    (unsigned long long)s->count, e);
		return -1;
	}
	switch (s->kind) {
	case STREAM_FILE:
		if (s->pending + 1 == s->offcap) {
			s->offcap *= 2;
			s->offs = erealloc(s->offs, s->offcap * sizeof *s->offs);
		}
		s->offs[++s->pending] = s->sb.size;
		s->count++;
		/* A pipe gets each record at once: a reader may be live. */
		if (!s->regular || s->sb.size >= FILE_FLUSH_BYTES)
			return file_flush(s, err, errlen);
		return 0;
	case STREAM_LMDB:
		s->offs[++s->pending] = s->sb.size;
		if (s->pending == (size_t)s->opt.batch) {
			s->count++;
			if (lmdb_flush(s, err, errlen) == -1) {
				s->count--;
				s->pending--;
				s->sb.size = s->offs[s->pending];
				return -1;
			}
			return 0;
		}
		break;
	case STREAM_ZMQ:
		if (zmq_send(s->sock, s->sb.data, s->sb.size, 0) == -1) {
			int e = errno;

			if (e == EAGAIN)
				snprintf(err, errlen, "%s: no receiver took a "
				    "record in %g s", s->name,
				    s->opt.timeout_ms / 1000.0);
			else
				zmq_fail(s->name, "zmq_send", err, errlen);
			errno = e;
			return -1;
		}
		break;
	}
	s->count++;
	return 0;
}

int
sink_set_meta(RecordSink *s, const char *json, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;

	if ((j = json_loads(json, 0, &je)) == NULL) {
		snprintf(err, errlen, "metadata: %s (line %d)", je.text,
		    je.line);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(err, errlen, "metadata: not a JSON object");
		return -1;
	}
	if (s->kind == STREAM_LMDB) {
		json_decref(s->meta);
		s->meta = j;
	} else
		json_decref(j);
	return 0;
}

uint64_t
sink_count(const RecordSink *s)
{
	return s->count;
}

int
sink_close(RecordSink *s, char *err, size_t errlen)
{
	char dummy[1];
	int rc = 0, t;

	if (s == NULL)
		return 0;
	if (err == NULL) {
		err = dummy;
		errlen = sizeof dummy;
	}
	switch (s->kind) {
	case STREAM_FILE:
		if (s->fd == -1)
			break;
		rc = file_flush(s, err, errlen);
		if (s->own_fd && close(s->fd) == -1 && rc == 0) {
			snprintf(err, errlen, "%s: %s", s->name,
			    strerror(errno));
			rc = -1;
		}
		break;
	case STREAM_LMDB:
		/* Also with no pending record: the metadata gets its count. */
		rc = lmdb_flush(s, err, errlen);
		store_close(s->st);
		break;
	case STREAM_ZMQ:
		/* The marker waits at most linger_ms for room at the HWM. */
		t = s->opt.linger_ms;
		if (zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &t, sizeof t) == -1)
			rc = zmq_fail(s->name, "zmq_setsockopt", err, errlen);
		else if (zmq_send(s->sock, "", 0, 0) == -1) {
			if (errno == EAGAIN)
				snprintf(err, errlen, "%s: no receiver took "
				    "the end of the stream in %g s", s->name,
				    t / 1000.0);
			else
				zmq_fail(s->name, "zmq_send", err, errlen);
			rc = -1;
		}
		zmq_end(s->ctx, s->sock, NULL);
		break;
	}
	msgpack_sbuffer_destroy(&s->sb);
	json_decref(s->meta);
	free(s->offs);
	free(s->items);
	free(s->name);
	free(s);
	return rc;
}

// ---- sources

/* Latch an error: every later source_next returns it again. */
static int
source_fail(RecordSource *s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
source_fail(RecordSource *s, char *err, size_t errlen, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	free(s->msg);
	s->msg = estrdup(buf);
	s->state = -1;
	snprintf(err, errlen, "%s", buf);
	return -1;
}

int
source_open(RecordSource **out, StreamKind kind, const char *where,
    const StreamOptions *opt, char *err, size_t errlen)
{
	RecordSource *s = ecalloc(1, sizeof *s);

	opt_defaults(&s->opt, opt);
	s->kind = kind;
	s->state = 1;
	switch (kind) {
	case STREAM_FILE:
		if (is_std(where)) {
			s->fp = stdin;
			s->name = estrdup("<stdin>");
		} else {
			s->name = estrdup(where);
			if ((s->fp = fopen(where, "rb")) == NULL) {
				snprintf(err, errlen, "%s: %s", where,
				    strerror(errno));
				goto fail;
			}
			s->own_fp = 1;
		}
		if (!msgpack_unpacker_init(&s->up, READ_CHUNK)) {
			snprintf(err, errlen, "%s: out of memory", s->name);
			goto fail;
		}
		msgpack_unpacked_init(&s->res);
		break;
	case STREAM_LMDB:
		s->name = estrdup(where != NULL ? where : "");
		if (store_open(&s->st, s->name, err, errlen) == -1)
			goto fail;
		break;
	case STREAM_ZMQ:
		if (zmq_open(&s->ctx, &s->sock, ZMQ_PULL, where, 1, &s->opt,
		    &s->name, err, errlen) == -1)
			goto fail;
		/* Watch connections, to notice a sender that vanishes. */
		if (zmq_socket_monitor(s->sock, "inproc://rl-stream-monitor",
		    ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
		    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == -1 ||
		    (s->mon = zmq_socket(s->ctx, ZMQ_PAIR)) == NULL ||
		    zmq_connect(s->mon, "inproc://rl-stream-monitor") == -1) {
			zmq_fail(s->name, "socket monitor", err, errlen);
			goto fail;
		}
		zmq_msg_init(&s->zm);
		break;
	default:
		snprintf(err, errlen, "unknown stream kind %d", (int)kind);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (kind == STREAM_FILE && s->fp != NULL) {
		msgpack_unpacker_destroy(&s->up);
		if (s->own_fp)
			fclose(s->fp);
	}
	zmq_end(s->ctx, s->sock, s->mon);
	free(s->name);
	free(s);
	return -1;
}

static int
file_next(RecordSource *s, Record *r, char *err, size_t errlen)
{
	char e[256];
	size_t n;
	int rc;

	for (;;) {
		// a record is framed by its headers (record.h) before msgpack
		// parses it: msgpack reserves whatever a header claims
		size_t avail = s->up.used - s->up.off;
		ptrdiff_t fr = avail == 0 ? 0 : record_frame(s->up.buffer +
		    s->up.off, avail, e, sizeof e);

		if (fr < 0)
			return source_fail(s, err, errlen, "%s: record %llu at "
			    "byte %llu: %s", s->name, (unsigned long long)s->n,
			    (unsigned long long)(s->nread - avail), e);
		rc = fr > 0 ? msgpack_unpacker_next(&s->up, &s->res) :
		    MSGPACK_UNPACK_CONTINUE;
		if (rc == MSGPACK_UNPACK_SUCCESS) {
			if (record_unpack(&s->res.data, r, e, sizeof e) == -1)
				return source_fail(s, err, errlen,
				    "%s: record %llu: %s", s->name,
				    (unsigned long long)s->n, e);
			return 1;
		}
		if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
			return source_fail(s, err, errlen, "%s: record %llu: "
			    "out of memory", s->name, (unsigned long long)s->n);
		if (rc != MSGPACK_UNPACK_CONTINUE)
			return source_fail(s, err, errlen, "%s: record %llu at "
			    "byte %llu: not msgpack (corrupt stream)", s->name,
			    (unsigned long long)s->n, (unsigned long long)
			    (s->nread - msgpack_unpacker_message_size(&s->up)));
		n = msgpack_unpacker_message_size(&s->up);
		if (s->eof) {
			if (n == 0)
				return 0;
			return source_fail(s, err, errlen, "%s: record %llu at "
			    "byte %llu: truncated (the stream ends inside it)",
			    s->name, (unsigned long long)s->n,
			    (unsigned long long)(s->nread - n));
		}
		if (n > RECORD_BYTES_MAX)
			return source_fail(s, err, errlen, "%s: record %llu at "
			    "byte %llu: over %zu bytes (corrupt stream)",
			    s->name, (unsigned long long)s->n,
			    (unsigned long long)(s->nread - n),
			    (size_t)RECORD_BYTES_MAX);
		if (!msgpack_unpacker_reserve_buffer(&s->up, READ_CHUNK))
			return source_fail(s, err, errlen, "%s: out of memory",
			    s->name);
		n = fread(msgpack_unpacker_buffer(&s->up), 1,
		    msgpack_unpacker_buffer_capacity(&s->up), s->fp);
		msgpack_unpacker_buffer_consumed(&s->up, n);
		s->nread += n;
		if (n == 0) {
			if (ferror(s->fp))
				return source_fail(s, err, errlen, "%s: %s",
				    s->name, strerror(errno));
			s->eof = 1;
		}
	}
}

/* Read one monitor event and count it. */
static int
monitor_event(RecordSource *s, char *err, size_t errlen)
{
	unsigned char ev[6];
	uint16_t id;
	zmq_msg_t m;
	int more;
	size_t len = sizeof more;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s->mon, 0) == -1) {
		zmq_msg_close(&m);
		return zmq_fail(s->name, "monitor", err, errlen);
	}
	if (zmq_msg_size(&m) >= sizeof ev) {
		memcpy(ev, zmq_msg_data(&m), sizeof ev);
		memcpy(&id, ev, sizeof id);
		if (id == ZMQ_EVENT_DISCONNECTED)
			s->gone++;
		else
			s->hs_failed++;
	}
	/* Drop the event's second frame (the endpoint). */
	while (zmq_getsockopt(s->mon, ZMQ_RCVMORE, &more, &len) == 0 && more) {
		if (zmq_msg_recv(&m, s->mon, 0) == -1)
			break;
	}
	zmq_msg_close(&m);
	return 0;
}

static int
zmq_next(RecordSource *s, Record *r, char *err, size_t errlen)
{
	zmq_pollitem_t it[2];
	double deadline, left;
	long wait;
	char e[256];
	int n;

	deadline = now_seconds() + s->opt.timeout_ms / 1000.0;
	for (;;) {
		/* Disconnections of peers that had completed their handshake
		 * and sent no end-of-stream marker: senders that died. */
		int lost = s->gone - s->hs_failed - s->ends;

		left = (deadline - now_seconds()) * 1000.0;
		wait = s->opt.timeout_ms < 0 ? -1 : left > 0 ? (long)left : 0;
		if (lost > 0 && (wait < 0 || wait > DISCONNECT_GRACE_MS))
			wait = DISCONNECT_GRACE_MS;
		it[0] = (zmq_pollitem_t){ .socket = s->sock, .events = ZMQ_POLLIN };
		it[1] = (zmq_pollitem_t){ .socket = s->mon, .events = ZMQ_POLLIN };
		if ((n = zmq_poll(it, 2, wait)) == -1) {
			if (errno == EINTR) {
				snprintf(err, errlen, "%s: interrupted",
				    s->name);
				errno = EINTR;
				return -1;
			}
			return source_fail(s, err, errlen, "%s: zmq_poll: %s",
			    s->name, zmq_strerror(errno));
		}
		if (it[0].revents & ZMQ_POLLIN) {
			if (zmq_msg_recv(&s->zm, s->sock, 0) == -1)
				return source_fail(s, err, errlen, "%s: "
				    "zmq_msg_recv: %s", s->name,
				    zmq_strerror(errno));
			if (zmq_msg_size(&s->zm) == 0) {
				if (++s->ends >= s->opt.expect_ends)
					return 0;
				continue;
			}
			if (record_decode(zmq_msg_data(&s->zm),
			    zmq_msg_size(&s->zm), r, e, sizeof e) == -1)
				return source_fail(s, err, errlen, "%s: record "
				    "%llu: %s", s->name,
				    (unsigned long long)s->n, e);
			return 1;
		}
		if (it[1].revents & ZMQ_POLLIN) {
			if (monitor_event(s, e, sizeof e) == -1)
				return source_fail(s, err, errlen, "%s", e);
			continue;
		}
		if (n == 0 && lost > 0)
			return source_fail(s, err, errlen, "%s: a sender "
			    "disconnected without ending its stream (%d of %d "
			    "ended; %llu records received)", s->name, s->ends,
			    s->opt.expect_ends, (unsigned long long)s->n);
		if (n == 0 && s->opt.timeout_ms >= 0 && now_seconds() >= deadline)
			return source_fail(s, err, errlen, "no record from %s in "
			    "%g s (%d of %d senders ended; %llu records "
			    "received)", s->name,
			    s->opt.timeout_ms / 1000.0, s->ends,
			    s->opt.expect_ends, (unsigned long long)s->n);
	}
}

int
source_next(RecordSource *s, Record *r, char *err, size_t errlen)
{
	const void *data;
	size_t len;
	int rc;

	if (s->state != 1) {
		if (s->state == -1)
			snprintf(err, errlen, "%s", s->msg);
		return s->state;
	}
	switch (s->kind) {
	case STREAM_FILE:
		rc = file_next(s, r, err, errlen);
		break;
	case STREAM_LMDB:
		if (s->n == store_count(s->st))
			rc = 0;
		else if (store_get(s->st, s->n, &data, &len, err, errlen) == -1)
			rc = source_fail(s, err, errlen, "%s", err);
		else if (record_decode(data, len, r, err, errlen) == -1)
			rc = source_fail(s, err, errlen, "%s: record %llu: %s",
			    s->name, (unsigned long long)s->n, err);
		else
			rc = 1;
		break;
	case STREAM_ZMQ:
		rc = zmq_next(s, r, err, errlen);
		break;
	default:
		rc = source_fail(s, err, errlen, "bad stream kind");
	}
	if (rc == 1)
		s->n++;
	else if (rc == 0)
		s->state = 0;
	return rc;
}

uint64_t
source_count(const RecordSource *s)
{
	return s->kind == STREAM_LMDB ? store_count(s->st) : 0;
}

int
source_get(RecordSource *s, uint64_t i, Record *r, char *err, size_t errlen)
{
	const void *data;
	size_t len;
	char e[256];

	if (s->kind != STREAM_LMDB) {
		snprintf(err, errlen, "%s: random access needs an LMDB store",
		    s->name);
		return -1;
	}
	if (store_get(s->st, i, &data, &len, err, errlen) == -1)
		return -1;
	if (record_decode(data, len, r, e, sizeof e) == -1) {
		snprintf(err, errlen, "%s: record %llu: %s", s->name,
		    (unsigned long long)i, e);
		return -1;
	}
	return 0;
}

const char *
source_meta(const RecordSource *s)
{
	return s->kind == STREAM_LMDB ? store_meta(s->st) : NULL;
}

const char *
source_name(const RecordSource *s)
{
	return s->name;
}

void
source_close(RecordSource *s)
{
	if (s == NULL)
		return;
	switch (s->kind) {
	case STREAM_FILE:
		msgpack_unpacked_destroy(&s->res);
		msgpack_unpacker_destroy(&s->up);
		if (s->own_fp)
			fclose(s->fp);
		break;
	case STREAM_LMDB:
		store_close(s->st);
		break;
	case STREAM_ZMQ:
		zmq_msg_close(&s->zm);
		zmq_end(s->ctx, s->sock, s->mon);
		break;
	}
	free(s->msg);
	free(s->name);
	free(s);
}

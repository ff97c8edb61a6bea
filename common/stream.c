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
#define _DEFAULT_SOURCE         /* explicit_bzero */
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "common/curve.h"
#include "common/store.h"
#include "common/stream.h"
#include "common/util.h"

#define EP_MAX 512
#define READ_CHUNK ((size_t)1 << 16)
/* After a sender disconnects, how long its queued messages may take to
 * show up before its missing end-of-stream marker is reported. */
#define DISCONNECT_GRACE_MS 500
/* A sink to a regular file writes its records once they reach this size. */
#define FILE_FLUSH_BYTES ((size_t)1 << 20)
/* The ZAP handler's endpoint (ZeroMQ RFC 27), and the domain that makes
 * libzmq ask it about every connection, NULL mechanism included. */
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "relloc"
/* Refused CURVE handshakes warned about; later ones are only counted. */
#define REFUSED_WARN_MAX 3

/* A connection to a ZeroMQ source, as its ZAP handler admitted it. */
typedef struct {
	char name[CURVE_NAME_MAX + 96];  /* "sender N (address, key name)" */
	uint64_t records;       /* valid records it sent */
	int ended;              /* it sent its end-of-stream marker */
} Peer;

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
	void *ctx, *sock, *mon;
	int hs_ok, hs_failed;   /* handshakes with receivers */
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
	void *ctx, *sock, *mon, *zap;
	int ends, gone, hs_failed, hs_ok;
	zmq_msg_t zm;
	CurveKey *allow;        /* the senders' keys, with CURVE */
	size_t nallow;
	/* The ZAP handler's thread appends to peers under lock; the
	 * reader updates a Peer's counts (only it touches them). */
	pthread_t zap_thread;
	int zap_started;
	pthread_mutex_t lock;
	Peer **peers;           /* by ZAP user id */
	size_t npeers;
	Peer anon;              /* a message without a user id */
	long bad;               /* bad frames skipped */
	uint64_t active;        /* peers that sent records and no marker */
	unsigned long refused;  /* CURVE handshakes refused */
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
	if (o->bad_max == 0)
		o->bad_max = STREAM_BAD_MAX_DEFAULT;
	else if (o->bad_max < 0)
		o->bad_max = 0;
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

static int
is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *s6;

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return 0;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
	    s6->sin6_addr.s6_addr[12] == 127;
}

/*
 * A TCP endpoint's host: is it loopback only, and, for a bind, the
 * address it resolves to (libzmq binds only addresses, '*' and interface
 * names: "tcp://localhost:N" gave "No such device"). ep is rewritten with
 * the address; *ipv6 is set when it is an IPv6 one. Other transports
 * (ipc, inproc) are local. 0, or -1 with a message.
 */
static int
tcp_host(char *ep, size_t eplen, int bind, int *loopback, int *ipv6,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *a, *pick = NULL;
	char host[256], addr[INET6_ADDRSTRLEN], *h, *colon;
	const char *port;
	size_t n;
	int rc, all_lo = 1;

	*ipv6 = 0;
	*loopback = strncmp(ep, "ipc://", 6) == 0 ||
	    strncmp(ep, "inproc://", 9) == 0;
	if (strncmp(ep, "tcp://", 6) != 0)
		return 0;
	h = ep + 6;
	if (!bind && strchr(h, ';') != NULL)    /* source;destination */
		h = strchr(h, ';') + 1;
	if ((colon = strrchr(h, ':')) == NULL) {
		snprintf(err, errlen, "%s: no port", ep);
		return -1;
	}
	port = colon + 1;
	n = (size_t)(colon - h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof host) {
		snprintf(err, errlen, "%s: bad host", ep);
		return -1;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcmp(host, "*") == 0)
		return 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		/* libzmq also binds to an interface by its name. */
		if (bind && if_nametoindex(host) != 0) {
			*loopback = strcmp(host, "lo") == 0;
			return 0;
		}
		snprintf(err, errlen, "%s: host '%s': %s", ep, host,
		    gai_strerror(rc));
		return -1;
	}
	for (a = res; a != NULL; a = a->ai_next) {
		all_lo &= is_loopback(a->ai_addr);
		if (pick == NULL || (pick->ai_family != AF_INET &&
		    a->ai_family == AF_INET))
			pick = a;
	}
	*loopback = all_lo;
	if (bind) {
		*loopback = is_loopback(pick->ai_addr);
		*ipv6 = pick->ai_family == AF_INET6;
		if (getnameinfo(pick->ai_addr, pick->ai_addrlen, addr,
		    sizeof addr, NULL, 0, NI_NUMERICHOST) != 0) {
			snprintf(err, errlen, "%s: host '%s': no address", ep,
			    host);
			freeaddrinfo(res);
			return -1;
		}
		if (snprintf(host, sizeof host, "%s", port) < 0 ||
		    snprintf(ep, eplen, *ipv6 ? "tcp://[%s]:%s" :
		    "tcp://%s:%s", addr, host) >= (int)eplen) {
			snprintf(err, errlen, "endpoint too long");
			freeaddrinfo(res);
			return -1;
		}
	}
	freeaddrinfo(res);
	return 0;
}

/* Set a CURVE key option from its Z85 text. */
static int
set_key(void *sock, int opt, const char *z85)
{
	return zmq_setsockopt(sock, opt, z85, CURVE_Z85_LEN + 1);
}

/*
 * The security of a socket of type: CURVE from the option's key files (a
 * PULL is the CURVE server and keeps the allowed keys, a PUSH a client of
 * the receiver's key), or none, which a non-loopback endpoint must be
 * allowed by insecure.
 */
static int
zmq_security(void *sock, int type, const char *ep, int loopback,
    const StreamOptions *o, CurveKey **allow, size_t *nallow, char *err,
    size_t errlen)
{
	char sec[CURVE_Z85_LEN + 1], pub[CURVE_Z85_LEN + 1];
	const char *peers = type == ZMQ_PULL ? o->allow_file : o->peer_file;
	CurveKey *k = NULL;
	size_t nk = 0;
	int one = 1, rc;

	if (o->key_file == NULL) {
		if (peers != NULL) {
			snprintf(err, errlen, "%s: %s needs this end's secret "
			    "key too", ep, peers);
			return -1;
		}
		if (!loopback && !o->insecure) {
			snprintf(err, errlen, "%s: not a loopback address and "
			    "no CURVE keys: anyone who reaches it could %s "
			    "records; give keys (rl-keygen(1)) or --insecure",
			    ep, type == ZMQ_PULL ? "send" : "read");
			return -1;
		}
		return 0;
	}
	if (!curve_available()) {
		snprintf(err, errlen, "%s: this libzmq has no CURVE security",
		    ep);
		return -1;
	}
	if (peers == NULL) {
		snprintf(err, errlen, "%s: with a key, %s", ep, type ==
		    ZMQ_PULL ? "the allowed senders' public keys are needed" :
		    "the receiver's public key is needed");
		return -1;
	}
	if (curve_read_secret(o->key_file, sec, pub, err, errlen) == -1 ||
	    curve_read_public(peers, &k, &nk, err, errlen) == -1)
		return -1;
	if (type == ZMQ_PULL)
		rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
		    set_key(sock, ZMQ_CURVE_SECRETKEY, sec);
	else
		rc = set_key(sock, ZMQ_CURVE_SERVERKEY, k[0].z85) ||
		    set_key(sock, ZMQ_CURVE_PUBLICKEY, pub) ||
		    set_key(sock, ZMQ_CURVE_SECRETKEY, sec);
	explicit_bzero(sec, sizeof sec);
	if (rc != 0) {
		free(k);
		return zmq_fail(ep, "CURVE keys", err, errlen);
	}
	if (type == ZMQ_PULL) {
		*allow = k;
		*nallow = nk;
	} else
		free(k);
	return 0;
}

/* A PAIR socket *mon that gets sock's events (those in the mask). */
static int
monitor_open(void *ctx, void *sock, int events, void **mon, const char *name,
    char *err, size_t errlen)
{
	static const char ep[] = "inproc://rl-stream-monitor";

	if (zmq_socket_monitor(sock, ep, events) == -1 ||
	    (*mon = zmq_socket(ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(*mon, ep) == -1)
		return zmq_fail(name, "socket monitor", err, errlen);
	return 0;
}

/*
 * A context and a socket of type, options set, bound or connected to
 * spec; *name is set to the endpoint used (malloc'd). The socket's events
 * in the mask go to the monitor socket *mon, opened before the bind or
 * connect so that no early handshake is missed. A PULL also gets its ZAP
 * handler's socket in *zap and, with CURVE, the allowed keys.
 */
static int
zmq_open(void **ctxp, void **sockp, void **mon, int events, int type,
    const char *spec, int dflt_bind, const StreamOptions *o, char **name,
    void **zap, CurveKey **allow, size_t *nallow, char *err, size_t errlen)
{
	void *ctx, *sock, *zs = NULL;
	int bind, zero = 0, linger, loopback, ipv6;
	int64_t maxmsg = (int64_t)RECORD_BYTES_MAX;
	char ep[EP_MAX];
	size_t len, eplen = sizeof ep;

	*mon = NULL;
	if (spec == NULL) {
		snprintf(err, errlen, "no ZeroMQ endpoint");
		return -1;
	}
	if (stream_endpoint(spec, dflt_bind, ep, eplen, &bind, err, errlen) == -1)
		return -1;
	if (tcp_host(ep, eplen, bind, &loopback, &ipv6, err, errlen) == -1)
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
	    zmq_setsockopt(sock, ZMQ_IPV6, &ipv6, sizeof ipv6) == -1 ||
	    (type == ZMQ_PUSH && o->timeout_ms > 0 && zmq_setsockopt(sock,
	    ZMQ_SNDTIMEO, &o->timeout_ms, sizeof o->timeout_ms) == -1) ||
	    (type == ZMQ_PULL && (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof maxmsg) == -1 || zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN,
	    ZAP_DOMAIN, strlen(ZAP_DOMAIN)) == -1))) {
		zmq_fail(ep, "zmq_setsockopt", err, errlen);
		goto fail;
	}
	if (zmq_security(sock, type, ep, loopback, o, allow, nallow, err,
	    errlen) == -1)
		goto fail;
	/* The ZAP handler is there before the first connection. */
	if (type == ZMQ_PULL && ((zs = zmq_socket(ctx, ZMQ_REP)) == NULL ||
	    zmq_setsockopt(zs, ZMQ_LINGER, &zero, sizeof zero) == -1 ||
	    zmq_bind(zs, ZAP_ENDPOINT) == -1)) {
		zmq_fail(ep, "ZAP handler", err, errlen);
		goto fail;
	}
	if (monitor_open(ctx, sock, events, mon, ep, err, errlen) == -1)
		goto fail;
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
	if (zap != NULL)
		*zap = zs;
	*name = estrdup(ep);
	return 0;
fail:
	if (allow != NULL) {
		free(*allow);
		*allow = NULL;
	}
	if (zs != NULL)
		zmq_close(zs);
	if (*mon != NULL)
		zmq_close(*mon);
	*mon = NULL;
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return -1;
}

/* Close sock (if any) and terminate ctx, retrying on EINTR. */
static void
zmq_end(void *ctx, void *sock, void *mon, void *zap)
{
	if (zap != NULL)
		zmq_close(zap);
	if (mon != NULL)
		zmq_close(mon);
	if (sock != NULL)
		zmq_close(sock);
	if (ctx != NULL)
		while (zmq_ctx_term(ctx) == -1 && errno == EINTR)
			;
}

/* Read one monitor event: its id in *id (0 if malformed). */
static int
monitor_read(void *mon, const char *name, int *id, char *err, size_t errlen)
{
	uint16_t v;
	zmq_msg_t m;
	int more;
	size_t len = sizeof more;

	*id = 0;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, mon, 0) == -1) {
		zmq_msg_close(&m);
		return zmq_fail(name, "monitor", err, errlen);
	}
	if (zmq_msg_size(&m) >= 6) {
		memcpy(&v, zmq_msg_data(&m), sizeof v);
		*id = v;
	}
	/* Drop the event's second frame (the endpoint). */
	while (zmq_getsockopt(mon, ZMQ_RCVMORE, &more, &len) == 0 && more) {
		if (zmq_msg_recv(&m, mon, 0) == -1)
			break;
	}
	zmq_msg_close(&m);
	return 0;
}

#define HANDSHAKE_FAILED (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
	ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

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

/* Read the sink's monitor events that are there, or wait up to wait_ms
 * for one; -1 (with a message) once a receiver refused its handshake
 * and none accepted it. */
static int
zmq_events(RecordSink *s, long wait_ms, char *err, size_t errlen)
{
	zmq_pollitem_t it = { .socket = s->mon, .events = ZMQ_POLLIN };
	int id, n;

	while ((n = zmq_poll(&it, 1, wait_ms)) > 0) {
		if (monitor_read(s->mon, s->name, &id, err, errlen) == -1)
			return -1;
		if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			s->hs_ok++;
		else if (id != 0)
			s->hs_failed++;
		wait_ms = 0;
	}
	if (n == -1 && errno == EINTR) {
		snprintf(err, errlen, "%s: interrupted", s->name);
		return -1;
	}
	if (s->hs_ok == 0 && s->hs_failed > 0) {
		snprintf(err, errlen, "%s: the receiver refused the handshake "
		    "(a wrong CURVE key, keys on one side only, or not a "
		    "record receiver)", s->name);
		errno = EACCES;
		return -1;
	}
	return 0;
}

/*
 * Send one message, waiting up to timeout_ms (<= 0: for ever) for room
 * at the high-water mark, and watching for a receiver that refuses this
 * sender. -1 with a message; errno EINTR when a signal came.
 */
static int
zmq_put(RecordSink *s, const void *data, size_t len, int timeout_ms,
    const char *what, char *err, size_t errlen)
{
	zmq_pollitem_t it[2];
	double deadline = now_seconds() + timeout_ms / 1000.0, left;
	int n;

	for (;;) {
		if (s->hs_ok == 0 && zmq_events(s, 0, err, errlen) == -1)
			return -1;
		if (zmq_send(s->sock, data, len, ZMQ_DONTWAIT) != -1)
			return 0;
		if (errno != EAGAIN)
			break;
		left = (deadline - now_seconds()) * 1000.0;
		if (timeout_ms > 0 && left <= 0) {
			snprintf(err, errlen, "%s: no receiver took %s in %g s",
			    s->name, what, timeout_ms / 1000.0);
			errno = EAGAIN;
			return -1;
		}
		it[0] = (zmq_pollitem_t){ .socket = s->sock, .events = ZMQ_POLLOUT };
		it[1] = (zmq_pollitem_t){ .socket = s->mon, .events = ZMQ_POLLIN };
		n = zmq_poll(it, s->hs_ok == 0 ? 2 : 1, timeout_ms > 0 ?
		    (long)left + 1 : -1);
		if (n == -1)
			break;
	}
	n = errno;
	if (n == EINTR)
		snprintf(err, errlen, "%s: interrupted", s->name);
	else
		zmq_fail(s->name, "zmq_send", err, errlen);
	errno = n;
	return -1;
}

/* Before closing: wait up to wait_ms for a receiver to accept this sender,
 * so that one that refused it, or none at all, is reported. */
static int
zmq_accepted(RecordSink *s, int wait_ms, char *err, size_t errlen)
{
	double deadline = now_seconds() + wait_ms / 1000.0, left;

	while (s->hs_ok == 0) {
		left = (deadline - now_seconds()) * 1000.0;
		if (left <= 0) {
			snprintf(err, errlen, "%s: no receiver connected in "
			    "%g s", s->name, wait_ms / 1000.0);
			return -1;
		}
		if (zmq_events(s, (long)left + 1, err, errlen) == -1)
			return -1;
	}
	return 0;
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
		/* Watch handshakes, to report a receiver that refuses us. */
		if (zmq_open(&s->ctx, &s->sock, &s->mon,
		    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED, ZMQ_PUSH,
		    where, 0, &s->opt, &s->name, NULL, NULL, NULL, err,
		    errlen) == -1)
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
		if (zmq_put(s, s->sb.data, s->sb.size, s->opt.timeout_ms,
		    "a record", err, errlen) == -1)
			return -1;
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

/* The sink's memory, once its file, store or socket is closed. */
static void
sink_free(RecordSink *s)
{
	msgpack_sbuffer_destroy(&s->sb);
	json_decref(s->meta);
	free(s->offs);
	free(s->items);
	free(s->name);
	free(s);
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
		/* The marker waits at most linger_ms for room at the HWM,
		 * and for a receiver to have accepted this sender. */
		t = s->opt.linger_ms;
		rc = zmq_put(s, "", 0, t, "the end of the stream", err,
		    errlen);
		if (rc == 0)
			rc = zmq_accepted(s, t, err, errlen);
		/* Undeliverable (refused, or interrupted): do not linger. */
		t = 0;
		if (rc == -1)
			zmq_setsockopt(s->sock, ZMQ_LINGER, &t, sizeof t);
		zmq_end(s->ctx, s->sock, s->mon, NULL);
		break;
	}
	sink_free(s);
	return rc;
}

int
sink_close_now(RecordSink *s, char *err, size_t errlen)
{
	int zero = 0;

	if (s == NULL || s->kind != STREAM_ZMQ)
		return sink_close(s, err, errlen);
	zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
	zmq_end(s->ctx, s->sock, s->mon, NULL);
	sink_free(s);
	return 0;
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

/*
 * Answer one ZAP request (ZeroMQ RFC 27): admit a NULL-mechanism peer (the
 * endpoint was allowed when it was opened) or a CURVE peer whose key is
 * allowed, and give each admitted connection a user id, its index in
 * s->peers, which its messages then carry. 0, -1 with a message, or -2
 * once the context is ending.
 */
static int
zap_serve(RecordSource *s, char *err, size_t errlen)
{
	enum { VERSION, REQID, DOMAIN, ADDRESS, ROUTING, MECH, CRED, NF };
	zmq_msg_t f[NF], extra;
	char addr[64], uid[32];
	const char *status = "400", *text = "unknown key";
	const CurveKey *key = NULL;
	size_t i, n = 0, len;
	int more = 1, ok = 0;
	Peer *p;

	for (i = 0; i < NF; i++)
		zmq_msg_init(&f[i]);
	while (more) {
		zmq_msg_t *m = n < NF ? &f[n] : &extra;

		if (m == &extra)
			zmq_msg_init(&extra);
		if (zmq_msg_recv(m, s->zap, 0) == -1) {
			if (m == &extra)
				zmq_msg_close(&extra);
			if (errno == ETERM)
				more = -2;
			else
				zmq_fail(s->name, "ZAP request", err, errlen);
			break;
		}
		more = zmq_msg_more(m);
		if (m == &extra)
			zmq_msg_close(&extra);
		n++;
	}
	if (more != 0)
		goto out;
	len = n > ADDRESS ? RL_MIN(zmq_msg_size(&f[ADDRESS]), sizeof addr - 1) : 0;
	if (len > 0)
		memcpy(addr, zmq_msg_data(&f[ADDRESS]), len);
	addr[len] = '\0';
	if (n > MECH && zmq_msg_size(&f[MECH]) == 4 &&
	    memcmp(zmq_msg_data(&f[MECH]), "NULL", 4) == 0 && s->nallow == 0)
		ok = 1;
	else if (n > CRED && zmq_msg_size(&f[MECH]) == 5 &&
	    memcmp(zmq_msg_data(&f[MECH]), "CURVE", 5) == 0 &&
	    zmq_msg_size(&f[CRED]) == 32) {
		for (i = 0; i < s->nallow && key == NULL; i++)
			if (memcmp(s->allow[i].raw, zmq_msg_data(&f[CRED]), 32)
			    == 0)
				key = &s->allow[i];
		ok = key != NULL;
	}
	if (ok) {
		p = ecalloc(1, sizeof *p);
		pthread_mutex_lock(&s->lock);
		if (key == NULL)
			snprintf(p->name, sizeof p->name, "sender %zu (%s)",
			    s->npeers + 1, addr);
		else
			snprintf(p->name, sizeof p->name, "sender %zu (%s, "
			    "key %s)", s->npeers + 1, addr, *key->name ?
			    key->name : key->z85);
		s->peers = erealloc(s->peers, (s->npeers + 1) * sizeof *s->peers);
		s->peers[s->npeers] = p;
		snprintf(uid, sizeof uid, "%zu", s->npeers++);
		pthread_mutex_unlock(&s->lock);
		status = "200";
		text = "OK";
	} else {
		uid[0] = '\0';
		if (++s->refused <= REFUSED_WARN_MAX)
			warnx("%s: refused a sender at %s: its key is not "
			    "among the allowed ones%s", s->name, addr,
			    s->refused == REFUSED_WARN_MAX ? " (further "
			    "refusals are not shown)" : "");
	}
	if (zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE) == -1 ||
	    zmq_send(s->zap, n > REQID ? zmq_msg_data(&f[REQID]) : "",
	    n > REQID ? zmq_msg_size(&f[REQID]) : 0, ZMQ_SNDMORE) == -1 ||
	    zmq_send(s->zap, status, 3, ZMQ_SNDMORE) == -1 ||
	    zmq_send(s->zap, text, strlen(text), ZMQ_SNDMORE) == -1 ||
	    zmq_send(s->zap, uid, strlen(uid), ZMQ_SNDMORE) == -1 ||
	    zmq_send(s->zap, "", 0, 0) == -1)
		zmq_fail(s->name, "ZAP reply", err, errlen);
	else
		more = -1;
out:
	for (i = 0; i < NF; i++)
		zmq_msg_close(&f[i]);
	return more == -1 ? 0 : more == -2 ? -2 : -1;
}

/* The peer that sent s->zm, by the user id its ZAP reply gave it. */
static Peer *
msg_peer(RecordSource *s)
{
	const char *uid = zmq_msg_gets(&s->zm, "User-Id");
	char *end;
	unsigned long i;
	Peer *p = &s->anon;

	if (uid == NULL || *uid == '\0')
		return p;
	i = strtoul(uid, &end, 10);
	pthread_mutex_lock(&s->lock);
	if (*end == '\0' && i < s->npeers)
		p = s->peers[i];
	pthread_mutex_unlock(&s->lock);
	return p;
}

/* The ZAP handler's thread: it answers until the context ends. */
static void *
zap_main(void *arg)
{
	RecordSource *s = arg;
	char e[256];
	int zero = 0, rc;

	while ((rc = zap_serve(s, e, sizeof e)) == 0)
		;
	if (rc == -1)
		warnx("%s", e);
	zmq_setsockopt(s->zap, ZMQ_LINGER, &zero, sizeof zero);
	zmq_close(s->zap);
	return NULL;
}

/* Start the ZAP thread, with every signal blocked in it. */
static int
zap_start(RecordSource *s, char *err, size_t errlen)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->zap_thread, NULL, zap_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "%s: ZAP thread: %s", s->name,
		    strerror(rc));
		return -1;
	}
	s->zap_started = 1;
	return 0;
}

/* Close the sockets, end the ZAP thread and the context. */
static void
zmq_source_end(RecordSource *s)
{
	size_t i;

	if (s->mon != NULL)
		zmq_close(s->mon);
	if (s->sock != NULL)
		zmq_close(s->sock);
	if (s->zap_started) {
		zmq_ctx_shutdown(s->ctx);
		pthread_join(s->zap_thread, NULL);
		s->zap = NULL;
	}
	zmq_end(s->ctx, NULL, NULL, s->zap);
	for (i = 0; i < s->npeers; i++)
		free(s->peers[i]);
	free(s->peers);
	free(s->allow);
}

int
source_open(RecordSource **out, StreamKind kind, const char *where,
    const StreamOptions *opt, char *err, size_t errlen)
{
	RecordSource *s = ecalloc(1, sizeof *s);

	opt_defaults(&s->opt, opt);
	s->kind = kind;
	s->state = 1;
	pthread_mutex_init(&s->lock, NULL);
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
		/* Watch connections, to notice a sender that vanishes. */
		if (zmq_open(&s->ctx, &s->sock, &s->mon, ZMQ_EVENT_DISCONNECTED |
		    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED, ZMQ_PULL,
		    where, 1, &s->opt, &s->name, &s->zap, &s->allow, &s->nallow,
		    err, errlen) == -1)
			goto fail;
		snprintf(s->anon.name, sizeof s->anon.name, "a sender "
		    "without a name");
		if (zap_start(s, err, errlen) == -1)
			goto fail;
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
	if (kind == STREAM_ZMQ)
		zmq_source_end(s);
	pthread_mutex_destroy(&s->lock);
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
	int id;

	if (monitor_read(s->mon, s->name, &id, err, errlen) == -1)
		return -1;
	if (id == ZMQ_EVENT_DISCONNECTED)
		s->gone++;
	else if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
		s->hs_ok++;
	else if (id != 0)
		s->hs_failed++;
	return 0;
}

/*
 * A bad frame from peer p: skipped with a warning, unless it is one more
 * than bad_max: then the source fails. 0 or -1.
 */
static int
bad_frame(RecordSource *s, const Peer *p, const char *why, char *err,
    size_t errlen)
{
	if (++s->bad > s->opt.bad_max)
		return source_fail(s, err, errlen, "%s: %s: %s; %ld bad "
		    "frames, more than the %ld allowed", s->name, p->name, why,
		    s->bad, s->opt.bad_max);
	warnx("%s: %s: %s; skipped (bad frame %ld, at most %ld allowed)",
	    s->name, p->name, why, s->bad, s->opt.bad_max);
	return 0;
}

/* One message from the socket: 1 a record in r, 0 a marker or a bad
 * frame skipped, 2 the last marker expected, -1 failed. */
static int
zmq_take(RecordSource *s, Record *r, char *err, size_t errlen)
{
	char e[300], why[400];
	Peer *p;

	if (zmq_msg_recv(&s->zm, s->sock, 0) == -1)
		return source_fail(s, err, errlen, "%s: zmq_msg_recv: %s",
		    s->name, zmq_strerror(errno));
	p = msg_peer(s);
	if (zmq_msg_size(&s->zm) == 0) {
		if (p->ended)
			return bad_frame(s, p, "a second end-of-stream marker",
			    err, errlen);
		if (p->records == 0)
			return bad_frame(s, p, "an end-of-stream marker before "
			    "any record", err, errlen);
		p->ended = 1;
		s->active--;
		return ++s->ends >= s->opt.expect_ends ? 2 : 0;
	}
	if (p->ended)
		return bad_frame(s, p, "a record after its end-of-stream "
		    "marker", err, errlen);
	if (record_decode(zmq_msg_data(&s->zm), zmq_msg_size(&s->zm), r, e,
	    sizeof e) == -1) {
		snprintf(why, sizeof why, "not a record (%s)", e);
		return bad_frame(s, p, why, err, errlen);
	}
	if (p->records++ == 0)
		s->active++;
	return 1;
}

/* The name of a sender that sent records and no end-of-stream marker. */
static const char *
lost_peer(RecordSource *s)
{
	const char *name = s->anon.name;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->npeers; i++)
		if (s->peers[i]->records > 0 && !s->peers[i]->ended) {
			name = s->peers[i]->name;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return name;
}

static int
zmq_next(RecordSource *s, Record *r, char *err, size_t errlen)
{
	zmq_pollitem_t it[2];
	double deadline, left;
	long wait;
	char e[256];
	int n, rc;

	deadline = now_seconds() + s->opt.timeout_ms / 1000.0;
	for (;;) {
		/* No sender connected, and one that sent records has not
		 * ended: it died (disconnections of connections that never
		 * completed their handshake do not count). */
		int connected = s->hs_ok - (s->gone - s->hs_failed);
		int lost = connected <= 0 && s->active > 0;

		left = (deadline - now_seconds()) * 1000.0;
		wait = s->opt.timeout_ms < 0 ? -1 : left > 0 ? (long)left : 0;
		if (lost && (wait < 0 || wait > DISCONNECT_GRACE_MS))
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
			if ((rc = zmq_take(s, r, err, errlen)) != 0)
				return rc == 2 ? 0 : rc;
			continue;
		}
		if (it[1].revents & ZMQ_POLLIN) {
			if (monitor_event(s, e, sizeof e) == -1)
				return source_fail(s, err, errlen, "%s", e);
			continue;
		}
		if (n == 0 && lost)
			return source_fail(s, err, errlen, "%s: %s "
			    "disconnected without ending its stream (%d of %d "
			    "senders ended; %llu records received)", s->name,
			    lost_peer(s), s->ends, s->opt.expect_ends,
			    (unsigned long long)s->n);
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
		zmq_source_end(s);
		break;
	}
	pthread_mutex_destroy(&s->lock);
	free(s->msg);
	free(s->name);
	free(s);
}

int
stream_option(StreamOptions *o, int code, const char *arg)
{
	switch (code) {
	case STREAM_OPT_ALLOW: o->allow_file = arg; return 1;
	case STREAM_OPT_BAD:
		o->bad_max = (long)estrtonum(arg, 0, LONG_MAX - 1,
		    "--bad-records");
		if (o->bad_max == 0)
			o->bad_max = -1;        /* none: stop at the first */
		return 1;
	case STREAM_OPT_INSECURE: o->insecure = 1; return 1;
	case STREAM_OPT_KEY: o->key_file = arg; return 1;
	case STREAM_OPT_PEER_KEY: o->peer_file = arg; return 1;
	default: return 0;
	}
}

void
stream_options_need_zmq(const StreamOptions *o, int zmq)
{
	if (!zmq && (o->key_file || o->allow_file || o->peer_file ||
	    o->insecure || o->bad_max))
		errx(RL_EXIT_USAGE, "--allow, --bad-records, --insecure, --key "
		    "and --peer-key are for ZeroMQ endpoints (-z, -Z)");
}

/*
 * rl-cat: look at grid records and move them between a record stream
 * (files, stdin, stdout), an LMDB directory and ZeroMQ sockets: copy them,
 * list them one line each, count them, or print an LMDB's metadata.
 * Every record read is checked (record.h); the formats are rl-record(5).
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stream.h"
#include "common/util.h"

static const char usage_line[] =
    "usage: rl-cat [-cfhlmVv] [-i lmdb-dir | -z endpoint] "
    "[-n senders] [-t seconds]\n"
    "              [-o lmdb-dir | -Z endpoint] [--allow file] "
    "[--bad-records n]\n"
    "              [--insecure] [--key file] [--peer-key file] "
    "[file ...]\n";

static const char options_text[] =
    "  file           a record stream; none or - is stdin\n"
    "  -c, --count    print the number of records\n"
    "  -f, --force    write records to stdout even if it is a terminal\n"
    "  -h, --help     print this help and exit\n"
    "  -i, --lmdb dir     read the records of an LMDB directory\n"
    "  -l, --list     print one line per record: id, sample, label, "
    "patch, gray,\n"
    "                 source, the 9 boxes\n"
    "  -m, --meta     print the metadata JSON of the -i directory\n"
    "  -n, --senders n    with -z: end after n senders ended "
    "(default 1)\n"
    "  -o, --to-lmdb dir  write the records to a new LMDB directory\n"
    "  -t, --timeout seconds  with -z: fail after this long without a "
    "record\n"
    "                 (default 120; 0 waits forever)\n"
    "  -V, --version  print the version and exit\n"
    "  -v, --verbose  show progress on stderr\n"
    "  -Z, --to-zmq endpoint  send the records to a ZeroMQ PULL "
    "(connects)\n"
    "  -z, --zmq endpoint     receive records on a ZeroMQ PULL "
    "(binds)\n"
    "  --allow file   with -z and --key: the senders' public keys "
    "accepted\n"
    "  --bad-records n    with -z: bad frames from senders skipped "
    "before failing (10)\n"
    "  --insecure     allow a non-loopback endpoint without CURVE "
    "keys\n"
    "  --key file     this end's CURVE secret key (rl-keygen)\n"
    "  --peer-key file    with -Z and --key: the receiver's public "
    "key\n";


static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The source path with tab, newline and backslash escaped. */
static void
put_path(const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '\t': fputs("\\t", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		default: putchar(*s);
		}
}

static void
list_record(const Record *r)
{
	int i;

	printf("%llu\t%u\t%lld\t%u\t%u\t", (unsigned long long)r->id,
	    (unsigned)r->sample, (long long)r->label, (unsigned)r->patch,
	    (unsigned)r->gray);
	put_path(r->source);
	for (i = 0; i < RECORD_NPATCH; i++)
		printf("\t%g,%g,%g,%g", r->box[i][0], r->box[i][1],
		    r->box[i][2], r->box[i][3]);
	putchar('\n');
}

static const struct option longopts[] = {
	{ "count", no_argument, NULL, 'c' },
	{ "force", no_argument, NULL, 'f' },
	{ "help", no_argument, NULL, 'h' },
	{ "lmdb", required_argument, NULL, 'i' },
	{ "list", no_argument, NULL, 'l' },
	{ "meta", no_argument, NULL, 'm' },
	{ "senders", required_argument, NULL, 'n' },
	{ "to-lmdb", required_argument, NULL, 'o' },
	{ "timeout", required_argument, NULL, 't' },
	{ "version", no_argument, NULL, 'V' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "to-zmq", required_argument, NULL, 'Z' },
	{ "zmq", required_argument, NULL, 'z' },
	STREAM_LONGOPT_ALLOW, STREAM_LONGOPT_BAD,
	STREAM_LONGOPT_INSECURE, STREAM_LONGOPT_KEY,
	STREAM_LONGOPT_PEER_KEY,
	{ NULL, 0, NULL, 0 }
};

int
main(int argc, char **argv)
{
	StreamOptions o = {0};
	StreamKind ikind = STREAM_FILE, okind = STREAM_FILE;
	const char *in = NULL, *out = NULL, *meta;
	char *const stdin_only[] = { "-", NULL };
	char *const *files;
	int c, count = 0, force = 0, list = 0, showmeta = 0, verbose = 0;
	int nmodes, rc = 0, ret = 0, sink_ok = 1;
	double secs;
	RecordSource *src;
	RecordSink *sink = NULL;
	Record r = {0};
	Progress prog;
	uint64_t n = 0;
	char e[600];

	while ((c = getopt_long(argc, argv, "cfhi:lmn:o:t:VvZ:z:", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'c': count = 1; break;
		case 'f': force = 1; break;
		case 'h': rl_help(usage_line, options_text);
		case 'i': ikind = STREAM_LMDB; in = optarg; break;
		case 'l': list = 1; break;
		case 'm': showmeta = 1; break;
		case 'n':
			o.expect_ends = (int)estrtonum(optarg, 1, 1 << 20,
			    "-n senders");
			break;
		case 'o': okind = STREAM_LMDB; out = optarg; break;
		case 't':
			/* 0 waits forever; any other value is >= 1 ms. */
			secs = estrtod(optarg, 0, 2e6, "-t seconds");
			o.timeout_ms = secs == 0 ? -1 : (int)RL_MAX(1,
			    secs * 1000);
			break;
		case 'V': rl_print_version(); break;
		case 'v': verbose = 1; break;
		case 'Z': okind = STREAM_ZMQ; out = optarg; break;
		case 'z': ikind = STREAM_ZMQ; in = optarg; break;
		default:
			if (!stream_option(&o, c, optarg))
				rl_usage(usage_line);
		}
	}
	argc -= optind;
	argv += optind;
	nmodes = count + list + showmeta + (out != NULL);
	if (nmodes > 1)
		errx(RL_EXIT_USAGE, "-c, -l, -m, -o and -Z exclude each other");
	if (in != NULL && argc > 0)
		errx(RL_EXIT_USAGE, "file operands with %s", ikind ==
		    STREAM_LMDB ? "-i" : "-z");
	if (showmeta && ikind != STREAM_LMDB)
		errx(RL_EXIT_USAGE, "-m needs -i lmdb-dir");
	stream_options_need_zmq(&o, ikind == STREAM_ZMQ || okind == STREAM_ZMQ);
	if (nmodes == 0)
		rl_refuse_tty_stdout(force);
	files = argc > 0 ? argv : stdin_only;
	// no SA_RESTART: a blocked read returns and what was written is
	// committed
	rl_catch_signals(on_signal, 0, NULL);

	progress_init(&prog, "records", verbose);
	for (; *files != NULL && !stop; files++) {
		rc = 0;
		if (source_open(&src, ikind, in != NULL ? in : *files, &o, e,
		    sizeof e) == -1) {
			warnx("%s", e);
			ret = RL_EXIT_FAIL;
			continue;
		}
		if (showmeta || (count && ikind == STREAM_LMDB)) {
			if (count)
				n += source_count(src);
			else if ((meta = source_meta(src)) != NULL)
				printf("%s\n", meta);
			else {
				warnx("%s: no metadata entry", in);
				ret = RL_EXIT_FAIL;
			}
			source_close(src);
			continue;
		}
		/* Opened after the first source, so a bad input leaves no
		 * empty output behind. */
		if (sink == NULL && !count && !list) {
			if (sink_open(&sink, okind, out, &o, e, sizeof e) == -1)
				errx(RL_EXIT_FAIL, "%s", e);
			if ((meta = source_meta(src)) != NULL &&
			    sink_set_meta(sink, meta, e, sizeof e) == -1)
				warnx("%s: metadata not copied: %s", in, e);
		}
		while (!stop && (rc = source_next(src, &r, e, sizeof e)) == 1) {
			if (list)
				list_record(&r);
			else if (sink != NULL && sink_put(sink, &r, e,
			    sizeof e) == -1) {
				warnx("%s", e);
				stop = 2;       /* an output error ends all */
				sink_ok = 0;
				ret = RL_EXIT_FAIL;
				break;
			}
			progress_show(&prog, ++n, source_count(src), NULL);
		}
		if (rc == -1 && !stop) {
			warnx("%s", e);
			ret = RL_EXIT_FAIL;
		}
		source_close(src);
	}
	progress_end(&prog, n, 0, NULL);
	if (stop == 1) {
		warnx("interrupted after %llu records", (unsigned long long)n);
		ret = RL_EXIT_FAIL;
	}
	if (sink != NULL && sink_close(sink, e, sizeof e) == -1) {
		if (sink_ok)
			warnx("%s", e);
		sink_ok = 0;
		ret = RL_EXIT_FAIL;
	}
	if (count)
		printf("%llu\n", (unsigned long long)n);
	record_free(&r);
	/* A failed stdout sink has said why already. */
	if (sink_ok || okind != STREAM_FILE)
		ret |= fshut(stdout, "<stdout>");
	return ret;
}

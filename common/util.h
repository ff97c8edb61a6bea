/*
 * util: the plumbing every tool shares: allocation that cannot fail,
 * range-checked number parsing, checked closing of output streams, atomic
 * text files and file checksums, the progress line, and the usage/exit-code
 * conventions.
 *
 * Only these e* helpers and tools/ end the process; every other common/
 * module returns an error code and a message instead.
 */
#ifndef RL_UTIL_H
#define RL_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RL_EXIT_FAIL  1   /* runtime failure, including skipped inputs */
#define RL_EXIT_USAGE 2   /* bad options or operands */

#define RL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RL_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: on failure print "prog: out of memory" and exit 1. */
void *emalloc(size_t n);
void *ecalloc(size_t nmemb, size_t size);
void *erealloc(void *p, size_t n);
char *estrdup(const char *s);
/* A 64-byte aligned block (for SIMD kernels); release it with free(). */
void *emalloc_aligned(size_t n);

/*
 * Parse a whole decimal integer in [min, max]. Returns 0 and sets *out, or
 * -1 with *errstr set to "invalid", "too small" or "too large" (OpenBSD
 * strtonum). estrtonum exits with status 2 naming what, the usual handling
 * of an option argument.
 */
int parse_ll(const char *s, long long min, long long max, long long *out,
    const char **errstr);
long long estrtonum(const char *s, long long min, long long max,
    const char *what);
/*
 * A comma-separated list of integers in [min, max] ("10,20,100") into
 * v[0..maxn), returning the count; a malformed list, a value out of range or
 * more than maxn values exits 2 naming what.
 */
int estrtonum_list(const char *s, int *v, int maxn, long long min,
    long long max, const char *what);
/* The same for a finite double in [min, max]. */
int parse_double(const char *s, double min, double max, double *out,
    const char **errstr);
double estrtod(const char *s, double min, double max, const char *what);

/*
 * Flush and close fp, reporting a write error (a full disk, a closed pipe)
 * as "prog: name: reason". Returns 0 or 1, to be or'ed into the exit code.
 */
int fshut(FILE *fp, const char *name);

/*
 * Refuse binary output to a terminal: if fd 1 is a tty and !force, print
 * "prog: refusing to write binary data to a terminal (use -f or redirect)"
 * and exit 2.
 */
void rl_refuse_tty_stdout(int force);

/*
 * The progress line on stderr. progress_init decides once whether to show
 * it (verbose, or stderr is a terminal). On a terminal progress_show
 * rewrites one line at most ~4 times a second,
 * "\r<label> done/total  rate/s  ETA mm:ss  <extra>\033[K"; elsewhere (a
 * log file, a pipe) it prints the same as a plain line, without "\r" or
 * escapes, every RL_PROGRESS_PLAIN_SECONDS. progress_end finishes the line
 * (off a terminal: prints the last one). total may be 0 when unknown.
 */
#define RL_PROGRESS_PLAIN_SECONDS 5.0
typedef struct {
	int on, tty;
	double t0, last;
	const char *label;
} Progress;
void progress_init(Progress *p, const char *label, int verbose);
void progress_show(Progress *p, uint64_t done, uint64_t total,
    const char *extra);
void progress_end(Progress *p, uint64_t done, uint64_t total,
    const char *extra);
/*
 * A line of the caller's own text (rl-train's step, loss and accuracy),
 * shown under the same rule as progress_show: "\r<prog>: text\033[K" at
 * most ~4 times a second on a terminal, a plain line every
 * RL_PROGRESS_PLAIN_SECONDS elsewhere. progress_break ends a terminal's line before a message is printed
 * (off a terminal there is nothing to end).
 */
void progress_text(Progress *p, const char *text);
void progress_break(Progress *p);

/*
 * The name a file is written under before it is renamed into place:
 * "path.tmpPID", beside it (so on its file system), malloc'd. Every atomic
 * writer (RlAtomic below, so npy.h and ckpt.h too) builds its temp name
 * here, so a caller that must know it (to remove it on a signal) can too.
 */
char *rl_tmp_path(const char *path);

/*
 * The tools' signal set-up: handler for SIGINT, SIGTERM and SIGHUP (the
 * ways a user or a system stops a run), with sa_flags flags (SA_RESTART,
 * SA_RESETHAND, ...). When set is not NULL it receives those signals, for
 * a tool that blocks them around starting its threads. Exits 1 when
 * sigaction fails.
 */
void rl_catch_signals(void (*handler)(int), int flags, sigset_t *set);

/* The index of s among names[0..n) (NULL entries skipped), or -1: the
 * lookup of an option's named values. */
int rl_lookup(const char *s, const char *const *names, size_t n);

/* The strings up to a NULL, concatenated into a new string: the one way
 * paths are put together ("dir", "/", "name", ".npy", NULL). */
char *rl_concat(const char *s, ...);

/*
 * A file written atomically: a reader of path sees the old file or the
 * whole new one, never part of one, even after a crash. The data goes to
 * the temp file rl_tmp_path(path); rl_atomic_close flushes, fsyncs and
 * closes it, renames it over path and fsyncs path's directory (best
 * effort: some file systems refuse that).
 *
 * rl_atomic_open sets up a (whatever it held) and returns the temp file to
 * write, or NULL with "tmp: reason" in err. The FILE and the names belong
 * to a; a.tmp may also be written by name (another program's output)
 * before the close.
 *
 * rl_atomic_close returns 0, or -1 with "path: reason" in err ("No space
 * left on device") and the temp file removed; a write the caller made
 * that failed (ferror) is reported too, with the errno it left, so call
 * rl_atomic_close right after such a write. Either way a is then empty.
 *
 * rl_atomic_abort removes the temp file and empties a; on an empty a (a
 * zeroed one, or after a close, an abort or a failed open) it does
 * nothing, so a cleanup path may call it whatever happened before.
 * Neither is async-signal-safe: a signal handler unlinks a.tmp itself.
 */
typedef struct {
	FILE *fp;          /* the temp file; NULL when a is empty */
	char *path, *tmp;  /* owned */
} RlAtomic;
FILE *rl_atomic_open(RlAtomic *a, const char *path, char *err,
    size_t errlen);
int rl_atomic_close(RlAtomic *a, char *err, size_t errlen);
void rl_atomic_abort(RlAtomic *a);

/*
 * Several files that land together (rl-extract's features, labels and
 * sidecar): either every new file is in place or every old one is.
 *
 * rl_atomic_finish flushes, fsyncs and closes a's temp file but leaves it
 * under its temp name (a keeps its names, a.fp becomes NULL). Returns 0,
 * or -1 with "path: reason" and a emptied (temp removed), as the close.
 *
 * rl_atomic_commit renames the n finished files a[0..n-1] into place.
 * Before the first rename, each path that holds a regular file gets a
 * hard link "path.oldPID"; if a rename fails, every file already renamed
 * is put back from its link (or removed, where there was no old file), so
 * the old set stays. Then the links and the remaining temp files are
 * removed and every a is empty. Returns 0, or -1 with "path: reason".
 */
int rl_atomic_finish(RlAtomic *a, char *err, size_t errlen);
int rl_atomic_commit(RlAtomic *const *a, int n, char *err, size_t errlen);

/*
 * Write text and a newline to path through an RlAtomic, so a reader never
 * sees part of it and an existing file is replaced whole. Returns 0, or -1
 * with "path: reason" (or "tmp: reason" when the temp file cannot be
 * created) in err; the temp file is then removed.
 */
int rl_write_text_atomic(const char *path, const char *text, char *err,
    size_t errlen);
/* The same, left finished for rl_atomic_commit in a. */
int rl_write_text_finished(RlAtomic *a, const char *path, const char *text,
    char *err, size_t errlen);

/*
 * *crc = zlib's CRC-32 of the whole file at path (Python's zlib.crc32 of
 * its bytes; a file's fingerprint). Returns 0, or -1 with "path: reason".
 */
int rl_file_crc32(const char *path, unsigned long *crc, char *err,
    size_t errlen);

/* Seconds since an arbitrary origin, monotonic. */
double now_seconds(void);

/* CPU seconds this process has used, all its threads together. */
double cpu_seconds(void);

/* The program name for messages (glibc's program_invocation_short_name). */
const char *rl_progname(void);

/* Print "prog version" to stdout and exit 0 (every tool's -V/--version). */
void rl_print_version(void);

/*
 * A tool's usage conventions. usage is its usage text ("usage: rl-x [-hV]
 * ...\n", the man page's SYNOPSIS), options its help lines, one an option.
 * rl_usage prints usage to stderr and exits 2 (a bad option or operand);
 * rl_help prints usage then options to stdout and exits 0, or 1 when stdout
 * cannot be written (-h, --help).
 */
_Noreturn void rl_usage(const char *usage);
_Noreturn void rl_help(const char *usage, const char *options);

#endif

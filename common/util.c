/*
 * util: allocation, number parsing, stream closing, atomic files,
 * checksums, progress. See util.h. Not a place for anything that knows
 * about images, records or networks.
 */
#define _GNU_SOURCE /* program_invocation_short_name */
#include <errno.h>
#include <err.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"

const char *
rl_progname(void)
{
	return program_invocation_short_name;
}

void
rl_print_version(void)
{
	printf("%s %s\n", rl_progname(), RL_VERSION);
	exit(0);
}

_Noreturn void
rl_usage(const char *usage)
{
	fputs(usage, stderr);
	exit(RL_EXIT_USAGE);
}

_Noreturn void
rl_help(const char *usage, const char *options)
{
	fputs(usage, stdout);
	fputs(options, stdout);
	exit(fshut(stdout, "<stdout>"));
}

static void *
oom(void *p)
{
	if (!p)
		errx(RL_EXIT_FAIL, "out of memory");
	return p;
}

void *
emalloc(size_t n)
{
	return oom(malloc(n ? n : 1));
}

void *
ecalloc(size_t nmemb, size_t size)
{
	return oom(calloc(nmemb ? nmemb : 1, size ? size : 1));
}

void *
erealloc(void *p, size_t n)
{
	return oom(realloc(p, n ? n : 1));
}

char *
estrdup(const char *s)
{
	return oom(strdup(s));
}

void *
emalloc_aligned(size_t n)
{
	void *p = NULL;

	n = (n + 63) / 64 * 64;
	if (posix_memalign(&p, 64, n ? n : 64))
		p = NULL;
	return oom(p);
}

int
parse_ll(const char *s, long long min, long long max, long long *out,
    const char **errstr)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0') {
		*errstr = "invalid";
		return -1;
	}
	if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
		*errstr = "too small";
		return -1;
	}
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "too large";
		return -1;
	}
	*out = v;
	*errstr = NULL;
	return 0;
}

long long
estrtonum(const char *s, long long min, long long max, const char *what)
{
	const char *es;
	long long v;

	if (parse_ll(s, min, max, &v, &es) < 0) {
		warnx("%s '%s': %s (want %lld..%lld)", what, s, es, min, max);
		exit(RL_EXIT_USAGE);
	}
	return v;
}

int
estrtonum_list(const char *arg, int *v, int maxn, long long min,
    long long max, const char *what)
{
	char *s = estrdup(arg), *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		if (n == maxn)
			errx(RL_EXIT_USAGE, "%s: more than %d values", what, maxn);
		v[n++] = estrtonum(tok, min, max, what);
	}
	if (n == 0)
		errx(RL_EXIT_USAGE, "%s '%s': want a list such as 10,20", what,
		    arg);
	free(s);
	return n;
}

int
parse_double(const char *s, double min, double max, double *out,
    const char **errstr)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v)) {
		*errstr = "invalid";
		return -1;
	}
	if (v < min) {
		*errstr = "too small";
		return -1;
	}
	if (v > max) {
		*errstr = "too large";
		return -1;
	}
	*out = v;
	*errstr = NULL;
	return 0;
}

double
estrtod(const char *s, double min, double max, const char *what)
{
	const char *es;
	double v;

	if (parse_double(s, min, max, &v, &es) < 0) {
		warnx("%s '%s': %s (want %g..%g)", what, s, es, min, max);
		exit(RL_EXIT_USAGE);
	}
	return v;
}

int
fshut(FILE *fp, const char *name)
{
	int ret = 0;

	if (fflush(fp) == EOF || ferror(fp)) {
		warn("%s", name);
		ret = 1;
	}
	if (fclose(fp) == EOF && !ret) {
		warn("%s", name);
		ret = 1;
	}
	return ret;
}

/* "path" + what + this process's id, malloc'd. */
static char *
pid_path(const char *path, const char *what)
{
	size_t n = strlen(path) + strlen(what) + 24;
	char *p = emalloc(n);

	snprintf(p, n, "%s%s%ld", path, what, (long)getpid());
	return p;
}

char *
rl_tmp_path(const char *path)
{
	return pid_path(path, ".tmp");
}

int
rl_lookup(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

void
rl_catch_signals(void (*handler)(int), int flags, sigset_t *set)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (set)
		sigemptyset(set);
	for (size_t i = 0; i < RL_NELEM(sigs); i++) {
		if (sigaction(sigs[i], &sa, NULL) == -1)
			err(RL_EXIT_FAIL, "sigaction");
		if (set)
			sigaddset(set, sigs[i]);
	}
}

char *
rl_concat(const char *s, ...)
{
	va_list ap;
	size_t n = 1;
	char *p;

	va_start(ap, s);
	for (const char *t = s; t; t = va_arg(ap, const char *))
		n += strlen(t);
	va_end(ap);
	p = emalloc(n);
	*p = '\0';
	va_start(ap, s);
	for (const char *t = s; t; t = va_arg(ap, const char *))
		strcat(p, t);
	va_end(ap);
	return p;
}

/* Free a's names and leave it empty. */
static void
atomic_forget(RlAtomic *a)
{
	free(a->tmp);
	free(a->path);
	memset(a, 0, sizeof *a);
}

FILE *
rl_atomic_open(RlAtomic *a, const char *path, char *err, size_t errlen)
{
	a->path = estrdup(path);
	a->tmp = rl_tmp_path(path);
	if ((a->fp = fopen(a->tmp, "wb")) == NULL) {
		snprintf(err, errlen, "%s: %s", a->tmp, strerror(errno));
		rl_atomic_abort(a);
	}
	return a->fp;
}

/* fsync the directory holding path, so a rename there is durable. Best
 * effort: some file systems refuse it, and the file is in place anyway. */
static void
dir_sync(const char *path)
{
	char *dir = estrdup(path), *slash = strrchr(dir, '/');
	int fd;

	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int
rl_atomic_finish(RlAtomic *a, char *err, size_t errlen)
{
	int e = errno;    /* why a write of the caller's failed, if one did */

	if (fflush(a->fp) == EOF)
		e = errno;
	else if (ferror(a->fp))
		e = e ? e : EIO;
	else
		e = fsync(fileno(a->fp)) ? errno : 0;
	if (fclose(a->fp) == EOF && !e)
		e = errno;
	a->fp = NULL;
	if (e) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(e));
		rl_atomic_abort(a);
		return -1;
	}
	return 0;
}

int
rl_atomic_commit(RlAtomic *const *a, int n, char *err, size_t errlen)
{
	char **old = ecalloc(n > 0 ? n : 1, sizeof *old);
	struct stat st;
	int done = 0, bad = 0, e = 0;

	// one file needs no link: its rename alone is atomic
	for (int i = 0; n > 1 && i < n && !e; i++)
		if (lstat(a[i]->path, &st) == 0 && S_ISREG(st.st_mode)) {
			old[i] = pid_path(a[i]->path, ".old");
			unlink(old[i]);
			if (link(a[i]->path, old[i]))
				e = errno, bad = i;
		}
	while (!e && done < n)
		if (rename(a[done]->tmp, a[done]->path))
			e = errno, bad = done;
		else
			done++;
	if (e) {
		snprintf(err, errlen, "%s: %s", a[bad]->path, strerror(e));
		for (int i = 0; i < done; i++)
			if (old[i] ? rename(old[i], a[i]->path) :
			    unlink(a[i]->path))
				warn("%s: cannot put the old file back",
				    a[i]->path);
	}
	for (int i = 0; i < n; i++) {
		if (old[i])
			unlink(old[i]);
		free(old[i]);
		if (!e)
			dir_sync(a[i]->path);
		rl_atomic_abort(a[i]);    // the temp files not renamed
	}
	free(old);
	return e ? -1 : 0;
}

int
rl_atomic_close(RlAtomic *a, char *err, size_t errlen)
{
	if (rl_atomic_finish(a, err, errlen))
		return -1;
	return rl_atomic_commit(&a, 1, err, errlen);
}

void
rl_atomic_abort(RlAtomic *a)
{
	if (a->fp)
		fclose(a->fp);
	if (a->tmp)
		unlink(a->tmp);
	atomic_forget(a);
}

int
rl_write_text_finished(RlAtomic *a, const char *path, const char *text,
    char *err, size_t errlen)
{
	FILE *fp;

	if ((fp = rl_atomic_open(a, path, err, errlen)) == NULL)
		return -1;
	fputs(text, fp);
	fputc('\n', fp);
	return rl_atomic_finish(a, err, errlen);
}

int
rl_write_text_atomic(const char *path, const char *text, char *err,
    size_t errlen)
{
	RlAtomic a, *pa = &a;

	if (rl_write_text_finished(&a, path, text, err, errlen))
		return -1;
	return rl_atomic_commit(&pa, 1, err, errlen);
}

int
rl_file_crc32(const char *path, unsigned long *crc, char *err,
    size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf;
	size_t n;
	int rc = 0;

	*crc = crc32(0L, Z_NULL, 0);
	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf = emalloc(1 << 20);
	while ((n = fread(buf, 1, 1 << 20, fp)) > 0)
		*crc = crc32(*crc, buf, (uInt)n);
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(buf);
	fclose(fp);
	return rc;
}

void
rl_refuse_tty_stdout(int force)
{
	if (!force && isatty(STDOUT_FILENO)) {
		warnx("refusing to write binary data to a terminal "
		    "(use -f or redirect)");
		exit(RL_EXIT_USAGE);
	}
}

double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double
cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void
progress_init(Progress *p, const char *label, int verbose)
{
	p->tty = isatty(STDERR_FILENO);
	p->on = verbose || p->tty;
	p->t0 = p->last = now_seconds();
	p->label = label;
}

static void
progress_print(Progress *p, uint64_t done, uint64_t total, const char *extra,
    double t)
{
	double el = t - p->t0, rate = el > 0 ? done / el : 0;

	fprintf(stderr, "%s%s: %s %llu", p->tty ? "\r" : "", rl_progname(),
	    p->label, (unsigned long long)done);
	if (total)
		fprintf(stderr, "/%llu", (unsigned long long)total);
	fprintf(stderr, "  %.1f/s", rate);
	if (total && rate > 0 && done < total) {
		double eta = (total - done) / rate;
		fprintf(stderr, "  ETA %d:%02d", (int)(eta / 60), (int)eta % 60);
	}
	if (extra && *extra)
		fprintf(stderr, "  %s", extra);
	fputs(p->tty ? "\033[K" : "\n", stderr);
}

/* Whether a line is due now (and if so, the time it is shown at). */
static int
progress_due(Progress *p)
{
	double t;

	if (!p->on)
		return 0;
	t = now_seconds();
	if (t - p->last < (p->tty ? 0.25 : RL_PROGRESS_PLAIN_SECONDS))
		return 0;
	p->last = t;
	return 1;
}

void
progress_show(Progress *p, uint64_t done, uint64_t total, const char *extra)
{
	if (progress_due(p))
		progress_print(p, done, total, extra, p->last);
}

void
progress_text(Progress *p, const char *text)
{
	if (!progress_due(p))
		return;
	if (p->tty)
		fprintf(stderr, "\r%s: %s\033[K", rl_progname(), text);
	else
		fprintf(stderr, "%s: %s\n", rl_progname(), text);
}

void
progress_break(Progress *p)
{
	if (p->on && p->tty)
		fputc('\n', stderr);
}

void
progress_end(Progress *p, uint64_t done, uint64_t total, const char *extra)
{
	if (!p->on)
		return;
	progress_print(p, done, total, extra, now_seconds());
	if (p->tty)
		fputc('\n', stderr);
}

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
#include <stdlib.h>
#include <string.h>
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

char *
rl_tmp_path(const char *path)
{
	size_t n = strlen(path) + 32;
	char *tmp = emalloc(n);

	snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
	return tmp;
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
rl_atomic_close(RlAtomic *a, char *err, size_t errlen)
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
	if (!e && rename(a->tmp, a->path))
		e = errno;
	if (e) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(e));
		rl_atomic_abort(a);
		return -1;
	}
	dir_sync(a->path);
	atomic_forget(a);
	return 0;
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
rl_write_text_atomic(const char *path, const char *text, char *err,
    size_t errlen)
{
	RlAtomic a;
	FILE *fp;

	if ((fp = rl_atomic_open(&a, path, err, errlen)) == NULL)
		return -1;
	fputs(text, fp);
	fputc('\n', fp);
	return rl_atomic_close(&a, err, errlen);
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
	p->on = verbose || isatty(STDERR_FILENO);
	p->t0 = p->last = now_seconds();
	p->label = label;
}

static void
progress_print(Progress *p, uint64_t done, uint64_t total, const char *extra,
    double t)
{
	double el = t - p->t0, rate = el > 0 ? done / el : 0;

	fprintf(stderr, "\r%s: %s %llu", rl_progname(), p->label,
	    (unsigned long long)done);
	if (total)
		fprintf(stderr, "/%llu", (unsigned long long)total);
	fprintf(stderr, "  %.1f/s", rate);
	if (total && rate > 0 && done < total) {
		double eta = (total - done) / rate;
		fprintf(stderr, "  ETA %d:%02d", (int)(eta / 60), (int)eta % 60);
	}
	if (extra && *extra)
		fprintf(stderr, "  %s", extra);
	fputs("\033[K", stderr);
}

void
progress_show(Progress *p, uint64_t done, uint64_t total, const char *extra)
{
	double t;

	if (!p->on)
		return;
	t = now_seconds();
	if (t - p->last < 0.25)
		return;
	p->last = t;
	progress_print(p, done, total, extra, t);
}

void
progress_end(Progress *p, uint64_t done, uint64_t total, const char *extra)
{
	if (!p->on)
		return;
	progress_print(p, done, total, extra, now_seconds());
	fputc('\n', stderr);
}

/* t_util: util (parsing, files), rng (determinism, ranges), list, npy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/list.h"
#include "common/npy.h"
#include "common/rng.h"
#include "common/util.h"
#include "tests/check.h"
#include "tests/helpers.h"

TEST(parse_ll)
{
	long long v;
	const char *es;

	CHECK(parse_ll("42", 0, 100, &v, &es) == 0 && v == 42, "42");
	CHECK(parse_ll("-3", 0, 100, &v, &es) < 0 && !strcmp(es, "too small"),
	    "-3");
	CHECK(parse_ll("101", 0, 100, &v, &es) < 0 && !strcmp(es, "too large"),
	    "101");
	CHECK(parse_ll("4x", 0, 100, &v, &es) < 0 && !strcmp(es, "invalid"),
	    "4x");
	CHECK(parse_ll("", 0, 100, &v, &es) < 0, "empty");
}

TEST(parse_double)
{
	double v;
	const char *es;

	CHECK(parse_double("0.25", 0, 1, &v, &es) == 0 && v == 0.25, "0.25");
	CHECK(parse_double("nan", 0, 1, &v, &es) < 0, "nan");
	CHECK(parse_double("2", 0, 1, &v, &es) < 0, "2");
}

TEST(rng_deterministic)
{
	Rng a, b, c;

	rng_init(&a, 7, RNG_STREAM_SAMPLE, 3);
	rng_init(&b, 7, RNG_STREAM_SAMPLE, 3);
	rng_init(&c, 7, RNG_STREAM_SAMPLE, 4);
	for (int i = 0; i < 100; i++) {
		uint64_t x = rng_u64(&a), y = rng_u64(&b), z = rng_u64(&c);
		CHECK(x == y, "same key differs at %d", i);
		CHECK(x != z, "different keys collide at %d", i);
	}
}

TEST(rng_ranges)
{
	Rng g;
	int hist[7] = {0};
	double s = 0, s2 = 0;

	rng_init(&g, 1, RNG_STREAM_USER, 0);
	for (int i = 0; i < 70000; i++) {
		uint64_t k = rng_below(&g, 7);
		double u = rng_uniform(&g);
		CHECK(k < 7 && u >= 0 && u < 1, "range");
		hist[k]++;
	}
	for (int k = 0; k < 7; k++)
		CHECK(hist[k] > 9500 && hist[k] < 10500, "bin %d: %d", k,
		    hist[k]);
	for (int i = 0; i < 100000; i++) {
		double x = rng_normal(&g);
		s += x;
		s2 += x * x;
	}
	CHECK_NEAR(s / 100000, 0, 0.02, 0);
	CHECK_NEAR(s2 / 100000, 1, 0.02, 0);
}

TEST(list_parse)
{
	const char *text = "# comment\n"
	    "a/b.jpg 3\n"
	    "\n"
	    "  with space.png  1 -1 0 \n"
	    "plain.png\n"
	    "/abs/x.png 7\n";
	FILE *fp = fmemopen((void *)text, strlen(text), "r");
	List l = {0};
	char err[256];

	CHECK(list_read(&l, fp, "mem", "root", err, sizeof err) == 0, "%s",
	    err);
	fclose(fp);
	CHECK(l.n == 4, "n = %zu", l.n);
	if (l.n != 4)
		return;
	CHECK(!strcmp(l.item[0].path, "root/a/b.jpg"), "%s", l.item[0].path);
	CHECK(l.item[0].nlabel == 1 && l.item[0].label[0] == 3, "label");
	CHECK(l.item[0].line == 2, "line %zu", l.item[0].line);
	CHECK(!strcmp(l.item[1].path, "root/with space.png"), "%s",
	    l.item[1].path);
	CHECK(l.item[1].nlabel == 3 && l.item[1].label[0] == 1 &&
	    l.item[1].label[1] == -1 && l.item[1].label[2] == 0, "labels");
	CHECK(l.item[2].nlabel == 0, "no label");
	CHECK(!strcmp(l.item[3].path, "/abs/x.png"), "%s", l.item[3].path);
	list_free(&l);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

/* The first path of list file name read with root, or the error text. */
static void
first_path(char *out, size_t n, const char *name, const char *root,
    size_t *count)
{
	List l = {0};
	char err[512];

	if (list_read_file(&l, name, root, err, sizeof err) < 0)
		snprintf(out, n, "error: %s", err);
	else
		snprintf(out, n, "%s", l.n ? l.item[0].path : "(none)");
	*count = l.n;
	list_free(&l);
}

TEST(list_read_file)
{
	char dir[512], sub[520], list[560], want[640], got[1200];
	char cwd[PATH_MAX];
	size_t n;

	th_scratch_dir(dir, sizeof dir, "t_util_list");
	snprintf(sub, sizeof sub, "%s/sub", dir);
	snprintf(list, sizeof list, "%s/list.txt", sub);
	CHECK(mkdir(sub, 0777) == 0, "mkdir %s", sub);
	write_file(list, "img/a.png 1\n/abs/b.png 2\n");

	/* by default under the list's own directory; absolute paths stay */
	first_path(got, sizeof got, list, NULL, &n);
	snprintf(want, sizeof want, "%s/img/a.png", sub);
	CHECK(n == 2 && !strcmp(got, want), "%s (n %zu)", got, n);
	{
		List l = {0};
		char err[256];
		CHECK(list_read_file(&l, list, NULL, err, sizeof err) == 0 &&
		    l.n == 2 && !strcmp(l.item[1].path, "/abs/b.png") &&
		    l.item[1].label[0] == 2, "absolute path");
		list_free(&l);
	}
	/* an explicit root wins; "." leaves the paths as written */
	first_path(got, sizeof got, list, "r", &n);
	CHECK(!strcmp(got, "r/img/a.png"), "%s", got);
	first_path(got, sizeof got, list, ".", &n);
	CHECK(!strcmp(got, "img/a.png"), "%s", got);

	/* a bare name in the working directory: paths as written */
	CHECK(getcwd(cwd, sizeof cwd) != NULL && chdir(sub) == 0, "chdir");
	first_path(got, sizeof got, "list.txt", NULL, &n);
	CHECK(!strcmp(got, "img/a.png"), "%s", got);
	first_path(got, sizeof got, "../sub/list.txt", NULL, &n);
	CHECK(!strcmp(got, "../sub/img/a.png"), "%s", got);
	CHECK(chdir(cwd) == 0, "chdir back");

	/* "-" is stdin, taken from the working directory unless rooted */
	CHECK(freopen(list, "r", stdin) != NULL, "freopen");
	first_path(got, sizeof got, "-", NULL, &n);
	CHECK(!strcmp(got, "img/a.png"), "%s", got);
	CHECK(freopen(list, "r", stdin) != NULL, "freopen");
	first_path(got, sizeof got, NULL, "r", &n);
	CHECK(!strcmp(got, "r/img/a.png"), "%s", got);

	/* a missing file: the name and the reason */
	snprintf(list, sizeof list, "%s/nosuch.txt", sub);
	first_path(got, sizeof got, list, NULL, &n);
	snprintf(want, sizeof want, "error: %s: No such file", list);
	CHECK(!strncmp(got, want, strlen(want)), "%s", got);

	snprintf(list, sizeof list, "%s/list.txt", sub);
	unlink(list);
	rmdir(sub);
	rmdir(dir);
}

/* The names in dir, space-separated (sorted by readdir's whim). */
static void
dir_names(char *out, size_t n, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	out[0] = '\0';
	while (d && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			snprintf(out + strlen(out), n - strlen(out), "%s%s",
			    *out ? " " : "", e->d_name);
	if (d)
		closedir(d);
}

TEST(write_text_atomic)
{
	char dir[512], path[560], got[1024], err[1024];
	FILE *fp;

	th_scratch_dir(dir, sizeof dir, "t_util_text");
	snprintf(path, sizeof path, "%s/a.json", dir);
	/* a new file, then one that replaces it whole; no temp file left */
	CHECK(rl_write_text_atomic(path, "{\"x\": 1}", err, sizeof err) == 0,
	    "%s", err);
	CHECK(rl_write_text_atomic(path, "two", err, sizeof err) == 0, "%s",
	    err);
	fp = fopen(path, "r");
	CHECK(fp && fread(got, 1, sizeof got, fp) == 4 && !memcmp(got,
	    "two\n", 4), "contents");
	if (fp)
		fclose(fp);
	dir_names(got, sizeof got, dir);
	CHECK(!strcmp(got, "a.json"), "files: %s", got);

	/* a directory in the way: an error naming the path, nothing left */
	snprintf(path, sizeof path, "%s/d", dir);
	CHECK(mkdir(path, 0777) == 0, "mkdir");
	CHECK(rl_write_text_atomic(path, "x", err, sizeof err) < 0 &&
	    !strncmp(err, path, strlen(path)), "%s", err);
	dir_names(got, sizeof got, dir);
	CHECK(!strcmp(got, "a.json d") || !strcmp(got, "d a.json"), "files: %s",
	    got);
	/* no directory to write in */
	snprintf(path, sizeof path, "%s/none/a.json", dir);
	CHECK(rl_write_text_atomic(path, "x", err, sizeof err) < 0 &&
	    strstr(err, "No such file"), "%s", err);

	snprintf(path, sizeof path, "%s/d", dir);
	rmdir(path);
	snprintf(path, sizeof path, "%s/a.json", dir);
	unlink(path);
	rmdir(dir);
}

/* The whole of file path in buf (n bytes at most), NUL-terminated. */
static void
read_all(char *buf, size_t n, const char *path)
{
	FILE *fp = fopen(path, "rb");
	size_t got = fp ? fread(buf, 1, n - 1, fp) : 0;

	buf[got] = '\0';
	if (fp)
		fclose(fp);
}

/* dir holds the file name and nothing else, and it reads want. */
static void
only_file(const char *dir, const char *name, const char *want,
    const char *when)
{
	char path[600], got[1024];

	dir_names(got, sizeof got, dir);
	CHECK(!strcmp(got, name), "%s: files %s", when, got);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	read_all(got, sizeof got, path);
	CHECK(!strcmp(got, want), "%s: %s reads '%.20s'", when, name, got);
}

/* Off a terminal the progress is plain lines: no "\r", no escapes, and
 * none more often than RL_PROGRESS_PLAIN_SECONDS. */
TEST(progress_plain)
{
	char dir[512], path[560], got[1024];
	Progress p;
	int fd, saved = dup(STDERR_FILENO);

	th_scratch_dir(dir, sizeof dir, "t_util_progress");
	snprintf(path, sizeof path, "%s/log", dir);
	fflush(stderr);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	CHECK(fd >= 0 && dup2(fd, STDERR_FILENO) >= 0, "%s", path);
	progress_init(&p, "items", 1);
	for (int i = 1; i <= 1000; i++)
		progress_show(&p, i, 1000, "x");    /* well under 5 s */
	p.last -= RL_PROGRESS_PLAIN_SECONDS;        /* as if 5 s passed */
	progress_show(&p, 1000, 1000, "x");
	progress_end(&p, 1000, 1000, "x");
	/* a caller's own text (rl-train's) under the same rule */
	p.last = now_seconds();
	for (int i = 0; i < 100; i++)
		progress_text(&p, "step 6");        /* within 5 s: not shown */
	p.last -= RL_PROGRESS_PLAIN_SECONDS;
	progress_text(&p, "step 7");
	progress_break(&p);                          /* nothing to end */
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	read_all(got, sizeof got, path);
	CHECK(p.tty == 0 && !strchr(got, '\r') && !strchr(got, '\033'),
	    "escapes in '%s'", got);
	{
		int lines = 0;

		for (const char *c = got; *c; c++)
			lines += *c == '\n';
		CHECK(strstr(got, "items 1000/1000") != NULL && lines == 3 &&
		    !strstr(got, "step 6") && strstr(got, ": step 7\n") &&
		    got[strlen(got) - 1] == '\n',
		    "want three plain lines, got '%s'", got);
	}
	unlink(path);
	rmdir(dir);
}

/* Files committed together: a failed rename puts back the old set. */
TEST(atomic_commit)
{
	char dir[512], p[3][560], got[1024], err[1024];
	RlAtomic a[3], *pa[3] = {&a[0], &a[1], &a[2]};
	const char *names[3] = {"a", "b", "c"};
	struct stat st;

	th_scratch_dir(dir, sizeof dir, "t_util_commit");
	for (int i = 0; i < 3; i++)
		snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
	write_file(p[0], "old a\n");       /* b: none before; c: a dir */
	CHECK(mkdir(p[2], 0777) == 0, "mkdir %s", p[2]);
	for (int i = 0; i < 3; i++)
		CHECK(rl_write_text_finished(&a[i], p[i], "new", err,
		    sizeof err) == 0 && access(a[i].tmp, F_OK) == 0 &&
		    a[i].fp == NULL, "%s", err);
	CHECK(rl_atomic_commit(pa, 3, err, sizeof err) < 0 &&
	    strstr(err, "/c: ") != NULL, "commit over a directory: '%s'", err);
	read_all(got, sizeof got, p[0]);
	CHECK(!strcmp(got, "old a\n"), "a reads '%s' after the rollback", got);
	CHECK(access(p[1], F_OK) != 0, "b left after the rollback");
	CHECK(stat(p[2], &st) == 0 && S_ISDIR(st.st_mode), "c not a dir");
	dir_names(got, sizeof got, dir);
	CHECK(strlen(got) == 3, "files after the rollback: %s", got);
	CHECK(!a[0].tmp && !a[1].tmp && !a[2].tmp, "not emptied");

	/* the way cleared, all three land and nothing else stays */
	rmdir(p[2]);
	for (int i = 0; i < 3; i++)
		CHECK(rl_write_text_finished(&a[i], p[i], "new", err,
		    sizeof err) == 0, "%s", err);
	CHECK(rl_atomic_commit(pa, 3, err, sizeof err) == 0, "%s", err);
	for (int i = 0; i < 3; i++) {
		read_all(got, sizeof got, p[i]);
		CHECK(!strcmp(got, "new\n"), "%s reads '%s'", names[i], got);
		unlink(p[i]);
	}
	dir_names(got, sizeof got, dir);
	CHECK(!*got, "left: %s", got);
	rmdir(dir);
}

TEST(atomic_stream)
{
	char dir[512], path[560], got[1024], err[1024];
	RlAtomic a = {0};
	FILE *fp;

	rl_atomic_abort(&a);    /* a zeroed one: nothing to do */
	th_scratch_dir(dir, sizeof dir, "t_util_atomic");
	snprintf(path, sizeof path, "%s/list.txt", dir);
	/* while it is written only the temp file exists */
	fp = rl_atomic_open(&a, path, err, sizeof err);
	CHECK(fp && a.fp == fp && !strcmp(a.path, path), "%s", err);
	fputs("one\n", fp);
	CHECK(access(a.tmp, F_OK) == 0 && access(path, F_OK) != 0,
	    "%s while writing", a.tmp);
	CHECK(rl_atomic_close(&a, err, sizeof err) == 0, "%s", err);
	CHECK(!a.fp && !a.tmp && !a.path, "not emptied by close");
	rl_atomic_abort(&a);    /* after a close: the new file stays */
	only_file(dir, "list.txt", "one\n", "closed");

	/* abort: the temp file goes, the old file stays; twice is harmless */
	fp = rl_atomic_open(&a, path, err, sizeof err);
	CHECK(fp != NULL, "%s", err);
	fputs("two\n", fp);
	rl_atomic_abort(&a);
	rl_atomic_abort(&a);
	only_file(dir, "list.txt", "one\n", "aborted");

	/* the temp file written by name, as gnuplot writes the plot */
	fp = rl_atomic_open(&a, path, err, sizeof err);
	CHECK(fp != NULL, "%s", err);
	write_file(a.tmp, "three\n");
	CHECK(rl_atomic_close(&a, err, sizeof err) == 0, "%s", err);
	only_file(dir, "list.txt", "three\n", "written by name");

	/* a directory that does not exist: the temp file named, a emptied */
	snprintf(got, sizeof got, "%s/none/x", dir);
	CHECK(rl_atomic_open(&a, got, err, sizeof err) == NULL &&
	    strstr(err, "/none/x.tmp") && strstr(err, ": No such file"),
	    "%s", err);
	CHECK(!a.fp && !a.tmp && !a.path, "not emptied by a failed open");
	rl_atomic_abort(&a);

	unlink(path);
	rmdir(dir);
}

/*
 * A disk that fills up while the file is written. Two real ways, both
 * working for root (no read-only directories, no tmpfs to mount): a
 * file-size limit (setrlimit RLIMIT_FSIZE: write(2) past it fails with
 * EFBIG, "File too large"), and /dev/full (ENOSPC on every write), where
 * it exists, reached through a symlink put where the temp file goes.
 * Each time twice: a large fwrite that fails at once (the error the
 * caller's write left), and small ones that fail only when flushed. The
 * error must name path and the reason, the temp file must be gone and
 * the old file whole.
 */
static void
full_case(const char *dir, const char *path, int devfull, size_t n,
    const char *want)
{
	char err[1024], msg[1200], *tmp = rl_tmp_path(path);
	static char buf[1 << 16];
	RlAtomic a;
	FILE *fp;

	memset(buf, 'x', sizeof buf);
	if (devfull && symlink("/dev/full", tmp) != 0) {
		CHECK(0, "symlink %s: %s", tmp, strerror(errno));
		free(tmp);
		return;
	}
	fp = rl_atomic_open(&a, path, err, sizeof err);
	CHECK(fp != NULL, "%s", err);
	if (!fp) {
		unlink(tmp);
		free(tmp);
		return;
	}
	if (n > 4096)
		CHECK(fwrite(buf, 1, n, fp) < n, "a %zu-byte fwrite passed", n);
	else
		for (size_t i = 0; i < n; i += 100)
			fwrite(buf, 1, 100, fp);
	snprintf(msg, sizeof msg, "%s: %s", path, want);
	CHECK(rl_atomic_close(&a, err, sizeof err) < 0 && !strcmp(err, msg),
	    "n %zu: got '%s', want '%s'", n, err, msg);
	CHECK(access(tmp, F_OK) != 0 && errno == ENOENT, "%s left", tmp);
	snprintf(msg, sizeof msg, "%s, %zu bytes", want, n);
	only_file(dir, "old.txt", "old\n", msg);
	free(tmp);
}

TEST(atomic_full_disk)
{
	static const float zeros[4000];
	char dir[512], path[560], npy[560], err[1024], want[1024];
	int64_t shape[2] = {4, 1000};
	struct rlimit old, lim;
	struct stat st;
	void (*oldsig)(int);
	NpyWriter w;

	th_scratch_dir(dir, sizeof dir, "t_util_full");
	snprintf(path, sizeof path, "%s/old.txt", dir);
	write_file(path, "old\n");
	snprintf(want, sizeof want, "%s/x.npy: File too large", dir);

	/* past the size limit the kernel refuses the write (the signal it
	 * also sends would end the process: ignored here) */
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
	lim = old;
	lim.rlim_cur = 1024;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit: %s",
	    strerror(errno));
	full_case(dir, path, 0, 1 << 16, "File too large");
	full_case(dir, path, 0, 2000, "File too large");
	/* npy's writers, through the same close */
	snprintf(npy, sizeof npy, "%s/x.npy", dir);
	CHECK(npy_write(npy, NPY_F32, 2, shape, zeros, err, sizeof err) < 0 &&
	    !strcmp(err, want), "npy_write: got '%s', want '%s'", err, want);
	CHECK(npy_writer_open(&w, npy, NPY_F32, 1000, err, sizeof err) == 0,
	    "%s", err);
	CHECK(npy_writer_append(&w, zeros, 1, err, sizeof err) < 0 &&
	    !strcmp(err, want), "append: got '%s', want '%s'", err, want);
	npy_writer_abort(&w);
	only_file(dir, "old.txt", "old\n", "npy");
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "restoring the limit");
	signal(SIGXFSZ, oldsig);

	if (stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode) &&
	    access("/dev/full", W_OK) == 0) {
		full_case(dir, path, 1, 1 << 16,
		    "No space left on device");
		full_case(dir, path, 1, 2000, "No space left on device");
		CHECK(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode),
		    "/dev/full itself was removed");
	} else
		printf("# no /dev/full: only the size limit checked\n");
	unlink(path);
	rmdir(dir);
}

TEST(tmp_path)
{
	char *t = rl_tmp_path("dir/x.npy"), want[64];

	snprintf(want, sizeof want, "dir/x.npy.tmp%ld", (long)getpid());
	CHECK(!strcmp(t, want), "%s", t);
	free(t);
}

TEST(file_crc32)
{
	/* Python: zlib.crc32(b"123456789") == 0xcbf43926 (the CRC-32 check
	 * value); zlib.crc32(bytes(i * 7 % 251 for i in range(2**20 + 5)))
	 * == 0x9494f950, a file longer than the 1 MiB read buffer. */
	char dir[512], path[560], err[1024];
	unsigned long crc = 1;
	size_t n = (1 << 20) + 5;
	unsigned char *b = malloc(n);
	FILE *fp;

	th_scratch_dir(dir, sizeof dir, "t_util_crc");
	snprintf(path, sizeof path, "%s/check", dir);
	write_file(path, "123456789");
	CHECK(rl_file_crc32(path, &crc, err, sizeof err) == 0 &&
	    crc == 0xcbf43926UL, "crc %08lx %s", crc, err);
	write_file(path, "");
	CHECK(rl_file_crc32(path, &crc, err, sizeof err) == 0 && crc == 0,
	    "empty: %08lx", crc);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 7 % 251);
	fp = fopen(path, "wb");
	CHECK(fp && fwrite(b, 1, n, fp) == n && fclose(fp) == 0, "write");
	CHECK(rl_file_crc32(path, &crc, err, sizeof err) == 0 &&
	    crc == 0x9494f950UL, "long: %08lx %s", crc, err);
	unlink(path);
	CHECK(rl_file_crc32(path, &crc, err, sizeof err) < 0 &&
	    strstr(err, "check: No such file"), "missing: %s", err);
	rmdir(dir);
	free(b);
}

/* Shapes whose products wrap are refused from the header, by name. */
TEST(npy_shape_overflow)
{
	static const char *shapes[] = {
		"(20, 4611686018427387904)",        /* 20 * 2^62 wraps to 0 */
		"(4294967296, 4294967296)",         /* 2^64 */
		"(0, 4611686018427387904)",         /* empty, but d too large */
		"(99999999999999999999999, 1)",     /* beyond 64 bits */
	};
	char path[] = "/tmp/t_util_npyXXXXXX", err[256], want[128];
	int fd = mkstemp(path);
	Npy a;

	close(fd);
	snprintf(want, sizeof want, "%s: the header's shape is too large", path);
	for (size_t i = 0; i < RL_NELEM(shapes); i++) {
		char h[134];
		int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': "
		    "False, 'shape': %s, }", shapes[i]);
		memset(h + n, ' ', sizeof h - n - 1);
		h[sizeof h - 1] = '\n';
		FILE *fp = fopen(path, "wb");
		fwrite("\x93NUMPY\x01\x00\x86\x00", 1, 10, fp);
		fwrite(h, 1, sizeof h, fp);
		fclose(fp);
		a.data = (void *)1;
		CHECK(npy_read(path, &a, err, sizeof err) < 0 &&
		    !strncmp(err, want, strlen(want)) && !a.data,
		    "%s: got '%s'", shapes[i], err);
	}
	unlink(path);
}

TEST(npy_roundtrip)
{
	char path[] = "/tmp/t_util_npyXXXXXX", err[256];
	float x[6] = {1, 2, 3, 4, 5, 6.5f};
	int64_t shape[2] = {2, 3};
	int fd = mkstemp(path);
	Npy a;

	close(fd);
	CHECK(npy_write(path, NPY_F32, 2, shape, x, err, sizeof err) == 0,
	    "%s", err);
	CHECK(npy_read(path, &a, err, sizeof err) == 0, "%s", err);
	CHECK(a.type == NPY_F32 && a.ndim == 2 && a.shape[0] == 2 &&
	    a.shape[1] == 3, "shape");
	CHECK(a.data && !memcmp(a.data, x, sizeof x), "data");
	CHECK(npy_get(&a, 5) == 6.5, "get");
	npy_free(&a);

	/* 1-D int64 through the writer */
	int64_t lab[3] = {4, -1, 9}, one[1] = {3};
	CHECK(npy_write(path, NPY_I64, 1, one, lab, err, sizeof err) == 0,
	    "%s", err);
	CHECK(npy_read(path, &a, err, sizeof err) == 0, "%s", err);
	CHECK(a.ndim == 1 && a.shape[0] == 3 && npy_get(&a, 1) == -1, "1-D");
	npy_free(&a);

	/* a truncated file is refused */
	CHECK(truncate(path, 130) == 0, "truncate");
	CHECK(npy_read(path, &a, err, sizeof err) < 0 &&
	    strstr(err, "truncated"), "truncated accepted: %s", err);
	/* garbage is refused */
	FILE *fp = fopen(path, "wb");
	fputs("hello world, not numpy", fp);
	fclose(fp);
	CHECK(npy_read(path, &a, err, sizeof err) < 0 &&
	    strstr(err, "not a .npy"), "garbage accepted: %s", err);
	unlink(path);
}

TEST(npy_writer_tmp)
{
	char dir[512], path[560], err[256];
	float row[3] = {1, 2, 3};
	NpyWriter w;
	Npy a;
	char *tmp;

	th_scratch_dir(dir, sizeof dir, "t_util_npyw");
	snprintf(path, sizeof path, "%s/f.npy", dir);
	tmp = npy_tmp_path(path);
	/* while the rows come, only the temp file exists; then only path */
	CHECK(npy_writer_open(&w, path, NPY_F32, 3, err, sizeof err) == 0,
	    "%s", err);
	CHECK(npy_writer_append(&w, row, 1, err, sizeof err) == 0 &&
	    npy_writer_append(&w, row, 1, err, sizeof err) == 0, "%s", err);
	CHECK(access(tmp, F_OK) == 0 && access(path, F_OK) != 0,
	    "%s while writing", tmp);
	CHECK(npy_writer_close(&w, err, sizeof err) == 0, "%s", err);
	CHECK(access(tmp, F_OK) != 0 && access(path, F_OK) == 0, "closed");
	CHECK(npy_read(path, &a, err, sizeof err) == 0 && a.shape[0] == 2 &&
	    a.shape[1] == 3 && npy_get(&a, 5) == 3, "%s", err);
	npy_free(&a);
	/* abort removes the temp file and leaves the old file alone */
	CHECK(npy_writer_open(&w, path, NPY_F32, 3, err, sizeof err) == 0 &&
	    access(tmp, F_OK) == 0, "%s", err);
	npy_writer_abort(&w);
	CHECK(access(tmp, F_OK) != 0, "abort left %s", tmp);
	CHECK(npy_read(path, &a, err, sizeof err) == 0 && a.shape[0] == 2,
	    "old file: %s", err);
	npy_free(&a);
	unlink(path);
	rmdir(dir);
	free(tmp);
}

int
main(void)
{
	RUN(parse_ll);
	RUN(parse_double);
	RUN(rng_deterministic);
	RUN(rng_ranges);
	RUN(list_parse);
	RUN(list_read_file);
	RUN(write_text_atomic);
	RUN(tmp_path);
	RUN(progress_plain);
	RUN(atomic_commit);
	RUN(atomic_stream);
	RUN(atomic_full_disk);
	RUN(file_crc32);
	RUN(npy_roundtrip);
	RUN(npy_shape_overflow);
	RUN(npy_writer_tmp);
	return check_summary();
}

/*
 * t_blas: blas_init's kernel choice. The user's OPENBLAS_CORETYPE is
 * kept; otherwise the choice is calibrated once, written to the cache and
 * read from it at every later start (a cache naming another core type is
 * obeyed, which shows no second calibration ran), two starts at once
 * calibrate once, and a cache of another key is replaced. Which core type wins is not asserted: it is the
 * machine's, and make check must pass whichever it is.
 *
 * Each case runs this program again as "t_blas child", which calls
 * blas_init and prints "core origin", in an environment the case sets up
 * (a fresh XDG_CACHE_HOME under $TMP).
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/blas.h"
#include "tests/check.h"

static char self[4096], cache[4096];
static const char *cores[16];
static int ncores;

/* Run the child in the current environment: its "core origin" line. */
static int
child(char *core, char *origin)
{
	char cmd[4200], line[256];
	FILE *fp;
	int ok;

	snprintf(cmd, sizeof cmd, "'%s' child", self);
	if ((fp = popen(cmd, "r")) == NULL)
		return -1;
	ok = fgets(line, sizeof line, fp) != NULL &&
	    sscanf(line, "%63s %63s", core, origin) == 2;
	return pclose(fp) == 0 && ok ? 0 : -1;
}

/* A fresh cache directory $TMP/<name>; the cache file's path in cache. */
static void
fresh_cache(const char *name)
{
	const char *tmp = getenv("TMP");
	char dir[4096];

	snprintf(dir, sizeof dir, "%s/%s", tmp ? tmp : "/tmp", name);
	mkdir(dir, 0755);
	setenv("XDG_CACHE_HOME", dir, 1);
	strcat(dir, "/relloc");
	mkdir(dir, 0755);
	blas_cache_path(cache, sizeof cache);
	unlink(cache);
}

static int
is_core(const char *name)
{
	for (int i = 0; i < ncores; i++)
		if (strcasecmp(cores[i], name) == 0)
			return 1;
	return 0;
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	static char buf[3][2048];
	static int k;
	char *b = buf[k++ % 3];
	size_t n;

	if (fp == NULL)
		return NULL;
	n = fread(b, 1, sizeof buf[0] - 1, fp);
	b[n] = '\0';
	fclose(fp);
	return b;
}

TEST(override_kept)
{
	char core[64], origin[64];

	fresh_cache("override");
	setenv("OPENBLAS_CORETYPE", cores[0], 1);
	CHECK(child(core, origin) == 0, "child failed");
	unsetenv("OPENBLAS_CORETYPE");
	CHECK(strcasecmp(core, cores[0]) == 0, "asked %s, ran %s", cores[0],
	    core);
	CHECK(strcmp(origin, "user") == 0, "origin %s", origin);
	CHECK(access(cache, F_OK) != 0, "the override wrote %s", cache);
}

TEST(chosen_once)
{
	char core[64], origin[64], again[64], origin2[64], *text, *other;
	char first[64];
	struct stat st1, st2;

	fresh_cache("once");
	CHECK(child(core, origin) == 0, "child failed");
	CHECK(strcmp(origin, "calibrated") == 0, "origin %s", origin);
	CHECK(is_core(core), "ran %s, not one this CPU can run", core);
	text = slurp(cache);
	CHECK(text != NULL, "no cache file %s", cache);
	if (text == NULL)
		return;
	CHECK(sscanf(text, "%63s", first) == 1 && strcmp(first, core) == 0,
	    "cache says %s, ran %s", text, core);
	CHECK(stat(cache, &st1) == 0, "stat");

	CHECK(child(again, origin2) == 0, "second child failed");
	CHECK(strcmp(origin2, "cached") == 0, "second origin %s", origin2);
	CHECK(strcmp(again, core) == 0, "second run %s, first %s", again, core);
	CHECK(stat(cache, &st2) == 0 && st1.st_mtime == st2.st_mtime &&
	    st1.st_ino == st2.st_ino, "the cache was rewritten");

	/* The cache names another core type: it is obeyed, not re-timed. */
	other = (char *)cores[ncores - 1];
	if (strcasecmp(other, core) == 0)
		other = (char *)cores[ncores - 2];
	if (strcasecmp(other, core) != 0) {
		FILE *fp = fopen(cache, "w");

		if (fp == NULL) {
			CHECK(0, "%s: cannot write", cache);
			return;
		}
		fprintf(fp, "%s%s", other, strchr(text, '\n'));
		fclose(fp);
		CHECK(child(again, origin2) == 0, "third child failed");
		CHECK(strcasecmp(again, other) == 0 &&
		    strcmp(origin2, "cached") == 0, "cache says %s, ran %s (%s)",
		    other, again, origin2);
	}
}

/* Two starts at once: one calibrates, the other waits and reads it. */
TEST(concurrent_starts_once)
{
	char cmd[4200], a[64], ao[64], b[64], bo[64], line[256];
	FILE *f1, *f2;
	int ok1, ok2;

	fresh_cache("concurrent");
	snprintf(cmd, sizeof cmd, "'%s' child", self);
	f1 = popen(cmd, "r");
	f2 = popen(cmd, "r");
	CHECK(f1 != NULL && f2 != NULL, "popen");
	if (f1 == NULL || f2 == NULL)
		return;
	ok1 = fgets(line, sizeof line, f1) != NULL &&
	    sscanf(line, "%63s %63s", a, ao) == 2;
	ok2 = fgets(line, sizeof line, f2) != NULL &&
	    sscanf(line, "%63s %63s", b, bo) == 2;
	CHECK(pclose(f1) == 0 && pclose(f2) == 0 && ok1 && ok2,
	    "a child failed");
	if (!ok1 || !ok2)
		return;
	CHECK((strcmp(ao, "calibrated") == 0) + (strcmp(bo, "calibrated") ==
	    0) == 1 && (strcmp(ao, "cached") == 0 || strcmp(bo, "cached") ==
	    0), "origins %s and %s", ao, bo);
	CHECK(strcmp(a, b) == 0, "one ran %s, the other %s", a, b);
}

TEST(stale_key_replaced)
{
	char core[64], origin[64], *text;
	FILE *fp;

	fresh_cache("stale");
	if ((fp = fopen(cache, "w")) == NULL) {
		CHECK(0, "%s: cannot write", cache);
		return;
	}
	fprintf(fp, "%s\nkey: another CPU | family 0 | model 0 | OpenBLAS 0.1 "
	    "| %s\n", cores[0], cores[0]);
	fclose(fp);
	CHECK(child(core, origin) == 0, "child failed");
	CHECK(strcmp(origin, "calibrated") == 0, "origin %s", origin);
	text = slurp(cache);
	CHECK(text != NULL && strstr(text, "another CPU") == NULL,
	    "the stale key stayed: %s", text ? text : "(no file)");
}

TEST(no_reexec_no_cache)
{
	char core[64], origin[64];

	fresh_cache("noreexec");
	setenv("RL_BLAS_NO_REEXEC", "1", 1);
	CHECK(child(core, origin) == 0, "child failed");
	unsetenv("RL_BLAS_NO_REEXEC");
	CHECK(strcmp(origin, "default") == 0, "origin %s", origin);
	CHECK(access(cache, F_OK) != 0, "RL_BLAS_NO_REEXEC wrote %s", cache);

	/* no cache directory at all: OpenBLAS's own pick, nothing timed */
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "relative", 1);
	CHECK(child(core, origin) == 0, "child failed");
	CHECK(strcmp(origin, "default") == 0, "no home: origin %s", origin);
}

int
main(int argc, char **argv)
{
	ssize_t n;

	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		blas_init(argv);
		printf("%s %s\n", blas_corename(), blas_origin());
		return 0;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) < 0)
		return 1;
	self[n] = '\0';
	/* the cases set up their own environment */
	unsetenv("OPENBLAS_CORETYPE");
	unsetenv("RL_BLAS_NO_REEXEC");
	unsetenv("RL_BLAS_CHOSEN");
	ncores = blas_coretypes(cores, 16);
	if (ncores < 2) {
		printf("ok skipped: fewer than 2 core types to choose from\n");
		return check_summary();
	}
	RUN(override_kept);
	RUN(chosen_once);
	RUN(concurrent_starts_once);
	RUN(stale_key_replaced);
	RUN(no_reexec_no_cache);
	return check_summary();
}

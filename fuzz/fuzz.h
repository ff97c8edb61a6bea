/*
 * fuzz.h: what the harnesses fuzz/fz_*.c share (not a harness).
 *
 * Each harness defines LLVMFuzzerTestOneInput, the libFuzzer entry point:
 * `make fuzz` links it with libFuzzer under clang with ASan and UBSan;
 * the normal build links it with fuzz/replay.c, which feeds it the
 * committed seeds and crashes (make check). A harness may abort() when
 * the parser breaks a promise its header makes (an accepted input that
 * is not what it says); ASan and UBSan catch the rest.
 *
 * Parsers that read files get the bytes through fuzz_file: a file in a
 * scratch directory of this process, removed at exit.
 */
#ifndef RL_FUZZ_H
#define RL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_[64];

static inline void
fuzz_cleanup_(void)
{
	char cmd[96];

	if (fuzz_dir_[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir_);
	}
}

/* The scratch directory (on /dev/shm when there is one: no disk I/O). */
static inline const char *
fuzz_dir(void)
{
	if (!fuzz_dir_[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
		    "/tmp";
		snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/rl-fuzz-XXXXXX", base);
		if (!mkdtemp(fuzz_dir_)) {
			perror("fuzz: mkdtemp");
			exit(2);
		}
		atexit(fuzz_cleanup_);
	}
	return fuzz_dir_;
}

/* The path of name in the scratch directory (a static buffer). */
static inline const char *
fuzz_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
	return path;
}

/* Write n bytes at d to the scratch file name; its path. */
static inline const char *
fuzz_file(const char *name, const void *d, size_t n)
{
	const char *path = fuzz_path(name);
	FILE *fp = fopen(path, "wb");

	if (!fp || fwrite(d, 1, n, fp) != n || fclose(fp)) {
		perror(path);
		exit(2);
	}
	return path;
}

/* Stop with a message when a harness's own check fails. */
#define FUZZ_ASSERT(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s)\n", __FILE__, __LINE__, #c); \
	abort(); } } while (0)

#endif

/* t_idx: IDX reading on crafted files, plain and gzipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "common/idx.h"
#include "tests/check.h"

static char err[512], path[512];

/* Write an IDX file: magic type/ndim, dims, then ndata bytes of data. */
static void
write_idx(int gz, int type, int ndim, const unsigned *dim, size_t ndata)
{
	unsigned char *b = malloc(4 + 4 * ndim + ndata);
	size_t n = 0;

	b[n++] = 0;
	b[n++] = 0;
	b[n++] = type;
	b[n++] = ndim;
	for (int i = 0; i < ndim; i++) {
		b[n++] = dim[i] >> 24;
		b[n++] = dim[i] >> 16;
		b[n++] = dim[i] >> 8;
		b[n++] = dim[i];
	}
	for (size_t i = 0; i < ndata; i++)
		b[n++] = i * 7;
	if (gz) {
		gzFile f = gzopen(path, "wb");
		gzwrite(f, b, n);
		gzclose(f);
	} else {
		FILE *f = fopen(path, "wb");
		fwrite(b, 1, n, f);
		fclose(f);
	}
	free(b);
}

TEST(good)
{
	unsigned dim[3] = { 5, 3, 4 };
	Idx x;

	for (int gz = 0; gz < 2; gz++) {
		write_idx(gz, 0x08, 3, dim, 60);
		CHECK(idx_read(&x, path, 3, err, sizeof err) == 0, "%s", err);
		CHECK(x.ndim == 3 && x.dim[0] == 5 && x.dim[1] == 3 &&
		    x.dim[2] == 4 && x.n == 60, "dims");
		CHECK(x.data[59] == (unsigned char)(59 * 7), "data");
		idx_free(&x);
	}
}

TEST(refused)
{
	unsigned dim[3] = { 5, 3, 4 }, zero[1] = { 0 };
	Idx x;

	write_idx(1, 0x08, 3, dim, 59);
	CHECK(idx_read(&x, path, 3, err, sizeof err) < 0 &&
	    strstr(err, "truncated: 59 of 60"), "short data: %s", err);
	CHECK(x.data == NULL, "empty after failure");
	write_idx(1, 0x08, 3, dim, 61);
	CHECK(idx_read(&x, path, 3, err, sizeof err) < 0 &&
	    strstr(err, "trailing"), "long data: %s", err);
	write_idx(0, 0x0D, 3, dim, 60);
	CHECK(idx_read(&x, path, 3, err, sizeof err) < 0 &&
	    strstr(err, "0x0d"), "float type: %s", err);
	write_idx(0, 0x08, 3, dim, 60);
	CHECK(idx_read(&x, path, 1, err, sizeof err) < 0 &&
	    strstr(err, "3 dimensions, want 1"), "wrong rank: %s", err);
	write_idx(0, 0x08, 1, zero, 0);
	CHECK(idx_read(&x, path, 1, err, sizeof err) < 0 &&
	    strstr(err, "bad dimension"), "zero dim: %s", err);
	FILE *f = fopen(path, "w");
	fputs("\x1f\x8b not really gzip, nor IDX", f);
	fclose(f);
	CHECK(idx_read(&x, path, 0, err, sizeof err) < 0, "garbage");
	f = fopen(path, "w");
	fputs("P5 2 2 255\n", f);
	fclose(f);
	CHECK(idx_read(&x, path, 0, err, sizeof err) < 0 &&
	    strstr(err, "bad magic"), "not IDX: %s", err);
	CHECK(idx_read(&x, "/nonexistent/x.gz", 0, err, sizeof err) < 0 &&
	    strstr(err, "/nonexistent/x.gz"), "missing: %s", err);
}

int
main(void)
{
	const char *tmp = getenv("TMP");

	snprintf(path, sizeof path, "%s/t_idx.%ld", tmp ? tmp : "/tmp",
	    (long)getpid());
	RUN(good);
	RUN(refused);
	unlink(path);
	return check_summary();
}

/*
 * t_trainlog: metrics.jsonl round trip (a NaN loss becomes null and reads
 * back as NaN), a resumed log drops the lines after its checkpoint, the
 * progress text, and curves.png drawn by the real gnuplot.
 */
#include <sys/stat.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/trainlog.h"
#include "common/util.h"
#include "tests/check.h"

static char dir[] = "/tmp/t_trainlog_XXXXXX";

static void
append(TrainLog *l, uint64_t step, double loss)
{
	TrainMetrics m = { step, step / 10, 0.1, loss, 0.25, 100, 0.01, 2,
	    step * 0.5 };
	char err[256];

	CHECK(trainlog_append(l, &m, err, sizeof(err)) == 0, "%s", err);
}

TEST(roundtrip_resume)
{
	TrainLog *l;
	TrainMetrics *m;
	size_t n;
	char err[256];

	CHECK(trainlog_open(&l, dir, 0, err, sizeof(err)) == 0, "%s", err);
	for (uint64_t s = 1; s <= 30; s++)
		append(l, s, 2.0 - s * 0.01);
	append(l, 31, NAN);
	CHECK(trainlog_close(l, err, sizeof(err)) == 0, "%s", err);
	CHECK(trainlog_read(dir, &m, &n, err, sizeof(err)) == 0, "%s", err);
	CHECK(n == 31, "%zu lines", n);
	if (n == 31) {
		CHECK(m[4].step == 5 && m[4].epoch == 0 && m[4].lr == 0.1 &&
		    fabs(m[4].loss - 1.95) < 1e-9 && m[4].acc == 0.25,
		    "line 5");
		CHECK(isnan(m[30].loss), "NaN loss read as %g", m[30].loss);
	}
	free(m);
	/* resume from step 20: 20 lines kept, then appended */
	CHECK(trainlog_open(&l, dir, 20, err, sizeof(err)) == 0, "%s", err);
	append(l, 21, 1.0);
	trainlog_close(l, err, sizeof(err));
	CHECK(trainlog_read(dir, &m, &n, err, sizeof(err)) == 0, "%s", err);
	CHECK(n == 21 && m[20].step == 21 && m[20].loss == 1.0 &&
	    m[19].step == 20, "%zu lines after resume", n);
	free(m);
}

TEST(plot)
{
	char err[512], path[600], *tmp;
	unsigned char magic[8] = {0};
	FILE *fp;

	CHECK(trainlog_plot(dir, err, sizeof(err)) == 0, "%s", err);
	snprintf(path, sizeof(path), "%s/%s", dir, TRAINLOG_PLOT);
	fp = fopen(path, "rb");
	CHECK(fp != NULL, "no %s", path);
	if (fp) {
		CHECK(fread(magic, 1, 8, fp) == 8 &&
		    !memcmp(magic, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
		fclose(fp);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, TRAINLOG_PLOT);
	tmp = rl_tmp_path(path);
	CHECK(access(tmp, F_OK) != 0, "temp file %s left", tmp);
	/* a directory in the PNG's way: drawn, not renamed, nothing left */
	unlink(path);
	mkdir(path, 0755);
	CHECK(trainlog_plot(dir, err, sizeof(err)) < 0 &&
	    strstr(err, TRAINLOG_PLOT ": Is a directory"), "'%s'", err);
	CHECK(access(tmp, F_OK) != 0, "temp file %s left on failure", tmp);
	rmdir(path);
	free(tmp);
}

TEST(format)
{
	TrainMetrics m = { 120, 1, 0.1, 2.07123, 0.141, 312.4, 0.012, 1, 9 };
	char buf[200];

	trainlog_format(buf, sizeof(buf), &m, 7000, 3723);
	CHECK(!strcmp(buf, "step 120/7000 ep 2 loss 2.0712 acc 14.1% "
	    "312 pairs/s wait 1% ETA 1:02:03"), "%s", buf);
}

int
main(void)
{
	char cmd[200];

	if (!mkdtemp(dir))
		return 1;
	RUN(roundtrip_resume);
	RUN(plot);
	RUN(format);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
	return check_summary();
}

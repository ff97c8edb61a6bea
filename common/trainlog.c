/*
 * trainlog: metrics.jsonl, the progress line's text and the gnuplot PNG.
 * See trainlog.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/trainlog.h"
#include "common/util.h"

struct TrainLog {
	FILE *fp;
	char path[4096];
};

static void
join(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* One value: JSON has no NaN or infinity; they are written as null. */
static void
put_num(FILE *fp, const char *key, double v, const char *fmt)
{
	fprintf(fp, ",\"%s\":", key);
	if (isfinite(v))
		fprintf(fp, fmt, v);
	else
		fputs("null", fp);
}

static double
get_num(json_t *o, const char *key, int *bad)
{
	json_t *v = json_object_get(o, key);

	if (json_is_null(v))
		return NAN;
	if (!json_is_number(v)) {
		*bad = 1;
		return 0;
	}
	return json_number_value(v);
}

/* Parse one line into m; 0 or -1. */
static int
parse_line(const char *line, TrainMetrics *m)
{
	json_t *o = json_loads(line, 0, NULL);
	int bad = 0;

	if (!json_is_object(o) || !json_is_integer(json_object_get(o, "step"))) {
		json_decref(o);
		return -1;
	}
	m->step = (uint64_t)json_integer_value(json_object_get(o, "step"));
	m->epoch = (uint64_t)get_num(o, "epoch", &bad);
	m->lr = get_num(o, "lr", &bad);
	m->loss = get_num(o, "loss", &bad);
	m->acc = get_num(o, "acc", &bad);
	m->pairs_s = get_num(o, "pairs_s", &bad);
	m->data_wait = get_num(o, "data_wait", &bad);
	m->grad_norm = get_num(o, "grad_norm", &bad);
	m->time = get_num(o, "time", &bad);
	json_decref(o);
	return bad ? -1 : 0;
}

int
trainlog_read(const char *dir, TrainMetrics **out, size_t *n, char *err,
    size_t errlen)
{
	char path[4096], *line = NULL;
	size_t cap = 0, linecap = 0, lineno = 0;
	TrainMetrics *m = NULL;
	FILE *fp;

	*out = NULL;
	*n = 0;
	join(path, sizeof(path), dir, TRAINLOG_METRICS);
	if (!(fp = fopen(path, "r"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &linecap, fp) > 0) {
		lineno++;
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			m = erealloc(m, cap * sizeof(*m));
		}
		if (parse_line(line, &m[*n]) < 0) {
			snprintf(err, errlen, "%s: line %zu is not a metrics "
			    "record", path, lineno);
			free(line);
			free(m);
			fclose(fp);
			*n = 0;
			return -1;
		}
		++*n;
	}
	free(line);
	fclose(fp);
	*out = m;
	return 0;
}

/* Keep the lines of path with step <= last (rewritten atomically); lines
 * that do not parse are dropped too. */
static int
truncate_log(const char *path, uint64_t last, char *err, size_t errlen)
{
	char *line = NULL;
	size_t linecap = 0;
	FILE *in, *out;
	RlAtomic a;

	if (!(in = fopen(path, "r")))
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s",
		    path, strerror(errno)), -1);
	if (!(out = rl_atomic_open(&a, path, err, errlen))) {
		fclose(in);
		return -1;
	}
	while (getline(&line, &linecap, in) > 0) {
		TrainMetrics m;

		if (parse_line(line, &m) == 0 && m.step <= last)
			fputs(line, out);
	}
	free(line);
	fclose(in);
	return rl_atomic_close(&a, err, errlen);
}

int
trainlog_open(TrainLog **out, const char *dir, uint64_t resume_step,
    char *err, size_t errlen)
{
	TrainLog *l = ecalloc(1, sizeof(*l));

	join(l->path, sizeof(l->path), dir, TRAINLOG_METRICS);
	if (resume_step > 0 &&
	    truncate_log(l->path, resume_step, err, errlen) < 0) {
		free(l);
		return -1;
	}
	if (!(l->fp = fopen(l->path, resume_step > 0 ? "a" : "w"))) {
		snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
		free(l);
		return -1;
	}
	*out = l;
	return 0;
}

int
trainlog_append(TrainLog *l, const TrainMetrics *m, char *err,
    size_t errlen)
{
	fprintf(l->fp, "{\"step\":%llu", (unsigned long long)m->step);
	fprintf(l->fp, ",\"epoch\":%llu", (unsigned long long)m->epoch);
	put_num(l->fp, "lr", m->lr, "%.9g");
	put_num(l->fp, "loss", m->loss, "%.6f");
	put_num(l->fp, "acc", m->acc, "%.6f");
	put_num(l->fp, "pairs_s", m->pairs_s, "%.2f");
	put_num(l->fp, "data_wait", m->data_wait, "%.4f");
	put_num(l->fp, "grad_norm", m->grad_norm, "%.6g");
	put_num(l->fp, "time", m->time, "%.3f");
	fputs("}\n", l->fp);
	if (fflush(l->fp) || ferror(l->fp)) {
		snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
		return -1;
	}
	return 0;
}

int
trainlog_close(TrainLog *l, char *err, size_t errlen)
{
	int rc = 0;

	if (!l)
		return 0;
	if (fclose(l->fp)) {
		snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
		rc = -1;
	}
	free(l);
	return rc;
}

// ----------------------------------------------------------------------------
// the plot

/* s as a gnuplot single-quoted string body ('' for a quote). */
static void
gp_quote(FILE *fp, const char *s)
{
	fputc('\'', fp);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', fp);
		fputc(*s, fp);
	}
	fputc('\'', fp);
}

/* s as a shell single-quoted word. */
static void
sh_quote(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	if (o < len)
		buf[o++] = '\'';
	for (; *s && o + 5 < len; s++) {
		if (*s == '\'') {
			memcpy(buf + o, "'\\''", 4);
			o += 4;
		} else
			buf[o++] = *s;
	}
	if (o + 2 <= len) {
		buf[o++] = '\'';
		buf[o] = '\0';
	} else if (len)
		buf[len - 1] = '\0';
}

static void
gp_value(FILE *fp, double v)
{
	if (isfinite(v))
		fprintf(fp, " %.9g", v);
	else
		fputs(" NaN", fp);
}

static int
write_script(const char *script, const char *png, const char *title,
    const TrainMetrics *m, size_t n, int cairo)
{
	FILE *fp = fopen(script, "w");
	const char *style = n < 40 ? "linespoints" : "lines";
	double lrmax = 0;

	if (!fp)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (isfinite(m[i].lr) && m[i].lr > lrmax)
			lrmax = m[i].lr;
	fprintf(fp, "set terminal %s size 1000,720 noenhanced\n",
	    cairo ? "pngcairo" : "png");
	fputs("set output ", fp);
	gp_quote(fp, png);
	fputs("\n$d << EOD\n", fp);
	for (size_t i = 0; i < n; i++) {
		fprintf(fp, "%llu", (unsigned long long)m[i].step);
		gp_value(fp, m[i].loss);
		gp_value(fp, m[i].acc * 100);
		gp_value(fp, m[i].lr);
		fputc('\n', fp);
	}
	fputs("EOD\nset multiplot layout 2,1 title ", fp);
	gp_quote(fp, title);
	fprintf(fp, "\nset grid\nset key top right opaque\nset xlabel 'step'\n"
	    "set ylabel 'loss'\nset ytics nomirror\n"
	    "set y2label 'learning rate'\nset y2tics\nset format y2 '%%.2g'\n"
	    "set y2range [0:%.9g]\n"
	    "plot $d using 1:2 with %s lw 2 title 'loss', "
	    "$d using 1:4 axes x1y2 with lines dt 2 lc rgb 'gray50' "
	    "title 'lr'\n"
	    "unset y2label\nunset y2tics\nset ytics mirror\n"
	    "set ylabel 'pretext accuracy (%%)'\nset yrange [0:100]\n"
	    "plot $d using 1:3 with %s lw 2 lc rgb 'dark-green' "
	    "title 'accuracy', 12.5 with lines dt 3 lc rgb 'red' "
	    "title 'chance (12.5%%)'\n"
	    "unset multiplot\nset output\n", lrmax > 0 ? 1.15 * lrmax : 1,
	    style, style);
	return fclose(fp) ? -1 : 0;
}

/* Run gnuplot on script; 0, or -1 with its first line of complaint. */
static int
run_gnuplot(const char *script, char *err, size_t errlen)
{
	char cmd[9000], q[8400], line[512];
	FILE *p;
	int st;

	sh_quote(q, sizeof(q), script);
	snprintf(cmd, sizeof(cmd), "gnuplot %s 2>&1", q);
	if (!(p = popen(cmd, "r"))) {
		snprintf(err, errlen, "gnuplot: %s", strerror(errno));
		return -1;
	}
	snprintf(err, errlen, "gnuplot failed");
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (*line && !strncmp(err, "gnuplot failed", 14))
			snprintf(err, errlen, "gnuplot: %s", line);
	}
	st = pclose(p);
	return st == 0 ? 0 : -1;
}

int
trainlog_plot(const char *dir, char *err, size_t errlen)
{
	char png[4096], script[4200];
	TrainMetrics *m;
	RlAtomic a;
	size_t n;
	int rc;

	if (trainlog_read(dir, &m, &n, err, errlen) < 0)
		return -1;
	if (n == 0) {
		snprintf(err, errlen, "%s/%s: no metrics yet", dir,
		    TRAINLOG_METRICS);
		free(m);
		return -1;
	}
	join(png, sizeof(png), dir, TRAINLOG_PLOT);
	snprintf(script, sizeof(script), "%s/.curves.gp", dir);
	// gnuplot writes the temp file by name; the close makes it the PNG
	if (!rl_atomic_open(&a, png, err, errlen)) {
		free(m);
		return -1;
	}
	rc = -1;
	for (int cairo = 1; cairo >= 0 && rc < 0; cairo--) {
		if (write_script(script, a.tmp, dir, m, n, cairo) < 0) {
			snprintf(err, errlen, "%s: %s", script,
			    strerror(errno));
			break;
		}
		rc = run_gnuplot(script, err, errlen);
	}
	unlink(script);
	free(m);
	if (rc == 0)
		return rl_atomic_close(&a, err, errlen);
	rl_atomic_abort(&a);
	return -1;
}

// ----------------------------------------------------------------------------
// the progress line

void
trainlog_format(char *buf, size_t len, const TrainMetrics *m,
    uint64_t total, double eta)
{
	int o = snprintf(buf, len, "step %llu/%llu ep %llu loss %.4f acc "
	    "%.1f%% %.0f pairs/s wait %.0f%%", (unsigned long long)m->step,
	    (unsigned long long)total, (unsigned long long)m->epoch + 1,
	    m->loss, 100 * m->acc, m->pairs_s, 100 * m->data_wait);

	if (eta >= 0 && o > 0 && (size_t)o < len) {
		long s = (long)eta;

		snprintf(buf + o, len - o, " ETA %ld:%02ld:%02ld", s / 3600,
		    s / 60 % 60, s % 60);
	}
}

// ----------------------------------------------------------------------------
// the tally of steps

void
trainlog_tally_init(TrainTally *t, uint64_t start)
{
	memset(t, 0, sizeof(*t));
	t->start = start;
}

void
trainlog_tally_add(TrainTally *t, uint64_t step, double loss, long correct,
    long pairs, double grad_norm, double lr, double wall, double wait)
{
	int k = (int)(step % TRAINLOG_CHANCE_WINDOW);

	t->steps++;
	t->loss += loss;
	t->correct += correct;
	t->pairs += pairs;
	t->wall += wall;
	t->wait += wait;
	t->grad_norm = grad_norm;
	t->lr = lr;
	t->win_sum += correct - t->win[k];
	t->win[k] = correct;
	if (step - t->start <= TRAINLOG_CHANCE_WINDOW)
		t->win_pairs += pairs;
}

int
trainlog_chance(TrainTally *t, uint64_t step, uint64_t chance_steps,
    double lr, char *msg, size_t len)
{
	double acc;

	if (t->warned || !chance_steps || step < chance_steps ||
	    t->win_pairs <= 0)
		return 0;
	acc = (double)t->win_sum / t->win_pairs;
	if (acc >= TRAINLOG_CHANCE + 0.025)
		return 0;
	snprintf(msg, len, "warning: pretext accuracy %.1f%% over the last "
	    "%llu steps is still at chance (12.5%%) after %llu steps: the "
	    "network learns nothing (check the records' patches, the "
	    "learning rate, --lr %g)", 100.0 * acc,
	    (unsigned long long)RL_MIN(step - t->start,
	    TRAINLOG_CHANCE_WINDOW), (unsigned long long)step, lr);
	t->warned = 1;
	return 1;
}

void
trainlog_tally_metrics(TrainTally *t, TrainMetrics *m, int reset)
{
	m->lr = t->lr;
	m->loss = t->steps ? t->loss / t->steps : 0;
	m->acc = t->pairs ? (double)t->correct / t->pairs : 0;
	m->pairs_s = t->wall > 0 ? t->pairs / t->wall : 0;
	m->data_wait = t->wall > 0 ? t->wait / t->wall : 0;
	m->grad_norm = t->grad_norm;
	if (reset) {
		t->steps = 0;
		t->loss = t->wall = t->wait = 0;
		t->correct = t->pairs = 0;
	}
}

/*
 * blas: OpenBLAS set-up (core type, threads) and the threaded sgemm.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>
#include <libxsmm.h>

#include "common/blas.h"
#include "common/util.h"

extern char **environ;

/* Floats of A and C rows per product call in the row split. */
#define BLOCK_FLOATS (256 * 1024)
#define RL_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

/* Seconds each calibration shape is timed for (best of the runs). */
#define CAL_SECONDS 0.06
/* A second round re-times the core types within this share of the best. */
#define CAL_AGAIN 0.85

/*
 * libxsmm's kernels (gemm_xsmm): columns and rows of C per call, and the
 * floats of B a panel of columns keeps in the L2 cache (half of a Zen 4's).
 */
#define XS_COLS 64
#define XS_ROWS 28
#define XS_PANEL_FLOATS ((size_t)128 * 1024)
/*
 * The most floats of A gemm_xsmm takes: every panel reads all of A again,
 * and beyond this OpenBLAS's blocking wins (2048^3 split in two halves,
 * 1024 x 2048 of A each: 98 GFLOP/s on libxsmm, 200 on OpenBLAS).
 */
#define XS_A_FLOATS ((size_t)1024 * 1024)

static int blas_single;  /* OpenBLAS already set to one thread */
static int use_xsmm = 1; /* gemm_xsmm takes the products it can */
static char origin[64] = "default";

static void
blas_single_thread(void)
{
#pragma omp critical(blas_single)
	if (!blas_single) {
		openblas_set_num_threads(1);
		blas_single = 1;
	}
}

// ----------------------------------------------------------------------
// The CPU and the core types it can run.

/*
 * OpenBLAS 0.3.21's x86-64 core types worth timing and the CPU flags each
 * needs (its kernels would fault without them: OpenBLAS does not check a
 * forced OPENBLAS_CORETYPE). Older ones (Nehalem and before) have no AVX.
 */
static const struct {
	const char *name;
	const char *flags;   /* space-separated, all required */
} coretypes[] = {
	{"Sandybridge", "avx"},
	{"Haswell", "avx2 fma"},
	{"Zen", "avx2 fma"},
	{"SkylakeX", "avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl"},
	{"Cooperlake", "avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl "
	    "avx512_bf16"},
};
#define NCORETYPES ((int)(sizeof coretypes / sizeof coretypes[0]))

typedef struct {
	char model[128];
	int family, model_no;
	char *flags;         /* " flag flag ... " */
} Cpu;

/* The value of a "key\t: value" line of /proc/cpuinfo, newline dropped. */
static const char *
cpuinfo_value(const char *line, const char *key)
{
	size_t n = strlen(key);
	const char *v;

	if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t' &&
	    line[n] != ':'))
		return NULL;
	if ((v = strchr(line, ':')) == NULL)
		return NULL;
	for (v++; *v == ' ' || *v == '\t'; v++)
		;
	return v;
}

/* The first processor of /proc/cpuinfo; fields it lacks stay empty. */
static void
cpu_read(Cpu *c)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	const char *v;

	memset(c, 0, sizeof *c);
	c->family = c->model_no = -1;
	if ((fp = fopen("/proc/cpuinfo", "r")) == NULL)
		return;
	while ((len = getline(&line, &cap, fp)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			break;   /* end of the first processor */
		if ((v = cpuinfo_value(line, "model name")) != NULL)
			snprintf(c->model, sizeof c->model, "%s", v);
		else if ((v = cpuinfo_value(line, "cpu family")) != NULL)
			c->family = atoi(v);
		else if ((v = cpuinfo_value(line, "model")) != NULL)
			c->model_no = atoi(v);
		else if ((v = cpuinfo_value(line, "flags")) != NULL &&
		    c->flags == NULL) {
			size_t n = strlen(v) + 3;

			c->flags = emalloc(n);
			snprintf(c->flags, n, " %s ", v);
		}
	}
	free(line);
	fclose(fp);
}

/* Whether the CPU has every flag of the space-separated list. */
static int
cpu_has(const Cpu *c, const char *list)
{
	char want[64];
	const char *p = list;

	if (c->flags == NULL)
		return 0;
	while (*p) {
		size_t n = strcspn(p, " ");

		snprintf(want, sizeof want, " %.*s ", (int)n, p);
		if (strstr(c->flags, want) == NULL)
			return 0;
		p += n;
		p += strspn(p, " ");
	}
	return 1;
}

int
blas_coretypes(const char **names, int max)
{
	Cpu c;
	int n = 0;

	cpu_read(&c);
	for (int i = 0; i < NCORETYPES; i++)
		if (cpu_has(&c, coretypes[i].flags) && n < max)
			names[n++] = coretypes[i].name;
	free(c.flags);
	return n;
}

void
blas_cpu(char *buf, size_t len)
{
	Cpu c;

	cpu_read(&c);
	snprintf(buf, len, "%s, family %d, model %d",
	    c.model[0] ? c.model : "unknown CPU", c.family, c.model_no);
	free(c.flags);
}

/* "OpenBLAS 0.3.21": the first two words of the loaded library's config. */
static void
openblas_version(char *buf, size_t len)
{
	const char *cfg = openblas_get_config();
	size_t n = 0;

	if (cfg != NULL) {
		n = strcspn(cfg, " ");
		n += strspn(cfg + n, " ");
		n += strcspn(cfg + n, " ");
	}
	snprintf(buf, len, "%.*s", (int)n, cfg ? cfg : "");
}

// ----------------------------------------------------------------------
// Timing sgemm shapes.

/*
 * The calibration's shapes: the products a ResNet-50 step spends its time
 * in, at 144 patches of 64x64 (rows of C = pixels of the batch, columns =
 * output channels, K = input channels x kernel cells).
 */
const BlasShape blas_shapes[] = {
	{"3x3 conv by im2col, 64 ch", 0, 0, 12544, 64, 576, 0},
	{"1x1 conv, 64 -> 256 ch", 0, 0, 12544, 256, 64, 0},
	{"1x1 conv, 1024 -> 256 ch", 0, 0, 3136, 256, 1024, 0},
	{"3x3 weight gradient, 64 ch", 1, 0, 576, 64, 12544, 0},
	{"Winograd block, 64 ch, 16 per thread", 0, 0, 128, 64, 64, 1},
};
const int blas_nshapes = (int)(sizeof blas_shapes / sizeof blas_shapes[0]);

/* One timed unit of shape s: the product, or for a serial shape 16 of
 * them on each thread (c then holds a result per thread). */
static void
shape_run(const BlasShape *s, const float *a, const float *b, float *c,
    float *scr)
{
	int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;

	if (!s->serial) {
		blas_gemm(s->ta, s->tb, s->M, s->N, s->K, a, lda, b, ldb, 0.0f,
		    c, s->N, scr);
		return;
	}
#pragma omp parallel
	{
		float *ct = c + (size_t)omp_get_thread_num() * s->M * s->N;

		for (int r = 0; r < 16; r++)
			blas_gemm_serial(s->ta, s->tb, s->M, s->N, s->K, a, lda,
			    b, ldb, 0.0f, ct, s->N);
	}
}

double
blas_rate(const BlasShape *s, double seconds, double *cpu)
{
	int nt = s->serial ? blas_threads() : 1;
	size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N;
	size_t nc = (size_t)s->M * s->N * nt;
	float *a = emalloc_aligned(na * sizeof *a);
	float *b = emalloc_aligned(nb * sizeof *b);
	float *c = emalloc_aligned(nc * sizeof *c);
	float *scr = emalloc_aligned((blas_gemm_scratch(s->M, s->N) + 1) *
	    sizeof *scr);
	double best = 1e30, bestc = 1e30, t0, c0, dt, start;
	double flop = 2.0 * s->M * s->N * s->K * (s->serial ? 16 * nt : 1);
	int reps = 0;

	for (size_t i = 0; i < na; i++)
		a[i] = (float)(i % 13) * 0.01f - 0.06f;
	for (size_t i = 0; i < nb; i++)
		b[i] = (float)(i % 7) * 0.02f - 0.06f;
	shape_run(s, a, b, c, scr);   /* warm-up: pages, OpenBLAS's buffers */
	start = now_seconds();
	do {
		t0 = now_seconds();
		c0 = cpu_seconds();
		shape_run(s, a, b, c, scr);
		dt = now_seconds() - t0;
		best = dt < best ? dt : best;
		dt = cpu_seconds() - c0;
		bestc = dt < bestc ? dt : bestc;
	} while (++reps < 3 || now_seconds() - start < seconds);
	free(a);
	free(b);
	free(c);
	free(scr);
	if (cpu != NULL)
		*cpu = flop / (bestc / blas_threads()) / 1e9;
	return flop / best / 1e9;
}

double
blas_score(double seconds, double *rates, double *cpu)
{
	double flop = 0, t = 0, tc = 0;

	for (int i = 0; i < blas_nshapes; i++) {
		const BlasShape *s = &blas_shapes[i];
		double f = 2.0 * s->M * s->N * s->K / 1e9 * (s->serial ? 16 *
		    blas_threads() : 1), rc;
		double r = blas_rate(s, seconds, &rc);

		if (rates != NULL)
			rates[i] = r;
		flop += f;
		t += f / r;
		tc += f / rc;
	}
	if (cpu != NULL)
		*cpu = flop / tc;
	return flop / t;
}

// ----------------------------------------------------------------------
// Calibration: one child process per core type.

/*
 * The child's part: this process was started by calibrate_one with
 * OPENBLAS_CORETYPE set; if OpenBLAS took it, print the score and exit.
 */
static void
calibrate_child(void)
{
	const char *want = getenv("OPENBLAS_CORETYPE");
	const char *got = openblas_get_corename();
	double cpu;

	if (want == NULL || got == NULL || strcasecmp(want, got) != 0)
		_exit(3);    /* an unknown name: OpenBLAS chose for itself */
	blas_single_thread();
	use_xsmm = 0;        /* time OpenBLAS's kernels on every shape */
	blas_score(CAL_SECONDS, NULL, &cpu);
	printf("%.3f\n", cpu);
	fflush(stdout);
	_exit(0);
}

/* Whether environment entry e sets variable name. */
static int
env_is(const char *e, const char *name)
{
	size_t n = strlen(name);

	return strncmp(e, name, n) == 0 && e[n] == '=';
}

/*
 * Run this program again as a calibration child with core type `core`
 * (argv as given: the child stops inside blas_init) and return its score
 * in GFLOP/s, or 0 when it could not run that core type.
 */
static double
calibrate_one(char **argv, const char *core)
{
	size_t n = 0;
	char **env, corevar[64];
	posix_spawn_file_actions_t fa;
	int fd[2], st, ok;
	pid_t pid;
	double r = 0;
	FILE *fp;

	for (char **e = environ; *e; e++)
		n++;
	env = emalloc((n + 4) * sizeof *env);
	n = 0;
	for (char **e = environ; *e; e++)
		if (!env_is(*e, "OPENBLAS_CORETYPE") &&
		    !env_is(*e, "RL_BLAS_CHOSEN"))
			env[n++] = *e;
	snprintf(corevar, sizeof corevar, "OPENBLAS_CORETYPE=%s", core);
	env[n++] = corevar;
	env[n++] = "RL_BLAS_CALIBRATING=1";
	if (getenv("OMP_WAIT_POLICY") == NULL && getenv("GOMP_SPINCOUNT") ==
	    NULL)
		env[n++] = "OMP_WAIT_POLICY=passive";
	env[n] = NULL;
	if (pipe(fd) != 0) {
		free(env);
		return 0;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
	posix_spawn_file_actions_addclose(&fa, fd[0]);
	posix_spawn_file_actions_addclose(&fa, fd[1]);
	fflush(NULL);
	ok = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env) == 0;
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(fd[1]);
	if ((fp = fdopen(fd[0], "r")) == NULL) {
		close(fd[0]);
	} else {
		if (ok && fscanf(fp, "%lf", &r) != 1)
			r = 0;
		fclose(fp);
	}
	if (ok) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			r = 0;
	}
	return ok ? r : 0;
}

/*
 * Time every core type in names[0..n) (twice for the close ones) and
 * return the index of the fastest; rates[i] gets each score.
 */
static int
calibrate(char **argv, const char **names, int n, double *rates)
{
	int best = 0;

	for (int i = 0; i < n; i++)
		rates[i] = calibrate_one(argv, names[i]);
	for (int i = 1; i < n; i++)
		if (rates[i] > rates[best])
			best = i;
	/* a second look at the close ones: a busy machine is noisy */
	for (int i = 0; i < n; i++)
		if (rates[i] >= CAL_AGAIN * rates[best] && rates[i] > 0) {
			double r = calibrate_one(argv, names[i]);

			if (r > rates[i])
				rates[i] = r;
		}
	for (int i = 0; i < n; i++)
		if (rates[i] > rates[best])
			best = i;
	return best;
}

// ----------------------------------------------------------------------
// The cache of choices, one file per CPU model and OpenBLAS version.

/* The directory of the cache ($XDG_CACHE_HOME/relloc, ~/.cache/relloc). */
static int
cache_dir(char *buf, size_t len, int create)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(buf, len, "%s/.cache", home);
	else
		return -1;
	if (n < 0 || (size_t)n + sizeof "/relloc" > len)
		return -1;
	if (create && mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	strcat(buf, "/relloc");
	if (create && mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * The cache key: what the choice depends on. The CPU model (name, family,
 * model), the OpenBLAS release, and the core types it can run (a virtual
 * machine may hide AVX-512 from a CPU that has it).
 */
static void
cache_key(char *key, size_t len, const Cpu *c, const char **names, int n)
{
	char ver[64];
	size_t k;

	openblas_version(ver, sizeof ver);
	k = (size_t)snprintf(key, len, "%s | family %d | model %d | %s |",
	    c->model[0] ? c->model : "unknown CPU", c->family, c->model_no,
	    ver[0] ? ver : "OpenBLAS ?");
	for (int i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(key + k, len - k, " %s", names[i]);
}

/* The cache file of key in dir: dir/openblas-coretype-<FNV-1a of key>. */
static void
cache_file(char *buf, size_t len, const char *dir, const char *key)
{
	uint64_t h = 14695981039346656037ULL;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(buf, len, "%s/openblas-coretype-%016llx", dir,
	    (unsigned long long)h);
}

/*
 * The core type the cache at path holds for key, as an index into
 * names[0..n), or -1 (no file, another key, a name not in names).
 */
static int
cache_read(const char *path, const char *key, const char **names, int n)
{
	FILE *fp = fopen(path, "r");
	char line[1024], keyline[1024];
	int found = -1;

	if (fp == NULL)
		return -1;
	if (fgets(line, sizeof line, fp) != NULL &&
	    fgets(keyline, sizeof keyline, fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		keyline[strcspn(keyline, "\n")] = '\0';
		if (strncmp(keyline, "key: ", 5) == 0 &&
		    strcmp(keyline + 5, key) == 0)
			for (int i = 0; i < n; i++)
				if (strcmp(line, names[i]) == 0)
					found = i;
	}
	fclose(fp);
	return found;
}

/* Write the choice, its key and the scores to path (atomically). */
static void
cache_write(const char *path, const char *key, const char **names, int n,
    const double *rates, int best)
{
	char text[2048], err[256];
	size_t k;

	k = (size_t)snprintf(text, sizeof text, "%s\nkey: %s\nGFLOP/s on the "
	    "calibration shapes by CPU time, %d threads:", names[best], key,
	    omp_get_max_threads());
	for (int i = 0; i < n && k < sizeof text; i++)
		k += (size_t)snprintf(text + k, sizeof text - k, " %s %.1f",
		    names[i], rates[i]);
	if (rl_write_text_atomic(path, text, err, sizeof err) != 0)
		fprintf(stderr, "%s: blas: %s (the kernel choice is not "
		    "kept)\n", rl_progname(), err);
}

/* Take a write lock on path.lock, waiting; returns the fd or -1. */
static int
cache_lock(const char *path)
{
	char lp[4300];
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd;

	snprintf(lp, sizeof lp, "%s.lock", path);
	if ((fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -1;
	while (fcntl(fd, F_SETLKW, &fl) != 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/* The core types worth timing on c: runnable, and no pre-FMA one when
 * the CPU has FMA (Sandybridge's kernels then do half the work a cycle). */
static int
candidates(const Cpu *c, const char **names)
{
	int n = 0, fma = cpu_has(c, "avx2 fma");

	for (int i = 0; i < NCORETYPES; i++)
		if (cpu_has(c, coretypes[i].flags) &&
		    (!fma || strstr(coretypes[i].flags, "fma") != NULL))
			names[n++] = coretypes[i].name;
	return n;
}

int
blas_cache_path(char *buf, size_t len)
{
	Cpu c;
	const char *names[NCORETYPES];
	char dir[4096], key[1024];
	int n;

	if (cache_dir(dir, sizeof dir, 0) != 0)
		return -1;
	cpu_read(&c);
	n = candidates(&c, names);
	cache_key(key, sizeof key, &c, names, n);
	free(c.flags);
	cache_file(buf, len, dir, key);
	return 0;
}

/*
 * The core type to run with when the user set none: from the cache, or
 * calibrated and cached. NULL keeps OpenBLAS's own pick. Sets origin.
 */
static const char *
choose(char **argv, const char *own)
{
	Cpu c;
	const char *names[NCORETYPES], *pick = NULL;
	char dir[4096], key[1024], path[4200];
	double rates[NCORETYPES] = {0};
	int n, i, lock;

	cpu_read(&c);
	n = candidates(&c, names);
	cache_key(key, sizeof key, &c, names, n);
	free(c.flags);
	snprintf(origin, sizeof origin, "default");
	if (n == 0 || (n == 1 && own != NULL && strcasecmp(names[0], own) == 0))
		return NULL;       /* nothing to compare */
	if (cache_dir(dir, sizeof dir, 0) != 0)
		return NULL;       /* no HOME: no calibration on every start */
	cache_file(path, sizeof path, dir, key);
	if ((i = cache_read(path, key, names, n)) >= 0) {
		snprintf(origin, sizeof origin, "cached");
		return names[i];
	}
	if (cache_dir(dir, sizeof dir, 1) != 0)
		return NULL;
	lock = cache_lock(path);
	/* another process may have calibrated while this one waited */
	if ((i = cache_read(path, key, names, n)) >= 0) {
		snprintf(origin, sizeof origin, "cached");
		pick = names[i];
	} else {
		i = calibrate(argv, names, n, rates);
		if (rates[i] > 0) {
			cache_write(path, key, names, n, rates, i);
			snprintf(origin, sizeof origin, "calibrated");
			pick = names[i];
		}
	}
	if (lock >= 0)
		close(lock);
	return pick;
}

void
blas_init(char **argv)
{
	const char *core = openblas_get_corename(), *no, *user, *chosen, *pick;
	static char chosen_var[96];
	int again = 0;

	no = getenv("RL_BLAS_XSMM");
	use_xsmm = no == NULL || strcmp(no, "0") != 0;
	if (getenv("RL_BLAS_CALIBRATING") != NULL)
		calibrate_child();
	no = getenv("RL_BLAS_NO_REEXEC");
	if (no != NULL && *no != '\0' && *no != '0') {
		snprintf(origin, sizeof origin, "%s",
		    getenv("OPENBLAS_CORETYPE") ? "user" : "default");
		blas_single_thread();
		return;
	}
	user = getenv("OPENBLAS_CORETYPE");
	chosen = getenv("RL_BLAS_CHOSEN");
	if (user != NULL) {
		/* set by this function before a re-exec ("core how"), or by
		 * the user */
		size_t n = strlen(user);

		if (chosen != NULL && strncmp(chosen, user, n) == 0 &&
		    chosen[n] == ' ')
			snprintf(origin, sizeof origin, "%s", chosen + n + 1);
		else
			snprintf(origin, sizeof origin, "user");
	} else if ((pick = choose(argv, core)) != NULL) {
		/* set even when OpenBLAS runs it already, so that a re-exec
		 * for GOMP_SPINCOUNT keeps it and its origin */
		snprintf(chosen_var, sizeof chosen_var, "%s %s", pick, origin);
		if (setenv("OPENBLAS_CORETYPE", pick, 1) == 0 &&
		    setenv("RL_BLAS_CHOSEN", chosen_var, 1) == 0)
			again |= core == NULL || strcasecmp(pick, core) != 0;
	}
	if (getenv("OMP_WAIT_POLICY") == NULL &&
	    getenv("GOMP_SPINCOUNT") == NULL)
		again |= setenv("GOMP_SPINCOUNT", BLAS_SPINCOUNT, 1) == 0;
	if (again) {
		/* The libraries read these when loaded: start again. */
		fflush(NULL);
		execv("/proc/self/exe", argv);
	}
	blas_single_thread();
}

const char *
blas_corename(void)
{
	return openblas_get_corename();
}

const char *
blas_origin(void)
{
	return origin;
}

int
blas_threads(void)
{
	return omp_get_max_threads();
}

size_t
blas_gemm_scratch(int M, int N)
{
	return (size_t)omp_get_max_threads() * M * N;
}

/*
 * C = A B + beta C, neither transposed, beta 0 or 1, by libxsmm's
 * just-in-time kernels: 0 when libxsmm has no kernel for the shape (C
 * untouched). They neither pack nor copy A and B, which OpenBLAS does at
 * every call: on the products of a ResNet (K or N of 64 to 2048, a few
 * hundred rows per call) they ran 1.1-1.5 times faster than OpenBLAS's
 * best kernels on a Zen 4, one thread each (AVX-512 ones, libxsmm's own
 * pick by the CPU's flags; LIBXSMM_TARGET overrides it).
 *
 * libxsmm is column-major: the row-major C (M x N) is C^T (N x M) =
 * B^T A^T there. Each call makes an XS_COLS x XS_ROWS block of C from a
 * strip of A's rows and a column block of B; the columns go in panels
 * whose part of B stays in cache while the rows run through it.
 */
static int
gemm_xsmm(int M, int N, int K, const float *A, int lda, const float *B,
    int ldb, float beta, float *C, int ldc)
{
	float one = 1;
	int pf = LIBXSMM_GEMM_PREFETCH_NONE;
	int mc = RL_MIN(N, XS_COLS), mr = RL_MIN(M, XS_ROWS);
	int tc = N % mc, tr = M % mr;
	int panel = (int)RL_MAX(XS_PANEL_FLOATS / ((size_t)K * mc), 1) * mc;
	libxsmm_smmfunction f[2][2] = {{NULL, NULL}, {NULL, NULL}};

	if ((size_t)K * mc > 2 * XS_PANEL_FLOATS ||
	    (size_t)M * K > XS_A_FLOATS)
		return 0;    /* B's block or A leaves the cache: OpenBLAS */
	/* f[last column block][last row block] */
	f[0][0] = libxsmm_smmdispatch(mc, mr, K, &ldb, &lda, &ldc, &one,
	    &beta, NULL, &pf);
	if (tc)
		f[1][0] = libxsmm_smmdispatch(tc, mr, K, &ldb, &lda, &ldc,
		    &one, &beta, NULL, &pf);
	if (tr)
		f[0][1] = libxsmm_smmdispatch(mc, tr, K, &ldb, &lda, &ldc,
		    &one, &beta, NULL, &pf);
	if (tc && tr)
		f[1][1] = libxsmm_smmdispatch(tc, tr, K, &ldb, &lda, &ldc,
		    &one, &beta, NULL, &pf);
	if (f[0][0] == NULL || (tc && f[1][0] == NULL) ||
	    (tr && f[0][1] == NULL) || (tc && tr && f[1][1] == NULL))
		return 0;
	/* a panel is whole column blocks: only N's last block is short */
	for (int p = 0; p < N; p += panel) {
		int pe = RL_MIN(p + panel, N);

		for (int r = 0; r < M; r += mr) {
			const float *a = A + (size_t)r * lda;
			float *c = C + (size_t)r * ldc;
			int last = M - r < mr;

			for (int o = p; o < pe; o += mc)
				f[pe - o < mc][last](B + o, a, c + o);
		}
	}
	return 1;
}

static void
gemm1(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		if (beta == 0)
			for (int i = 0; i < M; i++)
				memset(C + (size_t)i * ldc, 0, N * sizeof *C);
		return;
	}
	if (use_xsmm && !ta && !tb && (beta == 0 || beta == 1) &&
	    gemm_xsmm(M, N, K, A, lda, B, ldb, beta, C, ldc))
		return;
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
	    tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
	    beta, C, ldc);
}

void
blas_gemm_serial(int ta, int tb, int M, int N, int K, const float *A,
    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	blas_single_thread();
	gemm1(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void
blas_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc, float *scratch)
{
	int nt = omp_get_max_threads();
	double flops = 2.0 * M * N * K;

	blas_single_thread();
	/* one thread (a team's, layers.h): only the row blocks below pay */
	if (flops < 2e6 || (nt == 1 && (M < N || K >= 1024))) {
		gemm1(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	if (nt > 1 && scratch != NULL && K >= 4 * M && K >= 4 * N &&
	    K >= 64 * nt) {
		/*
		 * Split K: each thread sums its part into scratch, then the
		 * parts are added into C. When M > N the parts are computed
		 * transposed (C^T = op(B)^T op(A)^T), which puts the smaller
		 * dimension first: 10-13% faster on conv weight gradients
		 * (K*K*C rows against OC columns).
		 */
		int tr = M > N;

#pragma omp parallel num_threads(nt)
		{
			int t = omp_get_thread_num(), n = omp_get_num_threads();
			int k0 = (int)((long long)K * t / n);
			int k1 = (int)((long long)K * (t + 1) / n);
			const float *a = ta ? A + (size_t)k0 * lda : A + k0;
			const float *b = tb ? B + k0 : B + (size_t)k0 * ldb;
			float *part = scratch + (size_t)t * M * N;

			if (tr)
				gemm1(!tb, !ta, N, M, k1 - k0, b, ldb, a, lda,
				    0.0f, part, M);
			else
				gemm1(ta, tb, M, N, k1 - k0, a, lda, b, ldb,
				    0.0f, part, N);
#pragma omp barrier
#pragma omp for schedule(static)
			for (int i = 0; i < M; i++) {
				float *ci = C + (size_t)i * ldc;

				for (int j = 0; j < N; j++) {
					float sum = beta == 0 ? 0 : ci[j];

					for (int u = 0; u < n; u++)
						sum += tr ? scratch[((size_t)u *
						    N + j) * M + i] : scratch[
						    ((size_t)u * M + i) * N + j];
					ci[j] = sum;
				}
			}
		}
		return;
	}
	if (M >= N || M >= 64 * nt) {
		/*
		 * Split the rows of C (and of op(A)) into blocks whose A and
		 * C parts fit in about 1 MB, so
		 * OpenBLAS's beta pass over C and its kernel pass meet in
		 * cache (5-18% faster on the memory-bound 1x1 convolutions).
		 */
		int rb = (int)RL_CLAMP(BLOCK_FLOATS / (N + K), 256, 1 << 30);
		int nblk, step;

		if (K >= 1024) {
			/* compute-bound: one call per thread, B packed once */
#pragma omp parallel num_threads(nt)
			{
				int t = omp_get_thread_num();
				int n = omp_get_num_threads();
				int m0 = (int)((long long)M * t / n);
				int m1 = (int)((long long)M * (t + 1) / n);
				const float *a = ta ? A + m0 : A + (size_t)m0 * lda;

				gemm1(ta, tb, m1 - m0, N, K, a, lda, B, ldb,
				    beta, C + (size_t)m0 * ldc, ldc);
			}
			return;
		}
		/*
		 * Blocks handed out dynamically: a thread that loses its core
		 * to another process leaves its blocks to the other (each
		 * element's sum is the same whichever thread computes it).
		 */
		nblk = (M + rb - 1) / rb;
		step = (M + nblk - 1) / nblk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
		for (int k = 0; k < nblk; k++) {
			int r = k * step, nr = RL_MIN(step, M - r);
			const float *a = ta ? A + r : A + (size_t)r * lda;

			gemm1(ta, tb, nr, N, K, a, lda, B, ldb, beta,
			    C + (size_t)r * ldc, ldc);
		}
		return;
	}
	/* Split the columns of C (and of op(B)). */
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		int n0 = (int)((long long)N * t / n);
		int n1 = (int)((long long)N * (t + 1) / n);
		const float *b = tb ? B + (size_t)n0 * ldb : B + n0;

		gemm1(ta, tb, M, n1 - n0, K, A, lda, b, ldb, beta, C + n0,
		    ldc);
	}
}

/*
 * replay: run a fuzz harness (fuzz/fz_*.c, linked in) over files, without
 * libFuzzer or clang: `make check` replays every committed seed and crash
 * through the normal build. Usage: replay file-or-directory...; prints
 * "replayed N inputs" and exits 0, or dies where the harness does.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

static size_t nrun;

static void
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, k;

	if (!fp) {
		perror(path);
		exit(2);
	}
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			if (!(buf = realloc(buf, cap))) {
				perror("replay");
				exit(2);
			}
		}
		k = fread(buf + n, 1, cap - n, fp);
		n += k;
	} while (k > 0);
	fclose(fp);
	fprintf(stderr, "replay %s\n", path);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	nrun++;
}

static void
run(const char *path)
{
	struct stat sb;
	struct dirent **ent;
	int n;

	if (stat(path, &sb) == -1) {
		perror(path);
		exit(2);
	}
	if (!S_ISDIR(sb.st_mode)) {
		run_file(path);
		return;
	}
	if ((n = scandir(path, &ent, NULL, alphasort)) < 0) {
		perror(path);
		exit(2);
	}
	for (int i = 0; i < n; i++) {
		char sub[4096];

		if (ent[i]->d_name[0] != '.') {
			snprintf(sub, sizeof sub, "%s/%s", path, ent[i]->d_name);
			run(sub);
		}
		free(ent[i]);
	}
	free(ent);
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		run(argv[i]);
	printf("replayed %zu inputs\n", nrun);
	return 0;
}

/*
 * blas_bench: the sgemm rates of the OpenBLAS kernel set this process runs
 * with (blas_init's choice, or OPENBLAS_CORETYPE when set), for
 * bench/b_kernels.sh (the sweep over core types) and bench/run.sh (the
 * peak printed beside every ratio). Built by `make bench`.
 *
 *   blas_bench -l      the core types this CPU can run, one a line
 *   blas_bench -c      the CPU: "model name, family F, model M"
 *   blas_bench -d      the calibration's shapes s1.., one a line
 *   blas_bench -C      blas_init's cache file for this CPU ("none")
 *   blas_bench [-p] [-s] [-t seconds]
 *       one line of name=value fields: core (the core type), origin
 *       (blas_origin: user, cached, calibrated, default), threads; with
 *       -s conv, GFLOP/s over blas_shapes by the clock, conv_cpu the
 *       same by CPU time (the calibration's score), and s1.. each
 *       shape's rate; with -p peak, sgemm 2048^3 (GFLOP/s).
 *       Each rate is the best of the runs that fit in -t seconds (0.3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/blas.h"
#include "common/util.h"

int
main(int argc, char **argv)
{
	static const BlasShape square = {"sgemm 2048^3", 0, 0, 2048, 2048, 2048,
	    0};
	const char *names[32];
	char cpu[4300];
	double seconds = 0.3, rates[16];
	int ch, peak = 0, shapes = 0, n;

	while ((ch = getopt(argc, argv, "Ccdlpst:")) != -1)
		switch (ch) {
		case 'C':
			if (blas_cache_path(cpu, sizeof cpu) != 0)
				snprintf(cpu, sizeof cpu, "none");
			printf("%s\n", cpu);
			return 0;
		case 'c':
			blas_cpu(cpu, sizeof cpu);
			printf("%s\n", cpu);
			return 0;
		case 'd':
			for (int i = 0; i < blas_nshapes; i++)
				printf("s%d: %s (%sM %d, N %d, K %d)\n", i + 1,
				    blas_shapes[i].what, blas_shapes[i].ta ?
				    "A transposed, " : "", blas_shapes[i].M,
				    blas_shapes[i].N, blas_shapes[i].K);
			return 0;
		case 'l':
			n = blas_coretypes(names, 32);
			for (int i = 0; i < n; i++)
				printf("%s\n", names[i]);
			return 0;
		case 'p':
			peak = 1;
			break;
		case 's':
			shapes = 1;
			break;
		case 't':
			seconds = estrtod(optarg, 0, 100, "-t");
			break;
		default:
			fprintf(stderr, "usage: blas_bench -l | -c | -C | -d | [-p] [-s] "
			    "[-t seconds]\n");
			return 2;
		}
	blas_init(argv);
	printf("core=%s origin=%s threads=%d", blas_corename(), blas_origin(),
	    blas_threads());
	if (shapes) {
		double cpu, conv = blas_score(seconds, rates, &cpu);

		printf(" conv=%.1f conv_cpu=%.1f", conv, cpu);
		for (int i = 0; i < blas_nshapes && i < 16; i++)
			printf(" s%d=%.1f", i + 1, rates[i]);
	}
	if (peak)
		printf(" peak=%.1f", blas_rate(&square, seconds, NULL));
	printf("\n");
	return 0;
}

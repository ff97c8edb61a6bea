#!/bin/sh
# b_kernels: OpenBLAS's kernel sets on this CPU. Times blas_gemm (2 threads
# by default, as the tools run it) under every core type the CPU can run
# (OPENBLAS_CORETYPE=each, bench/blas_bench) and under the default the tools
# get (blas_init's choice: from the cache, or calibrated now), on the
# calibration's shapes (ResNet-50 products, listed below) and on a
# 2048^3 square (the default's runs count as runs of the core type it
# runs). The rounds are interleaved and each figure is the best of
# them, so a busy spell hurts every core type alike; "by CPU time" is the
# rate per CPU-second the threads had (what blas_init's calibration
# compares), which other processes on the cores disturb less. It ends with
# the default's share of the best, whose target is 5% at most below. A
# default far off means the cached choice was timed on a busy machine:
# delete the cache file printed below and run this again.
# blas_bench is $BIN/bench/blas_bench, which `make bench` builds.
set -e
BIN=${BIN:-build}
exe=$BIN/bench/blas_bench
[ -x "$exe" ] || { echo "b_kernels: no $exe (run make bench)" >&2; exit 1; }
rounds=${ROUNDS:-3}
# OpenBLAS's kernels alone, as the calibration times them: the products
# libxsmm would take (common/blas.h) do not depend on the core type
export RL_BLAS_XSMM=0

echo "cpu: $("$exe" -c); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$exe" -d
cores=$("$exe" -l)
out=${TMP:-/tmp}/b_kernels.$$
: >"$out"
r=0
while [ $r -lt "$rounds" ]; do
	for c in $cores; do
		OPENBLAS_CORETYPE=$c "$exe" -s -p >>"$out"
	done
	env -u OPENBLAS_CORETYPE "$exe" -s -p | sed 's/^/default /' >>"$out"
	r=$((r + 1))
done
# the best of the rounds for each core type and for the default
awk '
function field(name,   i) {
	for (i = 1; i <= NF; i++)
		if (index($i, name "=") == 1)
			return substr($i, length(name) + 2)
	return ""
}
function pct(k, v, best) { return 100 * v[k] / v[best] }
{
	k = field("core")   # the default runs count for its core type
	if (!(k in conv)) order[n++] = k
	if (field("conv") + 0 > conv[k] + 0) {
		conv[k] = field("conv"); peak[k] = field("peak")
		s = $0; sub(/^.*conv_cpu=[0-9.]+ /, "", s); sub(/ peak=.*/, "", s)
		shapes[k] = s
	}
	if (field("conv_cpu") + 0 > cpu[k] + 0) cpu[k] = field("conv_cpu")
	if ($1 == "default") { dcore = field("core"); dorigin = field("origin") }
}
END {
	best = ""; bestc = ""
	for (i = 0; i < n; i++) {
		k = order[i]
		printf "%-12s conv shapes %6.1f GFLOP/s (%s; by CPU time %.1f), sgemm 2048^3 %6.1f\n", k, conv[k], shapes[k], cpu[k], peak[k]
		if (best == "" || conv[k] > conv[best]) best = k
		if (bestc == "" || cpu[k] > cpu[bestc]) bestc = k
	}
	printf "default: %s (%s), conv shapes %.1f GFLOP/s = %.1f%% of the best, %s (%.1f); %s\n",
	    dcore, dorigin, conv[dcore], pct(dcore, conv, best), best, conv[best],
	    (conv[dcore] >= 0.95 * conv[best] ? "within 5%" : "NOT within 5%")
	printf "by CPU time: %.1f = %.1f%% of the best, %s (%.1f)\n",
	    cpu[dcore], pct(dcore, cpu, bestc), bestc, cpu[bestc]
}' "$out"
rm -f "$out"
echo "threads: ${OMP_NUM_THREADS:-$(nproc)}; best of $rounds interleaved rounds; cache: $("$exe" -C)"

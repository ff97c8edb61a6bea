#!/bin/sh
# make bench: runs each bench/b_*.sh (or those whose name contains $1) with
# BIN=$BUILD and a scratch directory TMP, and tees everything to
# $BUILD/bench.log. Each script times an rl-* tool and its peer in the same
# run and prints the ratio; none of them is a pass/fail test.
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD" && pwd)
export BIN
pat=${1:-}
log="$BUILD/bench.log"
: >"$log"
# The machine, named beside every script's ratios: CPU, OpenBLAS core type
# (blas_init's choice) and the sgemm peak measured now (2048^3, blas_gemm on
# OpenBLAS alone, the best of 3 seconds of runs: a busy second once gave 150 for 200),
# which b_engine.sh takes as $SGEMM_PEAK.
m=$(RL_BLAS_XSMM=0 "$BIN/bench/blas_bench" -p -t 3)
SGEMM_PEAK=$(echo "$m" | sed -n 's/.*peak=\([0-9.]*\).*/\1/p') && export SGEMM_PEAK
machine="$("$BIN/bench/blas_bench" -c), OpenBLAS $(echo "$m" | sed -n 's/.*core=\([^ ]*\).*/\1/p'), sgemm peak $SGEMM_PEAK GFLOP/s"
for b in bench/b_*.sh; do
	[ -f "$b" ] || continue
	case ${b##*/} in *"$pat"*) ;; *) continue ;; esac
	TMP=$(mktemp -d) && export TMP
	echo "== ${b##*/} ($(date -u +%FT%TZ), $(nproc) cores; $machine)" | tee -a "$log"
	sh "$b" 2>&1 | tee -a "$log"
	rm -rf "$TMP"
done
echo "bench: log in $log"

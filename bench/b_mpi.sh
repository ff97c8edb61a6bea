#!/bin/sh
# b_mpi: data-parallel rl-train on this machine: pairs/s of 2 ranks x 1
# thread (mpirun, shared memory) against 1 rank x 2 threads, ResNet-50,
# 16 images per step in shards of 8, 64x64 patches (target: >= 0.9x);
# the time per step spent summing gradients across the ranks, and the
# gradient bytes per step (what the README's scaling model assumes). The
# figure is the median per-step rate of steps 3..N in metrics.jsonl.
T=$BIN/rl-train S=$BIN/rl-sample
STEPS=${STEPS:-8}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
command -v mpirun >/dev/null || { echo "b_mpi: no mpirun (make deps)"; exit 1; }

. bench/grids.sh
grids 16 b_mpi
A="-a resnet50 -b 16 --shard 8 -i $TMP/db --max-steps $((STEPS + 2)) \
    --log-every 1 --ckpt-epochs 0 -v"

# median: the median pairs/s of steps 3.. of run/metrics.jsonl
median() {
	tail -n +3 "$TMP/run/metrics.jsonl" |
	    sed 's/.*"pairs_s":\([0-9.]*\),.*/\1/' | sort -n |
	    awk '{ p[NR] = $1 } END {
		m = NR % 2 ? p[(NR + 1) / 2] : (p[NR / 2] + p[NR / 2 + 1]) / 2
		printf "%.1f\n", m }'
}

rm -rf "$TMP/run"
OMP_NUM_THREADS=2 "$T" $A -o "$TMP/run" 2>"$TMP/err1" >/dev/null ||
	{ tail -3 "$TMP/err1"; exit 1; }
one=$(median)
rm -rf "$TMP/run"
OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to core -np 2 \
    -x OMP_NUM_THREADS "$T" $A -o "$TMP/run" 2>"$TMP/err2" >/dev/null ||
	{ tail -3 "$TMP/err2"; exit 1; }
two=$(median)
comm=$(sed -n 's/.*, \([0-9.]*\) s (\([0-9.]*\)%) summing across ranks, \([0-9.]*\) s (\([0-9.]*\)%) waiting.*/\1 \2 \3 \4/p' \
    "$TMP/err2")
steps=$((STEPS + 2))
mib=$(sed -n 's/.*; \([0-9]*\) MiB per rank;.*/\1/p' "$TMP/err2")
r=$(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
echo "resnet50 -b 16 --shard 8: 1 rank x 2 threads $one pairs/s, 2 ranks x 1 thread $two pairs/s, ratio ${r}x (target >= 0.9x)"
set -- $comm
awk -v c="$1" -v p="$2" -v w="$3" -v q="$4" -v n="$steps" 'BEGIN {
	printf "communication: %.3f s per step, %.1f%% of the run; waiting for the slower rank %.3f s per step (%.1f%%)\n", c / n, p, w / n, q }'
# gradient block: ResNet-50 backbone + neck (2048 -> 4096) + head, floats
echo "gradient bytes per step: 161321248 (40330312 floats, ResNet-50 + neck 4096 + head), each rank sends ~2x that in a ring all-reduce; $mib MiB per rank"

#!/bin/sh
# rl-train on Open MPI ranks (a tiny ResNet-18, -b 8 in shards of 2):
# 2 and 4 ranks give the weights of 1 rank to float rounding, over shared memory
# and forced over TCP; a 2-rank resume is bit for bit the uninterrupted
# 2-rank run; ranks started differently are refused naming the
# difference; a killed rank ends the job in seconds, the last checkpoint
# intact. The tolerance: the ranks compute each shard with the same
# shapes, only the order in which the 4 shards' gradients are added
# differs ((g0+g1)+(g2+g3) against ((g0+g1)+g2)+g3), a few ulps. So the
# weights after one step agree to 5e-4 of each tensor's largest value
# (seen: 1e-7), which still catches a wrong shard, scale or mask (0.1 and
# more). After that the weights differ by rounding, and a ReLU or max-pool
# input within rounding of its threshold can route one element's gradient
# differently in one run than in the other: seen after 3 steps at 0.19 of
# a tensor's largest value with OpenBLAS's Sandybridge kernels (and
# 0.06 with SkylakeX's at another learning rate), the runs being equally
# right. What several steps add (each step's shards of the global
# permutation, momentum, the schedule) is checked on the losses instead,
# which follow the weights continuously: steps 1-3 agree to 1e-4 (seen:
# 2.3e-5 across such a flip), where another step's images would move
# them by more.
. tests/cli/lib.sh
T=$BIN/rl-train S=$BIN/rl-sample D="$BIN/tests/t_shard ckptdiff"
command -v mpirun >/dev/null || { nok mpirun-missing; cli_end; }
# CI runs as root; two ranks on two cores or fewer
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPI="mpirun --oversubscribe --bind-to none"
# Open MPI's runtime (its dlopened components) keeps allocations until
# exit; in an ASan build (make asan) LeakSanitizer would report them.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
NET="-a resnet18 --width 8 --neck-dim 32 -b 8 --shard 2 --warmup 0 --lr 0.05
    --log-every 1"

for i in 0 1; do
	vips xyz "$TMP/xy.v" 96 96 &&
	vips gaussnoise "$TMP/n.v" 96 96 --sigma 40 --mean 128 --seed $i &&
	vips bandjoin "$TMP/xy.v $TMP/n.v" "$TMP/j.v" &&
	vips cast "$TMP/j.v" "$TMP/img$i.png" uchar || nok make-images
done
ls "$TMP"/img*.png > "$TMP/list"
"$S" -s 1 -n 24 --resize 80 --crop 72 --patch 16 -l "$TMP/list" \
    -o "$TMP/db" 2>"$TMP/err" || { nok sample; cat "$TMP/err" >&2; }

# within NAME A B: the checkpoints agree to the tolerance
within() {
	d=$($D "$2" "$3") || { nok "$1-read"; return; }
	if awk -v d="${d%% *}" 'BEGIN { exit !(d < 5e-4) }'; then ok "$1"
	else nok "$1"; echo "  $1: relative difference $d" >&2; fi
}
# losses NAME A B: the runs' per-step losses (3 steps) agree to 1e-4
losses() {
	for r in "$2" "$3"; do
		grep '"step"' "$r/metrics.jsonl" |
		    sed 's/.*"loss":\([-0-9.e]*\).*/\1/'
	done >"$TMP/losses"
	if awk '{ l[NR] = $1 } END { if (NR != 6) exit 1
		for (i = 1; i <= 3; i++) { d = l[i] - l[i + 3]
			if (d > 1e-4 || d < -1e-4) exit 1 } }' "$TMP/losses"
	then ok "$1"
	else nok "$1"; tr '\n' ' ' <"$TMP/losses" >&2; echo >&2; fi
}
C=ckpt-00000003.safetensors C1=ckpt-00000001.safetensors
[ -n "$KEEP" ] && trap 'cp -r "$TMP" "$KEEP"' EXIT

expect np1 0 "$T" $NET -i "$TMP/db" -o "$TMP/r1" --max-steps 3
expect np1-1 0 "$T" $NET -i "$TMP/db" -o "$TMP/s1" --max-steps 1
expect np2 0 $MPI -np 2 "$T" $NET -i "$TMP/db" -o "$TMP/r2" --max-steps 3
expect np2-1 0 $MPI -np 2 "$T" $NET -i "$TMP/db" -o "$TMP/s2" --max-steps 1
within np2-equals-np1 "$TMP/s2/$C1" "$TMP/s1/$C1"
losses np2-losses "$TMP/r2" "$TMP/r1"
[ ! -e "$TMP/r2/$C.tmp"* ] && [ "$(ls "$TMP/r2" | grep -c ckpt-)" -eq 1 ] &&
	ok np2-one-writer || nok np2-one-writer
expect np2-tcp 0 $MPI --mca btl self,tcp -np 2 "$T" $NET -i "$TMP/db" \
    -o "$TMP/r3" --max-steps 1
within np2-tcp-equals-np1 "$TMP/r3/$C1" "$TMP/s1/$C1"
expect np4 0 $MPI -np 4 "$T" $NET -i "$TMP/db" -o "$TMP/r6" --max-steps 3
expect np4-1 0 $MPI -np 4 "$T" $NET -i "$TMP/db" -o "$TMP/s6" --max-steps 1
within np4-equals-np1 "$TMP/s6/$C1" "$TMP/s1/$C1"
losses np4-losses "$TMP/r6" "$TMP/r1"
# the same shards in one rank, whatever the rank count: -np 1 under mpirun
expect mpirun-np1 0 $MPI -np 1 "$T" $NET -i "$TMP/db" -o "$TMP/r5" \
    --max-steps 3
cmp -s "$TMP/r5/$C" "$TMP/r1/$C" && ok mpirun-np1-bitwise ||
	nok mpirun-np1-bitwise

# --- resume: 2 steps, then 1 more, against the 3 straight
expect resume-a 0 $MPI -np 2 "$T" $NET -i "$TMP/db" -o "$TMP/r4" \
    --max-steps 2
echo junk > "$TMP/r4/ckpt-00000003.safetensors.tmp999"
expect resume-b 0 $MPI -np 2 "$T" $NET -i "$TMP/db" -o "$TMP/r4" \
    --max-steps 3 --resume
cmp -s "$TMP/r4/$C" "$TMP/r2/$C" && ok resume-bitwise || nok resume-bitwise
[ ! -e "$TMP/r4/ckpt-00000003.safetensors.tmp999" ] && ok tmp-cleaned ||
	nok tmp-cleaned

# --- ranks that differ are refused before training
expect mismatch 1 $MPI -np 1 "$T" $NET -i "$TMP/db" -o "$TMP/m" -s 1 : \
    -np 1 "$T" $NET -i "$TMP/db" -o "$TMP/m" -s 2
stderr_has mismatch-msg "seed: rank 1 has 2, rank 0 has 1"
[ ! -e "$TMP/m/last.safetensors" ] && ok mismatch-no-ckpt ||
	nok mismatch-no-ckpt
expect odd-shards 1 $MPI -np 2 "$T" -a resnet18 --width 8 --neck-dim 32 \
    -b 6 --shard 2 -i "$TMP/db" -o "$TMP/m2"
stderr_has odd-shards-msg "must be a multiple of the ranks"
recs=$("$BIN/rl-cat" -c -i "$TMP/db")
expect small-lmdb 1 $MPI -np 2 "$T" -a resnet18 --width 8 --neck-dim 32 \
    -b $((2 * recs)) --shard 2 -i "$TMP/db" -o "$TMP/m3"
stderr_has small-lmdb-msg "fewer than one step of $((2 * recs)) images"

# --- a killed rank ends the job within seconds; the checkpoint holds
$MPI -np 1 "$T" $NET -i "$TMP/db" -o "$TMP/k" --ckpt-every 1 : \
    -np 1 sh -c 'echo $$ > "$0"; exec "$@"' "$TMP/pid" "$T" $NET \
    -i "$TMP/db" -o "$TMP/k" --ckpt-every 1 >"$TMP/out" 2>"$TMP/err" &
job=$!
n=0
until [ -e "$TMP/k/last.safetensors" ] || [ $n -ge 600 ]; do
	sleep 0.1; n=$((n + 1))
done
kill -9 "$(cat "$TMP/pid")"
t0=$(date +%s)
wait $job; rc=$?
dt=$(($(date +%s) - t0))
[ $rc -ne 0 ] && [ $dt -le 10 ] && ok "killed-rank-ends-${dt}s" ||
	{ nok "killed-rank-ends"; echo "  rc $rc after ${dt}s" >&2; }
grep -qi "signal 9\|killed" "$TMP/err" && ok killed-rank-msg ||
	{ nok killed-rank-msg; tail -5 "$TMP/err" >&2; }
$D "$TMP/k/last.safetensors" "$TMP/k/last.safetensors" >/dev/null &&
	ok killed-ckpt-intact || nok killed-ckpt-intact

# --- rl-extract: 2 ranks write the rows of 1 process (5 images: ranges
# of 2 and 3), values to rounding (other batch shapes), labels exactly
X=$BIN/rl-extract N="$BIN/tests/t_shard npydiff"
for k in 0 1 0 1 1; do echo "$TMP/img$k.png $k"; done > "$TMP/five.txt"
mkdir -p "$TMP/e1" "$TMP/e2"
XO="--random-init 5 -a resnet18 -P center -L feat5,gap -b 4"
expect extract-np1 0 "$X" $XO -o "$TMP/e1" -p f "$TMP/five.txt"
expect extract-np2 0 $MPI -np 2 "$X" $XO -o "$TMP/e2" -p f "$TMP/five.txt"
for f in f_feat5.npy f_gap.npy f_labels.npy; do
	d=$($N "$TMP/e2/$f" "$TMP/e1/$f") &&
	    awk -v d="$d" 'BEGIN { exit !(d < 1e-5) }' && ok "extract-$f" ||
	    { nok "extract-$f"; echo "  $f: $d" >&2; }
done
cmp -s "$TMP/e2/f.json" "$TMP/e1/f.json" && ok extract-sidecar ||
	nok extract-sidecar
[ "$(ls -A "$TMP/e2" | wc -l)" -eq "$(ls -A "$TMP/e1" | wc -l)" ] &&
	ok extract-no-parts-left || { nok extract-no-parts-left; ls -A "$TMP/e2" >&2; }
cli_end

#!/bin/sh
# b_train: rl-train's training speed in pairs per second against PyTorch's
# (bench/torch_relloc.py train, the peer's default: both patches
# of every pair through the trunk), ResNet-50 and ResNet-18, 16 images =
# 128 pairs per step, 64x64 patches, 2 threads, in the same run. rl-train
# reads a prepared LMDB (made by rl-sample); its figure is the median over
# steps 3..N of the per-step rate in metrics.jsonl, with the share of the
# time it waited for records. Also rl-train --mmselfsup-batching (the
# peer's work: 256 patch passes per step) for ResNet-50.
T=$BIN/rl-train S=$BIN/rl-sample
PEER=bench/torch_relloc.py
STEPS=${STEPS:-8}

# 16 images of 320x300 (content does not change the speed), 8 grids each
for i in $(seq 0 15); do
	vips gaussnoise "$TMP/n.v" 320 300 --sigma 50 --mean 128 --seed $i &&
	vips gaussnoise "$TMP/m.v" 320 300 --sigma 30 --mean 100 \
	    --seed $((i + 99)) &&
	vips bandjoin "$TMP/n.v $TMP/m.v $TMP/n.v" "$TMP/img$i.png" ||
	{ echo "b_train: vips failed" >&2; exit 1; }
done
ls "$TMP"/img*.png > "$TMP/list"
"$S" -n 8 -l "$TMP/list" -o "$TMP/db" || exit 1

# ours ARCH [options]: prints "pairs/s wait%"
ours() {
	a=$1; shift
	rm -rf "$TMP/run"
	"$T" -a "$a" -b 16 -i "$TMP/db" -o "$TMP/run" --max-steps $((STEPS + 2)) \
	    --log-every 1 --ckpt-epochs 0 "$@" 2>"$TMP/err" >/dev/null ||
	    { cat "$TMP/err" >&2; echo "0 0"; return; }
	tail -n +3 "$TMP/run/metrics.jsonl" |
	    sed 's/.*"pairs_s":\([0-9.]*\),"data_wait":\([0-9.]*\).*/\1 \2/' |
	    sort -n | awk '{ p[NR] = $1; w += $2 } END {
		m = NR % 2 ? p[(NR + 1) / 2] : (p[NR / 2] + p[NR / 2 + 1]) / 2
		printf "%.1f %.2f\n", m, 100 * w / NR }'
}

# peer ARCH: prints pairs/s
peer() {
	/usr/bin/python3 "$PEER" train --arch "$1" --threads 2 --steps $STEPS \
	    --warmup 2 2>"$TMP/perr" |
	    sed 's/.*"pairs_per_s_median": \([0-9.]*\).*/\1/' | grep . ||
	    { cat "$TMP/perr" >&2; echo 0; }
}

for a in resnet50 resnet18; do
	set -- $(ours $a)
	o=$1 w=$2
	p=$(peer $a)
	r=$(awk -v o="$o" -v p="$p" 'BEGIN { printf "%.2f", (p > 0 ? o / p : 0) }')
	printf '%-9s rl-train %7s pairs/s (data wait %s%%)  PyTorch %7.1f pairs/s  ratio %sx\n' \
	    "$a" "$o" "$w" "$p" "$r"
done
set -- $(ours resnet50 --mmselfsup-batching)
echo "resnet50  rl-train --mmselfsup-batching $1 pairs/s (data wait $2%)"

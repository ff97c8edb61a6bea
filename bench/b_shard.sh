#!/bin/sh
# b_shard: peak memory (max RSS, /usr/bin/time -v) of one rl-train step of
# ResNet-50 at 64x64 patches with the recipe's 512 images in shards of 64
# (-b 512 --shard 64) against 64 images in one pass (-b 64), and the
# memory each says it needs. Target: the first within 1.3x of the second
# (memory depends on the shard, not the step). One step each: the -b 512
# step takes about a minute per 2 cores.
T=$BIN/rl-train S=$BIN/rl-sample
[ -x /usr/bin/time ] || { echo "b_shard: /usr/bin/time missing (make deps-bench)"; exit 1; }

# 64 images, 8 grids each: 512 records
. bench/grids.sh
grids 64 b_shard

# rss OPTIONS...: prints "maxrss-MiB needed-MiB seconds"
rss() {
	rm -rf "$TMP/run"
	/usr/bin/time -v "$T" -v -a resnet50 -i "$TMP/db" -o "$TMP/run" \
	    --max-steps 1 "$@" >/dev/null 2>"$TMP/err" ||
	    { tail -3 "$TMP/err" >&2; echo "0 0 0"; return; }
	k=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/err")
	n=$(sed -n 's/.*; \([0-9]*\) MiB per rank;.*/\1/p' "$TMP/err")
	s=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$TMP/err")
	echo "$((k / 1024)) $n $s"
}

set -- $(rss -b 64)
a=$1; an=$2; at=$3
set -- $(rss -b 512 --shard 64)
b=$1; bn=$2; bt=$3
r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
echo "resnet50 64px -b 64:              max RSS $a MiB (says $an MiB), $at"
echo "resnet50 64px -b 512 --shard 64:  max RSS $b MiB (says $bn MiB), $bt"
echo "ratio ${r}x (target <= 1.3x)"

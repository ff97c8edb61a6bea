#!/bin/sh
# rl-sample against PIL on realistic JPEGs: decode, Resize(292), crop 255,
# grey with p=0.66, nine 64x64 patches, one image after another.
# The images: N crops/rescales/flips (about 500x375, JPEG quality 75-95) of
# the two natural photos scikit-learn ships (python3-sklearn), made by
# bench/pil_sample.py. Both sides read the same files, page-cached, in the
# same run; rl-sample's records go to /dev/null.
: "${BIN:=build}" "${TMP:=$(mktemp -d)}"
PY=/usr/bin/python3 N=${N:-300} REP=3
$PY bench/pil_sample.py make "$TMP/img" "$N" || exit 1
: > "$TMP/list"
r=0; while [ $r -lt $REP ]; do ls "$TMP"/img/*.jpg >> "$TMP/list"; r=$((r + 1)); done
n=$(wc -l < "$TMP/list")
cat "$TMP"/img/*.jpg > /dev/null
kb=$(du -sk "$TMP/img" | cut -f1)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the rates)"
echo "images: $N JPEGs, $((kb / N)) KB mean, each read $REP times ($n in all)"

pil=$($PY bench/pil_sample.py run "$TMP/list")
# Wall-clock images/s of rl-sample (startup included) and its CPU seconds.
run() {
	/usr/bin/time -f "%e %U %S" -o "$TMP/time" "$BIN/rl-sample" -j "$1" \
		-l "$TMP/list" > /dev/null || exit 1
	read -r wall usr sys < "$TMP/time"
	echo "$n $wall $usr $sys" | awk '{ printf "%.1f %.6f", $1 / $2, ($3 + $4) / $1 }'
}
set -- $(run 1); j1=$1 cpu1=$2
set -- $(run 2); j2=$1 cpu2=$2
echo "PIL 9 (1 thread):        $pil images/s"
echo "rl-sample -j1:           $j1 images/s"
echo "rl-sample -j2:           $j2 images/s"
echo "$j1 $pil $j2 $cpu1 $cpu2" | awk '{
	printf "ratio rl-sample -j1 / PIL: %.2fx (target >= 1.5x)\n", $1 / $2
	printf "scaling -j2 / -j1:         %.2fx (2 cores)\n", $3 / $1
	printf "CPU per image %.2f ms at -j1, %.2f ms at -j2\n", $4 * 1000, $5 * 1000
	printf "at 100 images/s rl-sample uses %.3f of a core\n", $4 * 100 }'
# Are the pixels PIL's? (--exact; python3-msgpack reads the records.)
if $PY -c 'import msgpack' 2>/dev/null; then
	head -60 "$TMP/list" > "$TMP/l60"
	"$BIN/rl-sample" --exact -l "$TMP/l60" > "$TMP/par.rec" &&
		printf 'parity with PIL: ' && $PY bench/pil_sample.py parity "$TMP/par.rec"
fi

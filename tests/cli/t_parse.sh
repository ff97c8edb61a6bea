#!/bin/sh
# Hostile files the parsers must refuse with one line naming the file: an
# .npy whose shape product overflows, a truncated LMDB, a checkpoint whose
# header claims huge tensors, list files with bad lines.
. tests/cli/lib.sh
D=tests/data/svm

# A 144-byte .npy of shape (20, 2^62) float32 and no data: 20 * 2^62
# wraps to 0 in 64 bits, so an unchecked product matches the empty data.
bignpy() {
	h="{'descr': '<f4', 'fortran_order': False, 'shape': (20, 4611686018427387904), }"
	{ printf '\223NUMPY\001\000\206\000%s' "$h"
	  n=$((133 - ${#h})); while [ $n -gt 0 ]; do printf ' '; n=$((n - 1)); done
	  printf '\n'; } >"$1"
}
bignpy "$TMP/big.npy"
[ "$(wc -c <"$TMP/big.npy")" -eq 144 ] && ok npy-144-bytes || nok npy-144-bytes
expect npy-svm 1 "$BIN/rl-svm" "$TMP/big.npy" "$D/try.npy" "$D/tex.npy" \
    "$D/tey.npy"
stderr_has npy-svm-msg "big.npy: the header's shape is too large"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok npy-svm-one-line || nok npy-svm-one-line
expect npy-linear 1 "$BIN/rl-linear" "$TMP/big.npy" "$D/try.npy" \
    "$D/tex.npy" "$D/tey.npy"
stderr_has npy-linear-msg "big.npy: the header's shape is too large"
expect npy-knn 1 "$BIN/rl-knn" "$TMP/big.npy" "$D/try.npy" "$D/tex.npy" \
    "$D/tey.npy"
stderr_has npy-knn-msg "big.npy: the header's shape is too large"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok npy-knn-one-line || nok npy-knn-one-line

# A real LMDB cut short: its meta page counts 5 pages, the file holds 3.
# The readers used to die of SIGBUS in the map; each says it is truncated.
expect lmdb-make 0 "$BIN/rl-cat" -o "$TMP/db" tests/data/grid10.rec
truncate -s 12288 "$TMP/db/data.mdb"
for c in "rl-cat -i" "rl-cat -c -i" "rl-cat -l -i" "rl-cat -m -i" \
    "rl-train -o $TMP/run -i"; do
	n=$(echo "$c" | tr -d ' -' | cut -c 1-12)
	# shellcheck disable=SC2086
	expect "lmdb-trunc-$n" 1 "$BIN"/$c "$TMP/db"
	stderr_has "lmdb-trunc-$n-msg" "db: the database is truncated"
	[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok "lmdb-trunc-$n-one-line" ||
	    nok "lmdb-trunc-$n-one-line"
done

# A msgpack header claiming 2^27 entries (msgpack reserved 3 GB for it
# before reading on) is refused from its 5 bytes, by name.
printf '\335\010\000\000\000' >"$TMP/claim.rec"
expect claim-file 1 "$BIN/rl-cat" -c "$TMP/claim.rec"
stderr_has claim-file-msg "claim.rec: record 0 at byte 0: a msgpack header at byte 0 claims 134217728 entries"
expect claim-stdin 1 sh -c "\"$BIN/rl-cat\" -l < $TMP/claim.rec"
stderr_has claim-stdin-msg "<stdin>: record 0 at byte 0: a msgpack header"

# What rl-train --width 8 writes, rl-extract reads (its arch metadata says
# resnet18; the width is the file's).
expect width-db 0 "$BIN/rl-cat" -o "$TMP/g10" tests/data/grid10.rec
expect width-train 0 "$BIN/rl-train" -a resnet18 --width 8 --neck-dim 32 \
    -b 8 --epochs 1 -i "$TMP/g10" -o "$TMP/w8"
printf '%s\n' "$(pwd)/tests/data/rgb12x9.png 1" >"$TMP/one.txt"
mkdir -p "$TMP/w8x"
expect width-extract 0 "$BIN/rl-extract" -L gap --resize 32 --size 32 \
    -o "$TMP/w8x" -m "$TMP/w8/last.safetensors" "$TMP/one.txt"
grep -q 'resnet18 (width 8)' "$TMP/w8x/one.json" && ok width-extract-arch ||
    nok width-extract-arch

# List files: a label beyond a long, a NUL byte and an escape sequence
# are refused with the list's name and the line number, and the line is
# never echoed (no raw bytes to the terminal).
X="$BIN/rl-extract --random-init 1 -a resnet18 -L gap --resize 64 --size 64"
cp tests/data/rgb12x9.png "$TMP/a.png"
printf 'a.png 1\na.png 99999999999999999999\n' >"$TMP/big.txt"
printf 'a.png 1\na.png 2\nb\000c.png 3\n' >"$TMP/nul.txt"
printf 'a.png 1\n\033]0;owned\007x.png 2\n' >"$TMP/esc.txt"
# shellcheck disable=SC2086
expect list-label-range 1 $X -o "$TMP" "$TMP/big.txt"
stderr_has list-label-range-msg "big.txt:2: label 99999999999999999999 out of range"
# shellcheck disable=SC2086
expect list-nul 1 $X -o "$TMP" "$TMP/nul.txt"
stderr_has list-nul-msg "nul.txt:3: a NUL byte in the line"
# shellcheck disable=SC2086
expect list-control 1 $X -o "$TMP" "$TMP/esc.txt"
stderr_has list-control-msg "esc.txt:2: control byte 0x1b"
if LC_ALL=C grep -q "$(printf '\033')" "$TMP/err"; then nok list-no-raw-bytes
else ok list-no-raw-bytes; fi
cli_end

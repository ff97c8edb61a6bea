#!/bin/sh
# t_lists.sh: the tools that read list files (rl-extract, rl-knn's
# --bank-list/--query-list, rl-sample -l) take relative image paths from
# the list file's own directory, from any working directory (list.h's
# list_read_file); -r/--root (rl-extract's, rl-knn's) overrides that, and
# a list on stdin is read from the working directory.
. tests/cli/lib.sh
. tests/cli/feat_lib.sh
BIN=$(cd "$BIN" && pwd)
D=$(pwd)/tests/data
X="$BIN/rl-extract --random-init 1 -a resnet18 -L gap --resize 64 --size 64"
mkdir -p "$TMP/set/img" "$TMP/elsewhere" "$TMP/a" "$TMP/b" "$TMP/c"
cp "$D/rgb12x9.png" "$D/grey12x9.png" "$TMP/set/img/"
printf '%s\n' "img/rgb12x9.png 0" "img/grey12x9.png 1" "img/rgb12x9.png 1" \
    >"$TMP/set/list.txt"
cp "$TMP/set/list.txt" "$TMP/elsewhere/copy.txt"
cd "$TMP/elsewhere" || exit 1

# rl-extract: the list's directory, the same features as from inside it
expect extract_elsewhere 0 $X -o "$TMP/a" ../set/list.txt
(cd "$TMP/set" && $X -o "$TMP/b" list.txt) >/dev/null 2>&1 &&
    ok extract_inside || nok extract_inside
cmp -s "$TMP/a/list_gap.npy" "$TMP/b/list_gap.npy" && ok extract_same ||
    nok extract_same
# a copy of the list elsewhere: its own directory has no img/, unless -r
expect extract_copy 1 $X -o "$TMP/c" "$TMP/elsewhere/copy.txt"
stderr_has extract_copy_msg "$TMP/elsewhere/img/rgb12x9.png: No such file"
expect extract_root 0 $X -o "$TMP/c" -r ../set copy.txt
cmp -s "$TMP/a/list_gap.npy" "$TMP/c/copy_gap.npy" && ok extract_root_same ||
    nok extract_root_same
# stdin: the working directory
expect extract_stdin_elsewhere 1 sh -c "$X -o '$TMP/c' <'$TMP/set/list.txt'"
(cd "$TMP/set" && $X -o "$TMP/c" -p stdin <list.txt) >/dev/null 2>&1 &&
    cmp -s "$TMP/a/list_gap.npy" "$TMP/c/stdin_gap.npy" && ok extract_stdin ||
    nok extract_stdin

# rl-knn's montage: every tile read (exit 0) through relative lists
echo "1 0  0 1  .7 .7" | npy "$TMP/f.npy" f4 "3, 2"
echo "0 1 1" | npy "$TMP/y.npy" i4 "3,"
expect knn_elsewhere 0 "$BIN/rl-knn" -k 1 --montage "$TMP/m.png" \
    --bank-list ../set/list.txt --query-list ../set/list.txt \
    "$TMP/f.npy" "$TMP/y.npy" "$TMP/f.npy" "$TMP/y.npy"
[ -s "$TMP/m.png" ] && ok knn_montage || nok knn_montage
expect knn_copy 1 "$BIN/rl-knn" -k 1 --montage "$TMP/m2.png" \
    --bank-list copy.txt --query-list ../set/list.txt \
    "$TMP/f.npy" "$TMP/y.npy" "$TMP/f.npy" "$TMP/y.npy"
stderr_has knn_copy_msg "img/rgb12x9.png"
# -r: both lists' paths under root, the same montage as from their own
# directory; a root without the images fails naming the image; -r without
# --montage is a usage error
expect knn_root 0 "$BIN/rl-knn" -k 1 --montage "$TMP/m3.png" -r ../set \
    --bank-list copy.txt --query-list "$TMP/set/list.txt" \
    "$TMP/f.npy" "$TMP/y.npy" "$TMP/f.npy" "$TMP/y.npy"
cmp -s "$TMP/m.png" "$TMP/m3.png" && ok knn_root_same || nok knn_root_same
expect knn_root_long 1 "$BIN/rl-knn" -k 1 --montage "$TMP/m4.png" \
    --root "$TMP" --bank-list "$TMP/set/list.txt" \
    --query-list "$TMP/set/list.txt" \
    "$TMP/f.npy" "$TMP/y.npy" "$TMP/f.npy" "$TMP/y.npy"
stderr_has knn_root_long_msg "$TMP/img/rgb12x9.png: "
expect knn_root_alone 2 "$BIN/rl-knn" -k 1 -r ../set \
    "$TMP/f.npy" "$TMP/y.npy" "$TMP/f.npy" "$TMP/y.npy"
stderr_has knn_root_alone_msg "give --montage too"

# rl-sample -l: three records from the list's images
expect sample_elsewhere 0 "$BIN/rl-sample" --resize 96 --crop 90 --patch 24 \
    -l ../set/list.txt
"$BIN/rl-cat" -c <"$TMP/out" >"$TMP/count" 2>/dev/null &&
    [ "$(cat "$TMP/count")" = 3 ] && ok sample_records ||
    { nok sample_records; cat "$TMP/count" >&2; }
cli_end

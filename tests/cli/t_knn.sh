# t_knn.sh: rl-knn on a hand-made 2-D case, chunking, and bad input.
. tests/cli/lib.sh
. tests/cli/feat_lib.sh
cd "$TMP" || exit 1
# bank: (1,0) and (.9,.1) class 0, (0,1) class 1, (-1,0) class 2
echo "1 0  .9 .1  0 1  -1 0" | npy bank.npy f4 "4, 2"
echo "0 0 1 2" | npy bank_y.npy i4 "4,"
# queries near row 0 (class 0), row 2 (class 1), row 3 but labelled 1
echo "1 .05  .1 1  -1 .2" | npy q.npy f4 "3, 2"
echo "0 1 1" | npy q_y.npy i4 "3,"
cd - >/dev/null || exit 1

expect help 0 "$BIN/rl-knn" -h
expect badflag 2 "$BIN/rl-knn" -Z
expect operands 2 "$BIN/rl-knn" "$TMP/bank.npy"
expect badk 2 "$BIN/rl-knn" -k 1,x "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/q.npy" "$TMP/q_y.npy"
synopsis_ok synopsis rl-knn

# k = 1: the third query's neighbour is class 2, so top-1 = top-5 = 2/3.
# k = 2: it gets a class-1 vote too, second: top-5 (= top-2) is 3/3.
expect run 0 "$BIN/rl-knn" -k 1,2 "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/q.npy" "$TMP/q_y.npy"
cp "$TMP/out" "$TMP/table"
printf '%6s %7s %7s\n' k top1 top5 1 66.67 66.67 2 66.67 100.00 >"$TMP/want"
grep -v '^#' "$TMP/table" | cmp -s - "$TMP/want" && ok table ||
    { nok table; cat "$TMP/table" >&2; }
expect chunked 0 "$BIN/rl-knn" -k 1,2 --chunk-bank 1 --chunk-queries 2 \
    "$TMP/bank.npy" "$TMP/bank_y.npy" "$TMP/q.npy" "$TMP/q_y.npy"
cmp -s "$TMP/out" "$TMP/table" && ok chunked_same || nok chunked_same
expect json 0 "$BIN/rl-knn" --json -k 2 "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/q.npy" "$TMP/q_y.npy"
grep -q '"top5": 100.0' "$TMP/out" && grep -q '"top1_hits": 2' "$TMP/out" &&
    ok json_values || nok json_values
# the default k list needs 200 bank rows
expect k_too_big 1 "$BIN/rl-knn" "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/q.npy" "$TMP/q_y.npy"
stderr_has k_too_big_msg "k = 200 exceeds the bank's 4 rows"

# montage: 3 queries x (query + 2 neighbours) tiles of 96 + 4 px padding
d=$(pwd)/tests/data
printf '%s\n' "$d/photo64x48.jpg" "$d/rgb12x9.png" "$d/grey12x9.png" \
    "$d/photo64x48.jpg" >"$TMP/bank.txt"
printf '%s\n' "$d/rgb12x9.png" "$d/photo64x48.jpg" "$d/grey12x9.png" \
    >"$TMP/q.txt"
set -- "$TMP/bank.npy" "$TMP/bank_y.npy" "$TMP/q.npy" "$TMP/q_y.npy"
expect montage 0 "$BIN/rl-knn" -k 1,2 --montage "$TMP/m.png" \
    --bank-list "$TMP/bank.txt" --query-list "$TMP/q.txt" "$@"
cmp -s "$TMP/out" "$TMP/table" && ok montage_table || nok montage_table
# PNG IHDR: width and height, big-endian, at byte 16
wh=$(od -An -t u1 -j 16 -N 8 "$TMP/m.png" | tr -s ' \n' ' ')
[ "$wh" = " 0 0 1 48 0 0 1 48 " ] && ok montage_size ||
    { nok montage_size; echo "  IHDR '$wh'" >&2; }
expect montage_alone 2 "$BIN/rl-knn" -k 1 --montage "$TMP/m.png" "$@"
head -3 "$TMP/bank.txt" >"$TMP/bank3.txt"
expect montage_count 1 "$BIN/rl-knn" -k 1 --montage "$TMP/m.png" \
    --bank-list "$TMP/bank3.txt" --query-list "$TMP/q.txt" "$@"
stderr_has montage_count_msg "bank3.txt: 3 paths for the 4 rows of"
printf '%s\n' "$d/rgb12x9.png" "$d/notimage.jpg" "$d/grey12x9.png" \
    >"$TMP/qbad.txt"
rm -f "$TMP/m.png"
expect montage_badimage 1 "$BIN/rl-knn" -k 1 --montage "$TMP/m.png" \
    --bank-list "$TMP/bank.txt" --query-list "$TMP/qbad.txt" "$@"
stderr_has montage_badimage_msg "notimage.jpg: "
[ -s "$TMP/m.png" ] && grep -q '^ *1 ' "$TMP/out" && ok montage_badimage_rest ||
    nok montage_badimage_rest

# bad input: one line on stderr naming the file, exit 1
echo "1 .05  nan 1  -1 .2" | npy "$TMP/qnan.npy" f4 "3, 2"
expect nan 1 "$BIN/rl-knn" -k 1 "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/qnan.npy" "$TMP/q_y.npy"
stderr_has nan_msg "qnan.npy: row 1, column 0 is NaN"
echo "0 1" | npy "$TMP/q_y2.npy" i4 "2,"
expect count 1 "$BIN/rl-knn" -k 1 "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/q.npy" "$TMP/q_y2.npy"
stderr_has count_msg "q_y2.npy: 2 labels for the 3 rows of"
echo "1 0 0  0 1 0" | npy "$TMP/q3.npy" f4 "2, 3"
expect dim 1 "$BIN/rl-knn" -k 1 "$TMP/bank.npy" "$TMP/bank_y.npy" \
    "$TMP/q3.npy" "$TMP/q_y2.npy"
stderr_has dim_msg "q3.npy: rows of 3 features, but .*bank.npy has 2"
expect missing 1 "$BIN/rl-knn" -k 1 "$TMP/nosuch.npy" "$TMP/bank_y.npy" \
    "$TMP/q.npy" "$TMP/q_y.npy"
stderr_has missing_msg "nosuch.npy: No such file"
echo "0 -1 1 2" | npy "$TMP/neg_y.npy" i4 "4,"
expect neglabel 1 "$BIN/rl-knn" -k 1 "$TMP/bank.npy" "$TMP/neg_y.npy" \
    "$TMP/q.npy" "$TMP/q_y.npy"
stderr_has neglabel_msg "neg_y.npy: label 1 is -1"
expect labels_are_features 1 "$BIN/rl-knn" -k 1 "$TMP/bank.npy" \
    "$TMP/bank.npy" "$TMP/q.npy" "$TMP/q_y.npy"
stderr_has labels_are_features_msg "float32 labels"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok one_line || nok one_line
cli_end

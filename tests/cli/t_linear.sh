# t_linear.sh: rl-linear on separable clusters, seeding, output, bad input.
. tests/cli/lib.sh
. tests/cli/feat_lib.sh
# clusters N SEED: N rows of 4 features, class i % 3 at +3 on axis i % 3,
# uniform noise in [-1, 1); labels to stdout of `clusters_y`
clusters() {
	awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed)
		for (i = 0; i < n; i++) for (j = 0; j < 4; j++)
			printf "%.4f\n", (j == i % 3 ? 3 : 0) + 2 * rand() - 1 }'
}
clusters_y() { awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) print i % 3 }'; }
clusters 90 1 | npy "$TMP/tx.npy" f4 "90, 4"
clusters_y 90 | npy "$TMP/ty.npy" i4 "90,"
clusters 45 2 | npy "$TMP/vx.npy" f4 "45, 4"
clusters_y 45 | npy "$TMP/vy.npy" i4 "45,"
L="$BIN/rl-linear"
set -- "$TMP/ty.npy" "$TMP/vy.npy" "$TMP/tx.npy" "$TMP/vx.npy"

expect help 0 "$L" -h
expect badflag 2 "$L" -Z "$@"
expect operands 2 "$L" "$@" "$TMP/tx.npy"
expect badrecipe 2 "$L" -a svm "$@"
expect chan_avgpool 2 "$L" -a avgpool -c 2 "$@"
expect chan_count 2 "$L" -c 2,2 "$@"
expect steps_order 2 "$L" -m 5,3 "$@"
synopsis_ok synopsis rl-linear

# both recipes separate the clusters (a small batch for enough steps)
expect mhead 0 "$L" -b 16 -e 20 -l 0.1 "$@"
cp "$TMP/out" "$TMP/mhead"
awk 'NR > 2 && !($4 == "100.00" && $6 == "100.00") { bad = 1 }
    END { exit bad }' "$TMP/mhead" && ok mhead_separates ||
    { nok mhead_separates; cat "$TMP/mhead" >&2; }
grep -q '^# mhead: 20 epochs, lr 0.1 x0.1 at 7,13,20, momentum 0.9 nesterov' \
    "$TMP/mhead" && ok mhead_settings || { nok mhead_settings; head -1 "$TMP/mhead" >&2; }
expect avgpool 0 "$L" -a avgpool -b 16 -e 10 --json "$@"
grep -q '"top1": 100.0' "$TMP/out" && grep -q '"train_top1": 100.0' \
    "$TMP/out" && grep -q '"steps": \[' "$TMP/out" && ok avgpool_separates ||
    { nok avgpool_separates; cat "$TMP/out" >&2; }

# seeded: the same seed twice gives the same table, another seed another
expect seed_a 0 "$L" -s 7 -e 2 "$@"
cp "$TMP/out" "$TMP/a"
expect seed_b 0 "$L" -s 7 -e 2 "$@"
cmp -s "$TMP/out" "$TMP/a" && ok seed_same || nok seed_same
expect seed_c 0 "$L" -s 8 -e 2 "$@"
grep -v '^#' "$TMP/out" >"$TMP/c"
grep -v '^#' "$TMP/a" | cmp -s - "$TMP/c" && nok seed_differs || ok seed_differs

# two heads, BatchNorm2d-style channels: 2 channels of 2 features
expect two_heads 0 "$L" -e 2 -c 2 "$@" "$TMP/tx.npy" "$TMP/vx.npy"
[ "$(grep -c '^ *[12] ' "$TMP/out")" -eq 2 ] && ok two_rows || nok two_rows
expect chan_divide 1 "$L" -c 3 "$@"
stderr_has chan_divide_msg "3 BatchNorm channels do not divide the 4"

# bad input
printf '1 2 3 nan\n' | npy "$TMP/nan.npy" f4 "1, 4"
clusters 44 2 | { cat; echo 0 0 0 inf; } | npy "$TMP/vinf.npy" f4 "45, 4"
expect inf 1 "$L" -e 1 "$TMP/ty.npy" "$TMP/vy.npy" "$TMP/tx.npy" "$TMP/vinf.npy"
stderr_has inf_msg "vinf.npy: row 44, column 3 is infinite"
clusters_y 44 | npy "$TMP/vy44.npy" i4 "44,"
expect count 1 "$L" -e 1 "$TMP/ty.npy" "$TMP/vy44.npy" "$TMP/tx.npy" "$TMP/vx.npy"
stderr_has count_msg "vy44.npy: 44 labels for the 45 rows of"
awk 'BEGIN { for (i = 0; i < 135; i++) print i % 7 }' |
    npy "$TMP/v3.npy" f4 "45, 3"
expect dim 1 "$L" -e 1 "$TMP/ty.npy" "$TMP/vy.npy" "$TMP/tx.npy" "$TMP/v3.npy"
stderr_has dim_msg "v3.npy: rows of 3 features, but .*tx.npy has 4"
expect missing 1 "$L" -e 1 "$TMP/ty.npy" "$TMP/vy.npy" "$TMP/nosuch.npy" "$TMP/vx.npy"
stderr_has missing_msg "nosuch.npy: No such file"
echo 0 | npy "$TMP/y1.npy" i4 "1,"
expect nan 1 "$L" -e 1 "$TMP/ty.npy" "$TMP/y1.npy" "$TMP/tx.npy" "$TMP/nan.npy"
stderr_has nan_msg "nan.npy: row 0, column 3 is NaN"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok one_line || nok one_line
cli_end

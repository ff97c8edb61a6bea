#!/bin/sh
# rl-svm: exit codes and messages, and small end-to-end runs whose answer is
# known: the fixtures in tests/data/svm (from tests/ref/gen_svm_ref.py) are
# separable, so every test AP is 100.
. tests/cli/lib.sh
S=$BIN/rl-svm
D=tests/data/svm
set -- "$D/trx.npy" "$D/try.npy" "$D/tex.npy" "$D/tey.npy"

expect help 0 "$S" -h
grep -q '^usage: rl-svm' "$TMP/out" && grep -q -- '--lowshot' "$TMP/out" &&
    ok help-text || nok help-text
expect version 0 "$S" -V
expect bad-flag 2 "$S" --no-such-flag "$@"
stderr_has bad-flag-usage "usage:"
expect three-operands 2 "$S" "$D/trx.npy" "$D/try.npy" "$D/tex.npy"
expect bad-threads 2 "$S" -j 0 "$@"
expect bad-costs 2 "$S" -c 1,abc "$@"
stderr_has bad-costs-msg "abc"
expect bad-solver 2 "$S" --solver fast "$@"
expect bad-shots 2 "$S" --lowshot -k 0 "$@"
expect samples-need-lowshot 2 "$S" --samples "$D/lowshot" "$@"
expect shots-need-lowshot 2 "$S" -k 4 "$@"

expect missing-file 1 "$S" "$TMP/none.npy" "$D/try.npy" "$D/tex.npy" \
    "$D/tey.npy"
stderr_has missing-file-msg "none.npy"
expect nan 1 "$S" "$D/trx_nan.npy" "$D/try.npy" "$D/tex.npy" "$D/tey.npy"
stderr_has nan-msg "trx_nan.npy: row 3 holds a NaN"
expect label-rows 1 "$S" "$D/trx.npy" "$D/tey.npy" "$D/tex.npy" "$D/tey.npy"
stderr_has label-rows-msg "20 rows of labels for 30 rows"
expect dims 1 "$S" "$D/trx.npy" "$D/try.npy" "$D/try.npy" "$D/try.npy"
stderr_has dims-msg "3 features a row"

expect full 0 "$S" -s 3 --json "$TMP/r.json" "$@"
grep -q '^mAP    100.00  (3 of 3 classes)' "$TMP/out" && ok full-map ||
    nok full-map
cp "$TMP/out" "$TMP/full.out"
grep -q '"map": 100' "$TMP/r.json" && grep -q '"cv_ap"' "$TMP/r.json" &&
    ok full-json || nok full-json
expect full-again 0 "$S" -s 3 -j 1 "$@"
cmp -s "$TMP/out" "$TMP/full.out" && ok same-seed-any-threads ||
    nok same-seed-any-threads
expect full-dense 0 "$S" --solver dense "$@"
grep -q '^mAP    100.00' "$TMP/out" && ok dense-map || nok dense-map
expect single-label 0 "$S" "$D/trx.npy" "$D/try1.npy" "$D/tex.npy" \
    "$D/tey1.npy"
grep -q '^mAP    100.00  (3 of 3 classes)' "$TMP/out" && ok single-map ||
    nok single-map

# A class without test positives: AP undefined, reported, exit 1, the mAP
# over the other classes still printed.
expect no-test-positive 1 "$S" "$D/trx.npy" "$D/try.npy" "$D/tex.npy" \
    "$D/tey_nopos.npy"
stderr_has no-test-positive-msg "class 2: no positive test row"
grep -q '^mAP    100.00  (2 of 3 classes)' "$TMP/out" && ok no-test-map ||
    nok no-test-map

expect lowshot 0 "$S" --lowshot -k 1,4 -n 2 --json "$TMP/l.json" "$@"
[ "$(grep -c '^ *[14]  ' "$TMP/out")" -eq 2 ] && ok lowshot-rows ||
    nok lowshot-rows
grep -q 'test-selected (optimistic, as MMSelfSup)' "$TMP/out" &&
    grep -q 'CV-selected' "$TMP/out" && ok lowshot-labels ||
    nok lowshot-labels
grep -q '"cv_selected"' "$TMP/l.json" && ok lowshot-json || nok lowshot-json
# k = 4 shots of separable data: some cost ranks every test row right.
awk '$1 == 4 && $3 == "100.00"' "$TMP/out" | grep -q . && ok lowshot-k4 ||
    nok lowshot-k4
expect lowshot-no-test-positive 1 "$S" --lowshot -k 2 -n 1 "$D/trx.npy" \
    "$D/try.npy" "$D/tex.npy" "$D/tey_nopos.npy"
stderr_has lowshot-no-test-positive-msg "class 2: no positive test row"
expect lowshot-short 0 "$S" --lowshot -k 12 -n 1 "$@"
stderr_has lowshot-short-msg "only 10 positives"
expect lowshot-files 0 "$S" --lowshot -k 1 -n 2 --samples "$D/lowshot" "$@"
expect lowshot-files-missing 1 "$S" --lowshot -k 2 -n 1 --samples \
    "$D/lowshot" "$@"
stderr_has lowshot-files-msg "train_targets_sample1_k2.npy"
cli_end

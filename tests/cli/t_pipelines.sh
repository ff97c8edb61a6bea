#!/bin/sh
# Every pipeline end to end on tiny data (tests/mktiny.sh: a VOC-format tree
# of 40 small JPEGs and a labelled folder of 27), with tiny settings, so
# that a change in a tool's options or output cannot silently break them:
# the expected files exist, the tables parse (one number per layer, each in
# 0..100), a second run does nothing, and changing one knob reruns only the
# stages that use it. Also pipe.sh's table rendering on fixed input.
. tests/cli/lib.sh
P=pipelines
M="make --no-print-directory BIN=$BIN"

# --------------------------------------------------------------------------
# pipe.sh on fixed input

printf 'feat1\t10.50\nfeat2\t30.25\nfeat3\t20.00\n' >"$TMP/a.tsv"
[ "$(sh $P/pipe.sh best "$TMP/a.tsv")" = feat2 ] && ok best || nok best
[ "$(sh $P/pipe.sh keys "$TMP/a.tsv")" = feat1,feat2,feat3 ] && ok keys || nok keys
r=$(sh $P/pipe.sh row 'SVM' bestlist "$TMP/a.tsv" "$TMP/none.tsv")
[ "$r" = "| SVM | 10.50, **30.25**, 20.00 | n/a |" ] && ok row-bestlist ||
    { nok row-bestlist; echo "  $r" >&2; }
r=$(sh $P/pipe.sh row 'best' best "$TMP/a.tsv")
[ "$r" = "| best | feat2 → **30.25** |" ] && ok row-best ||
    { nok row-best; echo "  $r" >&2; }
r=$(sh $P/pipe.sh head Benchmark x y | tr '\n' '#')
[ "$r" = "| Benchmark | x | y |#|---|---|---|#" ] && ok head ||
    { nok head; echo "  $r" >&2; }
printf 'mAP    12.34  (20 of 20 classes)\n' >"$TMP/feat3.txt"
[ "$(sh $P/pipe.sh svm "$TMP/feat3.txt")" = "$(printf 'feat3\t12.34')" ] &&
    ok parse-svm || nok parse-svm
printf 'class cost\n' >"$TMP/feat4.txt"
expect parse-svm-bad 1 sh $P/pipe.sh svm "$TMP/feat4.txt"
stderr_has parse-svm-bad-named "feat4.txt: no mAP"

# Every tool the pipelines run must be built: nothing here is optional.
for t in rl-import rl-sample rl-train rl-voc rl-extract rl-svm rl-linear rl-knn; do
	[ -x "$BIN/$t" ] && ok "built-$t" || nok "built-$t"
done
[ $cli_fail -eq 0 ] || cli_end

# --------------------------------------------------------------------------
# the tiny data

D=$TMP/data
sh tests/mktiny.sh "$D" >"$TMP/log" 2>&1 && ok mktiny ||
    { nok mktiny; cat "$TMP/log" >&2; cli_end; }

# nums FILE ROW [COL]: the numbers in column COL (default 1) of the markdown
# row whose label starts with ROW, one a line (bold marks dropped).
nums() {
	awk -F '|' -v r="$2" -v c="${3:-1}" 'index($2, " " r) == 1 { print $(2 + c) }' "$1" |
	    tr -d '*' | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep .
}
# in_range NAME FILE ROW COUNT [COL]: ROW of FILE holds COUNT numbers in
# 0..100 (in column COL), and nothing else.
in_range() {
	all=$(nums "$2" "$3" "${5:-1}" | wc -l)
	n=$(nums "$2" "$3" "${5:-1}" | awk '$1 ~ /^[0-9]+(\.[0-9]+)?$/ && $1 >= 0 && $1 <= 100' | wc -l)
	if [ "$n" -eq "$4" ] && [ "$all" -eq "$4" ]; then ok "$1"
	else nok "$1"; echo "  $2: row '$3': $n numbers in 0..100 of $all, want $4" >&2
		cat "$2" >&2; fi
}
# run NAME MAKEFILE ARGS...: run a pipeline, keep its output in $TMP/NAME.log.
run() {
	n=$1 f=$2; shift 2
	if $M -f $P/$f "$@" >"$TMP/$n.log" 2>&1; then ok "$n"
	else nok "$n"; tail -20 "$TMP/$n.log" >&2; fi
}
# quiet NAME MAKEFILE ARGS...: a rerun with nothing to do runs no stage.
quiet() {
	n=$1 f=$2; shift 2
	$M -f $P/$f "$@" >"$TMP/$n.log" 2>&1
	if ! grep -q '^==> ' "$TMP/$n.log"; then ok "$n"
	else nok "$n"; grep '^==> ' "$TMP/$n.log" >&2; fi
}
# stages LOG: the stages a run ran, sorted, on one line.
stages() {
	sed -n 's/^==> \([^ ]*\) .*/\1/p' "$1" | sort | tr '\n' ' ' | sed 's/ $//'
}

# --------------------------------------------------------------------------
# pretrain.mk: a few steps on the folder's images

O=$TMP/res
PRE="OUT=$O/pre IMAGES=$D/folder/train.txt ARCH=resnet18 RESIZE=64 CROP=60 PATCH=16 STEPS=4 BATCH=4"
run pretrain pretrain.mk $PRE
CK=$O/pre/run/last.safetensors
[ -s "$CK" ] && ok pretrain-ckpt || nok pretrain-ckpt
quiet pretrain-again pretrain.mk $PRE

# --------------------------------------------------------------------------
# voc_svm.mk and lowshot.mk on the VOC tree

VOC="VOCDEVKIT=$D/VOCdevkit CKPT=$CK ARCH=resnet18 RESIZE=192 SIZE=192 OUT=$O/voc"
run voc-svm voc_svm.mk $VOC
for f in voc/trainval_labels.npy feat/trainval_feat1.npy feat/test_feat5.npy \
    svm/feat1.txt svm/feat5.txt svm.tsv voc_svm.md times.tsv; do
	[ -s "$O/voc/$f" ] && ok "voc-svm-$f" || nok "voc-svm-$f"
done
in_range voc-svm-layers "$O/voc/voc_svm.md" "VOC07 SVM, feat1" 5
grep -q '^| VOC07 SVM, best layer (mAP) | feat[1-5] → \*\*[0-9.]*\*\* |$' \
    "$O/voc/voc_svm.md" && ok voc-svm-best || { nok voc-svm-best; cat "$O/voc/voc_svm.md" >&2; }
[ "$(grep -c '\*\*' "$O/voc/voc_svm.md")" -eq 2 ] && ok voc-svm-bold || nok voc-svm-bold
quiet voc-svm-again voc_svm.mk $VOC

# lowshot without LAYER: the best layer of the table above, nothing else rerun.
run lowshot lowshot.mk $VOC SHOTS=1,2 SAMPLES=2
best=$(sh $P/pipe.sh best "$O/voc/svm.tsv")
[ "$(cat "$O/voc/lowshot.layer")" = "$best" ] && ok lowshot-best-layer ||
    { nok lowshot-best-layer; echo "  layer $(cat "$O/voc/lowshot.layer"), best $best" >&2; }
in_range lowshot-row "$O/voc/lowshot.md" "VOC07 low-shot SVM ($best), k = 1,2" 2
[ "$(stages "$TMP/lowshot.log")" = "lowshot.txt" ] && ok lowshot-only ||
    { nok lowshot-only; echo "  ran: $(stages "$TMP/lowshot.log")" >&2; }
quiet lowshot-again lowshot.mk $VOC SHOTS=1,2 SAMPLES=2
run lowshot-feat1 lowshot.mk $VOC SHOTS=1 SAMPLES=1 LAYER=feat1
in_range lowshot-feat1-row "$O/voc/lowshot.md" "VOC07 low-shot SVM (feat1), k = 1" 1

# A changed knob reruns its stage and what follows, nothing else.
run voc-svm-args voc_svm.mk $VOC SVM_ARGS="-j 1 -c 1,10"
[ "$(stages "$TMP/voc-svm-args.log")" = "svm/feat1.txt svm/feat2.txt svm/feat3.txt svm/feat4.txt svm/feat5.txt" ] &&
    ok rerun-changed-only || { nok rerun-changed-only; echo "  ran: $(stages "$TMP/voc-svm-args.log")" >&2; }

# --------------------------------------------------------------------------
# linear.mk and knn.mk on the folder, random init

FOLD="TRAIN_LIST=$D/folder/train.txt VAL_LIST=$D/folder/val.txt RANDOM_INIT=1 ARCH=resnet18 RESIZE=192 SIZE=192"
run linear linear.mk $FOLD OUT=$O/lin MHEAD_EPOCHS=2 AVGPOOL_EPOCHS=2
in_range linear-mhead "$O/lin/linear.md" "Linear mhead" 5
in_range linear-avgpool "$O/lin/linear.md" "Linear AvgPool" 1
run knn knn.mk $FOLD OUT=$O/knn KS=1,3
in_range knn-row "$O/knn/knn.md" "kNN top-1, k = 1,3" 2
[ -s "$O/knn/feat/train_gap.npy" ] && [ ! -e "$O/knn/feat/train_feat1.npy" ] &&
    ok knn-gap-only || nok knn-gap-only

# --------------------------------------------------------------------------
# fashion.mk (the demo) on a few images of Fashion-MNIST

FM="OUT=$O/fm N_PRETRAIN=40 N_TRAIN=40 N_TEST=20 STEPS=2 BATCH=8 SHOTS=1,2 SAMPLES=1 MHEAD_EPOCHS=1 AVGPOOL_EPOCHS=1 KS=1,5"
run fashion fashion.mk $FM
R=$O/fm/results.md
for c in 1 2; do
	in_range fashion-svm-$c "$R" "SVM, feat1" 5 $c
	in_range fashion-lowshot-$c "$R" "Low-shot SVM (feat" 2 $c
	in_range fashion-mhead-$c "$R" "Linear mhead" 5 $c
	in_range fashion-avgpool-$c "$R" "Linear AvgPool" 1 $c
	in_range fashion-knn-$c "$R" "kNN top-1, k = 1,5" 2 $c
done
grep -q '^| SVM, best layer (mAP) | feat[1-5] → \*\*[0-9.]*\*\* | feat[1-5] → \*\*[0-9.]*\*\* |$' "$R" &&
    ok fashion-best || { nok fashion-best; cat "$R" >&2; }
grep -q 'pretext loss [0-9.]*, accuracy [0-9.]*%' "$R" && ok fashion-pretext || nok fashion-pretext
grep -q '^| \*\*total\*\* |' "$R" && ok fashion-times || nok fashion-times
for f in pretrain/run/curves.png relloc/knn.png random/knn.png; do
	[ -s "$O/fm/$f" ] && ok "fashion-$f" || nok "fashion-$f"
done
quiet fashion-again fashion.mk $FM
run fashion-ks fashion.mk $FM KS=1,3
[ "$(stages "$TMP/fashion-ks.log")" = "random/knn.txt relloc/knn.txt" ] && ok fashion-ks-only ||
    { nok fashion-ks-only; echo "  ran: $(stages "$TMP/fashion-ks.log")" >&2; }
in_range fashion-ks-row "$R" "kNN top-1, k = 1,3" 2 2

# Usage errors name what is missing.
expect voc-needs-devkit 2 $M -f $P/voc_svm.mk CKPT=$CK OUT=$O/x
stderr_has voc-needs-devkit-msg "VOCDEVKIT"
expect knn-needs-model 2 $M -f $P/knn.mk TRAIN_LIST=a VAL_LIST=b OUT=$O/x
stderr_has knn-needs-model-msg "RANDOM_INIT"

cli_end

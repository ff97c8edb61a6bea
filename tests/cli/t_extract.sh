# t_extract.sh: rl-extract on the committed images (a JPEG, RGB, grey and
# RGBA PNGs) with randomly initialised ResNet-18s and the tiny reference
# nets of tests/ref: output files and shapes, labels, the sidecar,
# reproducibility, and every refusal (exit status, one clear line, no file
# left behind). Feature values against PyTorch are t_extract.c's.
. tests/cli/lib.sh
X=$BIN/rl-extract
D=$(pwd)/tests/data
mkdir -p "$TMP/o" "$TMP/p"
printf '%s\n' "$D/photo64x48.jpg 2" "$D/rgb12x9.png 0" "$D/grey12x9.png 1" \
    "$D/rgba12x9.png 2" >"$TMP/four.txt"

# npy_shape FILE: the dtype and shape of a .npy header, e.g. "<f4 (4, 9216)"
npy_shape() {
	head -c 128 "$1" | tail -c 118 | tr -d '\n' |
	    LC_ALL=C sed -n "s/.*'descr': '\([^']*\)'.*'shape': (\([^)]*\)).*/\1 (\2)/p"
}
# left DIR: no temporary or output file in DIR
left() {
	n=$(find "$1" -type f | wc -l)
	if [ "$n" -eq 0 ]; then ok "$2"; else nok "$2"; ls "$1" >&2; fi
}
# shape_is NAME FILE WANT
shape_is() {
	s=$(npy_shape "$2")
	if [ "$s" = "$3" ]; then ok "$1"
	else nok "$1"; echo "  $2: '$s', want '$3'" >&2; fi
}

expect help 0 "$X" -h
expect badflag 2 "$X" -Z "$TMP/four.txt"
stderr_has badflag_usage "usage:"
expect nomodel 2 "$X" "$TMP/four.txt"
stderr_has nomodel_msg "give one of -m model and --random-init seed"
expect twomodels 2 "$X" -m x --random-init 1 "$TMP/four.txt"
expect badpreset 2 "$X" --random-init 1 -P crop "$TMP/four.txt"
stderr_has badpreset_msg "svm, center or none"
expect badlayers 2 "$X" --random-init 1 -L feat1,feat9 "$TMP/four.txt"
stderr_has badlayers_msg "feat9"
expect badarch 2 "$X" --random-init 1 -a resnet101 "$TMP/four.txt"
expect badarch_m 2 "$X" -m tests/ref/basic.safetensors -a resnet101 \
    "$TMP/four.txt"
stderr_has badarch_msg "arch 'resnet101': resnet18, resnet34 or resnet50"
expect badbatch 2 "$X" --random-init 1 -b 0 "$TMP/four.txt"
expect twolists 2 "$X" --random-init 1 "$TMP/four.txt" "$TMP/four.txt"

# ResNet-18, every feature: names, dims at 224, labels, sidecar
expect r18 0 "$X" --random-init 5 -a resnet18 -b 3 -P center -o "$TMP/o" \
    "$TMP/four.txt"
shape_is r18_feat1 "$TMP/o/four_feat1.npy" "<f4 (4, 9216)"
shape_is r18_feat2 "$TMP/o/four_feat2.npy" "<f4 (4, 2304)"
shape_is r18_feat3 "$TMP/o/four_feat3.npy" "<f4 (4, 2048)"
shape_is r18_feat4 "$TMP/o/four_feat4.npy" "<f4 (4, 2304)"
shape_is r18_feat5 "$TMP/o/four_feat5.npy" "<f4 (4, 2048)"
shape_is r18_gap "$TMP/o/four_gap.npy" "<f4 (4, 512)"
shape_is r18_labels "$TMP/o/four_labels.npy" "<i8 (4,)"
got=$(od -An -v -t d8 -j 128 "$TMP/o/four_labels.npy" | tr -s ' \n' ' ')
[ "$got" = " 2 0 1 2 " ] && ok labels_values || { nok labels_values; echo "  '$got'" >&2; }
j=$TMP/o/four.json
grep -q '"images": 4' "$j" && grep -q '"arch": "resnet18"' "$j" &&
    grep -q '"preset": "center"' "$j" && grep -q '"seed": 5' "$j" &&
    grep -q '"file": "four_labels.npy"' "$j" && ok sidecar ||
    { nok sidecar; cat "$j" >&2; }
n=$(ls "$TMP/o" | wc -l)
[ "$n" -eq 8 ] && ok eight_files || { nok eight_files; ls "$TMP/o" >&2; }

# the same seed and batch size give the same bytes, with any number of
# decoding threads; another seed gives other features
expect r18_again 0 "$X" --random-init 5 -a resnet18 -b 3 -j 3 -P center \
    -L feat5,gap -o "$TMP/p" -p again "$TMP/four.txt"
cmp -s "$TMP/o/four_feat5.npy" "$TMP/p/again_feat5.npy" &&
    cmp -s "$TMP/o/four_gap.npy" "$TMP/p/again_gap.npy" && ok same_seed ||
    nok same_seed
[ ! -f "$TMP/p/again_feat1.npy" ] && ok layers_subset || nok layers_subset
expect r18_seed6 0 "$X" --random-init 6 -a resnet18 -P center -L gap \
    -o "$TMP/p" -p six "$TMP/four.txt"
cmp -s "$TMP/o/four_gap.npy" "$TMP/p/six_gap.npy" && nok other_seed ||
    ok other_seed
rm -f "$TMP/p"/*

# ResNet-50 dims at 224 (one image)
head -1 "$TMP/four.txt" >"$TMP/one.txt"
expect r50 0 "$X" --random-init 1 -o "$TMP/p" "$TMP/one.txt"
for f in feat1:9216 feat2:9216 feat3:8192 feat4:9216 feat5:8192 gap:2048; do
	shape_is "r50_${f%:*}" "$TMP/p/one_${f%:*}.npy" "<f4 (1, ${f#*:})"
done
rm -f "$TMP/p"/*

# lists: stdin and -r root, several labels (int32 matrix), none, mixed
(cd "$D" && printf 'rgb12x9.png 1 0 -1\ngrey12x9.png 0 1 1\n') |
    "$X" --random-init 1 -a resnet18 -L gap -r "$D" -o "$TMP/p" \
    >"$TMP/out" 2>"$TMP/err" && ok stdin || nok stdin
shape_is multilabel "$TMP/p/features_labels.npy" "<i4 (2, 3)"
got=$(od -An -v -t d4 -j 128 "$TMP/p/features_labels.npy" | tr -s ' \n' ' ')
[ "$got" = " 1 0 -1 0 1 1 " ] && ok multilabel_values ||
    { nok multilabel_values; echo "  '$got'" >&2; }
printf '%s\n' "$D/rgb12x9.png" >"$TMP/nolabel.txt"
expect nolabels 0 "$X" --random-init 1 -a resnet18 -L gap -o "$TMP/p" \
    "$TMP/nolabel.txt"
[ -f "$TMP/p/nolabel_gap.npy" ] && [ ! -f "$TMP/p/nolabel_labels.npy" ] &&
    ok nolabels_file || nok nolabels_file
rm -f "$TMP/p"/*
printf '%s\n' "$D/rgb12x9.png 1" "$D/grey12x9.png" >"$TMP/mixed.txt"
expect mixed_labels 1 "$X" --random-init 1 -a resnet18 -o "$TMP/p" \
    "$TMP/mixed.txt"
stderr_has mixed_labels_msg "mixed.txt:2: 0 labels"

# failures leave nothing behind
printf '%s\n' "$D/rgb12x9.png 1" "$D/no-such.jpg 0" >"$TMP/missing.txt"
expect missing 1 "$X" --random-init 1 -a resnet18 -o "$TMP/p" \
    "$TMP/missing.txt"
stderr_has missing_msg "no-such.jpg: No such file or directory (line 2"
left "$TMP/p" missing_nothing_left
printf '%s\n' "$D/rgb12x9.png 1" "$D/notimage.jpg 0" "$D/truncated.jpg 1" \
    >"$TMP/corrupt.txt"
expect corrupt 1 "$X" --random-init 1 -a resnet18 -b 1 -o "$TMP/p" \
    "$TMP/corrupt.txt"
stderr_has corrupt_msg "notimage.jpg: "
left "$TMP/p" corrupt_nothing_left
expect none_size 1 "$X" --random-init 1 -a resnet18 -P none -o "$TMP/p" \
    "$TMP/four.txt"
stderr_has none_size_msg "photo64x48.jpg: image is 64x48; preset none"
left "$TMP/p" none_nothing_left
expect small_input 1 "$X" --random-init 1 -a resnet18 --size 64 \
    -o "$TMP/p" "$TMP/four.txt"
stderr_has small_input_msg "feat3: stage 2 is 8x8, too small"
expect nodir 1 "$X" --random-init 1 -o "$TMP/nodir" "$TMP/four.txt"
stderr_has nodir_msg "nodir: not a directory"
expect nolist 1 "$X" --random-init 1 -o "$TMP/p" "$TMP/nolist.txt"

# a sidecar that cannot be written (a directory is in its way) takes the
# features and labels already renamed with it
mkdir "$TMP/p/x.json"
expect sidecar_fails 1 "$X" --random-init 1 -a resnet18 -L feat1,gap \
    -o "$TMP/p" -p x "$TMP/four.txt"
stderr_has sidecar_fails_msg "x.json: "
n=$(ls "$TMP/p" | wc -l)
[ "$n" -eq 1 ] && ok sidecar_fails_rollback || { nok sidecar_fails_rollback; ls "$TMP/p" >&2; }
rmdir "$TMP/p/x.json"

# a failed commit keeps the files of an earlier run (rl-extract(1)): a
# first run writes y_*; a second, other seed, meets a directory where its
# sidecar goes, after its features and labels were renamed into place;
# they are put back, byte for byte, and nothing else is left
mkdir "$TMP/q"
expect keep_first 0 "$X" --random-init 1 -a resnet18 -L feat1,gap \
    -o "$TMP/q" -p y "$TMP/four.txt"
cp "$TMP/q/y_feat1.npy" "$TMP/q/y_gap.npy" "$TMP/q/y_labels.npy" "$TMP/o/"
rm "$TMP/q/y.json" && mkdir "$TMP/q/y.json"
expect keep_second_fails 1 "$X" --random-init 2 -a resnet18 -L feat1,gap \
    -o "$TMP/q" -p y "$TMP/four.txt"
stderr_has keep_second_msg "y.json: "
for f in y_feat1.npy y_gap.npy y_labels.npy; do
	cmp -s "$TMP/o/$f" "$TMP/q/$f" && ok "keep_old_$f" ||
	    { nok "keep_old_$f"; ls -l "$TMP/q" >&2; }
done
n=$(ls -A "$TMP/q" | wc -l)
[ "$n" -eq 4 ] && ok keep_nothing_else || { nok keep_nothing_else; ls -A "$TMP/q" >&2; }
rm -r "$TMP/q" "$TMP/o/y_feat1.npy" "$TMP/o/y_gap.npy" "$TMP/o/y_labels.npy"

# a signal mid-run (the writers are open once their temp files exist)
# removes the temp files and ends the process by that signal
i=0; : >"$TMP/many.txt"
while [ $i -lt 300 ]; do echo "$D/photo64x48.jpg $i" >>"$TMP/many.txt"; i=$((i + 1)); done
"$X" --random-init 1 -a resnet18 -b 2 -o "$TMP/p" "$TMP/many.txt" \
    2>"$TMP/err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! ls "$TMP/p" | grep -q tmp; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid
wait $pid; st=$?
[ $st -eq 143 ] && ok sigterm_status || { nok sigterm_status; echo "  exit $st" >&2; }
left "$TMP/p" sigterm_nothing_left

# checkpoints: the tiny reference nets (inferred), wrong arch, truncated
B=tests/ref/basic.safetensors
expect ckpt_basic 0 "$X" -m "$B" -L feat1,gap -o "$TMP/p" -p basic \
    "$TMP/one.txt"
shape_is ckpt_basic_gap "$TMP/p/basic_gap.npy" "<f4 (1, 16)"
grep -q '"arch": "resnet(basic, blocks 2-1-1-1, width 2)"' \
    "$TMP/p/basic.json" && grep -q '"crc32": "' "$TMP/p/basic.json" &&
    ok ckpt_sidecar || { nok ckpt_sidecar; cat "$TMP/p/basic.json" >&2; }
rm -f "$TMP/p"/*
expect wrong_arch 1 "$X" -m "$B" -a resnet18 -o "$TMP/p" "$TMP/one.txt"
stderr_has wrong_arch_msg "basic.safetensors: holds a resnet(basic, blocks 2-1-1-1, width 2) backbone, not the resnet18 asked for"
left "$TMP/p" wrong_arch_nothing_left
head -c 60000 "$B" >"$TMP/trunc.safetensors"
expect truncated 1 "$X" -m "$TMP/trunc.safetensors" -o "$TMP/p" \
    "$TMP/one.txt"
stderr_has truncated_msg "trunc.safetensors: "
expect nockpt 1 "$X" -m "$TMP/none.safetensors" -o "$TMP/p" "$TMP/one.txt"
stderr_has nockpt_msg "none.safetensors: No such file"
left "$TMP/p" ckpt_nothing_left
cli_end

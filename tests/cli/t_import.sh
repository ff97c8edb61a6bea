#!/bin/sh
# rl-import on the real Fashion-MNIST files (Debian's dataset-fashion-mnist):
# counts, label histograms against the IDX labels read independently, PNG
# size, and truncated IDX files refused with one line.
. tests/cli/lib.sh
BS=$(printf '\b')   # mandoc -Tascii overstrikes: X BS X
I=$BIN/rl-import FM=/usr/share/datasets/fashion-mnist N=3000

expect help 0 "$I" -h
grep -q '^usage: rl-import ' "$TMP/out" && grep -q fashion-mnist "$TMP/out" &&
	ok help-lists-sets || nok help-lists-sets
syn=$(mandoc -Tascii -Owidth=500 man/rl-import.1 | sed "s/.$BS//g" |
	sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' '  ' |
	sed 's/^ *//; s/ *$//')
use=$(head -1 "$TMP/out" | sed 's/^usage: //; s/ *$//')
[ "$syn" = "$use" ] && ok synopsis-matches-usage ||
	{ nok synopsis-matches-usage; printf '  man: %s\n  use: %s\n' "$syn" "$use" >&2; }
expect bad-flag 2 "$I" -Q fashion-mnist "$TMP/o"
expect no-outdir 2 "$I" fashion-mnist
expect unknown-set 2 "$I" imagenet "$TMP/o"
stderr_has unknown-set-msg "unknown data set 'imagenet'"

expect import 0 "$I" -n $N fashion-mnist "$TMP/fm"
for s in train test; do
	[ "$(wc -l < "$TMP/fm/$s.txt")" -eq $N ] && ok "$s-list-count" || nok "$s-list-count"
	[ "$(ls "$TMP/fm/$s" | wc -l)" -eq $N ] && ok "$s-png-count" || nok "$s-png-count"
done
# The labels, read straight from the IDX files (8-byte header).
hist() { sort -n | uniq -c | sed 's/^ *//'; }
for p in train:train t10k:test; do
	gzip -dc "$FM/${p%%:*}-labels-idx1-ubyte.gz" | tail -c +9 | head -c $N |
		od -An -tu1 -v | tr -s ' ' '\n' | grep . | hist > "$TMP/want"
	cut -d' ' -f2 "$TMP/fm/${p#*:}.txt" | hist > "$TMP/got"
	cmp -s "$TMP/want" "$TMP/got" && [ "$(wc -l < "$TMP/got")" -eq 10 ] &&
		ok "${p#*:}-label-histogram" || nok "${p#*:}-label-histogram"
done
head -1 "$TMP/fm/train.txt" | grep -qx 'train/00000.png 9' && ok list-form || nok list-form
[ "$(vipsheader -f width "$TMP/fm/test/02999.png")x$(vipsheader -f height "$TMP/fm/test/02999.png")x$(vipsheader -f bands "$TMP/fm/test/02999.png")" = 28x28x1 ] &&
	ok png-28x28 || nok png-28x28
grep -q '^9 Ankle boot$' "$TMP/fm/classes.txt" && ok classes || nok classes
# The images are the IDX bytes: image 0 of the test split, row 14.
gzip -dc "$FM/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c 784 |
	tail -c +393 | head -c 28 | od -An -tu1 -v | tr -s ' \n' '  ' > "$TMP/want"
vips crop "$TMP/fm/test/00000.png" "$TMP/row.v" 0 14 28 1 &&
	vips rawsave "$TMP/row.v" "$TMP/row.raw" &&
	od -An -tu1 -v "$TMP/row.raw" | tr -s ' \n' '  ' > "$TMP/got"
cmp -s "$TMP/want" "$TMP/got" && ok pixels-match-idx || nok pixels-match-idx
# rl-sample reads the result through the list file.
expect sample-imported 0 "$BIN/rl-sample" --resize 96 --crop 90 --patch 24 -l "$TMP/fm/test.txt"
[ "$("$BIN/rl-cat" -c "$TMP/out")" -eq $N ] && ok sample-count || nok sample-count

# Truncated copies are refused with one line naming the file.
mkdir "$TMP/cut"
cp "$FM"/*labels* "$TMP/cut/"
gzip -dc "$FM/train-images-idx3-ubyte.gz" | head -c 100000 | gzip > "$TMP/cut/train-images-idx3-ubyte.gz"
expect truncated-data 1 "$I" -d "$TMP/cut" fashion-mnist "$TMP/o1"
stderr_has truncated-data-msg "train-images-idx3-ubyte.gz: truncated: 99984 of 47040000"
[ "$(wc -l < "$TMP/err")" -eq 1 ] && ok one-line || nok one-line
head -c 20000 "$FM/train-images-idx3-ubyte.gz" > "$TMP/cut/train-images-idx3-ubyte.gz"
expect truncated-gzip 1 "$I" -d "$TMP/cut" fashion-mnist "$TMP/o2"
stderr_has truncated-gzip-msg "train-images-idx3-ubyte.gz: truncated"
cp "$FM/train-labels-idx1-ubyte.gz" "$TMP/cut/train-images-idx3-ubyte.gz"
expect wrong-file 1 "$I" -d "$TMP/cut" fashion-mnist "$TMP/o3"
stderr_has wrong-file-msg "1 dimensions, want 3"
cli_end

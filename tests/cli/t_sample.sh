#!/bin/sh
# rl-sample: exit codes, bad inputs, determinism across thread counts, the
# three sinks, the preview, signals. Images are made here with libvips from
# tests/data/photo64x48.jpg.
. tests/cli/lib.sh
BS=$(printf '\b')   # mandoc -Tascii overstrikes: X BS X
S=$BIN/rl-sample CAT=$BIN/rl-cat D=tests/data
SMALL="--resize 96 --crop 90 --patch 24"

expect help 0 "$S" -h
grep -q '^usage: rl-sample ' "$TMP/out" && ok help-stdout || nok help-stdout
# The usage text is the man page's SYNOPSIS.
syn=$(mandoc -Tascii -Owidth=500 man/rl-sample.1 | sed "s/.$BS//g" |
	sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' '  ' |
	sed 's/^ *//; s/ *$//')
use=$(sed -n '/^usage:/,/^  -/p' "$TMP/out" | sed '$d' | tr -s ' \n' '  ' |
	sed 's/^usage: //; s/ *$//')
[ "$syn" = "$use" ] && ok synopsis-matches-usage ||
	{ nok synopsis-matches-usage; printf '  man: %s\n  use: %s\n' "$syn" "$use" >&2; }
expect bad-flag 2 "$S" -Q "$D/photo64x48.jpg"
expect two-sinks 2 "$S" -o "$TMP/x" -z 5555 "$D/photo64x48.jpg"
expect bad-preset 2 "$S" -p imagenet "$D/photo64x48.jpg"
stderr_has bad-preset-msg "unknown preset"
expect bad-geometry 2 "$S" --resize 80 --crop 90 "$D/photo64x48.jpg"
expect bad-number 2 "$S" -j 0 "$D/photo64x48.jpg"
# A terminal on stdout (a pseudo-terminal from script(1)) is refused.
if command -v script >/dev/null; then
	expect tty-refused 2 script -qec "\"$S\" \"$D/photo64x48.jpg\"" /dev/null
	grep -q "refusing to write binary data to a terminal" "$TMP/out" &&
		ok tty-refused-msg || nok tty-refused-msg
fi

# A small set: four good JPEGs and a PNG of different sizes.
i=0
for s in 3 4 5 6 7; do
	vips resize "$D/photo64x48.jpg" "$TMP/g$i.jpg" $s >/dev/null 2>&1
	i=$((i + 1))
done
vips copy "$TMP/g4.jpg" "$TMP/g4.png"
head -c 3000 "$TMP/g2.jpg" > "$TMP/cut.jpg"
vips crop "$D/rgb12x9.png" "$TMP/tiny.png" 0 0 6 6
printf '%s 1\n%s 2\n%s 3\ncut.jpg 9\n%s 4\n' g0.jpg g1.jpg g2.jpg g3.jpg \
	> "$TMP/list"
printf 'g4.png 5\nmissing.jpg 6\n' >> "$TMP/list"
cp "$D/notimage.jpg" "$TMP/notimage.jpg"
echo "notimage.jpg 7" >> "$TMP/list"
echo "tiny.png 8" >> "$TMP/list"

expect bad-inputs-exit-1 1 "$S" -s 5 -l "$TMP/list"
cp "$TMP/out" "$TMP/a.rec"
stderr_has truncated-named "cut.jpg: .*Premature end"
stderr_has missing-named "missing.jpg: No such file"
stderr_has nonimage-named "notimage.jpg: not an image"
stderr_has tiny-named "tiny.png: too small"
stderr_has skipped-count "4 of 9 images skipped"
n=$(grep -c 'jpg\|png' "$TMP/err")
[ "$n" -eq 4 ] && ok one-line-each || nok one-line-each
"$CAT" -l "$TMP/a.rec" | cut -f1,3 | tr '\t' ' ' > "$TMP/ids"
printf '0 1\n1 2\n2 3\n4 4\n5 5\n' | cmp -s - "$TMP/ids" && ok good-images-out ||
	{ nok good-images-out; cat "$TMP/ids" >&2; }

# A decompression bomb: a real 30000x30000 PNG (5.7 MB, 900 Mpixel) is
# skipped from its header at once, named, and the other image sampled;
# --max-pixels moves the limit.
"$BIN/tests/t_img" --png-bomb "$TMP/bomb.png" 30000 30000 || nok make-bomb
t0=$(date +%s)
expect bomb-skipped 1 "$S" -s 5 "$TMP/bomb.png" "$TMP/g0.jpg"
[ $(($(date +%s) - t0)) -le 3 ] && ok bomb-quick || nok bomb-quick
stderr_has bomb-named "bomb.png: 30000 x 30000 = 900000000 pixels, over the limit of 178956970"
stderr_has bomb-count "1 of 2 images skipped"
[ "$("$CAT" -c "$TMP/out")" = 1 ] && ok bomb-others-sampled ||
	nok bomb-others-sampled
expect max-pixels 1 "$S" --max-pixels 3000 "$TMP/g0.jpg" "$TMP/g4.jpg"
stderr_has max-pixels-named "g4.jpg: .* over the limit of 3000"
rm -f "$TMP/bomb.png"

# The same seed gives the same bytes at 1 and 2 threads; another does not.
grep -v 'cut\|missing\|notimage\|tiny' "$TMP/list" > "$TMP/good"
"$S" -s 5 -j 1 -n 3 -l "$TMP/good" > "$TMP/j1.rec"
"$S" -s 5 -j 2 -n 3 -l "$TMP/good" > "$TMP/j2.rec"
"$S" -s 6 -j 2 -n 3 -l "$TMP/good" > "$TMP/s6.rec"
cmp -s "$TMP/j1.rec" "$TMP/j2.rec" && ok same-seed-j1-j2 || nok same-seed-j1-j2
cmp -s "$TMP/j1.rec" "$TMP/s6.rec" && nok other-seed-differs || ok other-seed-differs
[ "$("$CAT" -c "$TMP/j1.rec")" = 15 ] && ok grids-per-image || nok grids-per-image
"$S" -p doersch2015 -s 2 -j 1 -n 20 -l "$TMP/good" > "$TMP/d1.rec"
"$S" -p doersch2015 -s 2 -j 2 -n 20 -l "$TMP/good" > "$TMP/d2.rec"
cmp -s "$TMP/d1.rec" "$TMP/d2.rec" && [ "$("$CAT" -c "$TMP/d1.rec")" = 100 ] &&
	ok doersch-same-seed-j1-j2 || nok doersch-same-seed-j1-j2

# Operands, and paths on stdin, give the same records as the list.
(cd "$TMP" && "$S" -s 5 -n 3 g0.jpg g1.jpg g2.jpg g3.jpg g4.png) > "$TMP/op.rec"
(cd "$TMP" && cut -d' ' -f1 good | "$S" -s 5 -n 3) > "$TMP/in.rec"
"$CAT" -l "$TMP/j1.rec" | cut -f1,2,4,5,7- > "$TMP/j1.l"
"$CAT" -l "$TMP/op.rec" | cut -f1,2,4,5,7- > "$TMP/op.l"
cmp -s "$TMP/op.rec" "$TMP/in.rec" && cmp -s "$TMP/j1.l" "$TMP/op.l" &&
	ok operands-stdin-list || nok operands-stdin-list

# stdout, LMDB and ZeroMQ deliver the same records.
"$S" -s 5 -n 3 -l "$TMP/good" -o "$TMP/db" && "$CAT" -i "$TMP/db" > "$TMP/db.rec" &&
	cmp -s "$TMP/j1.rec" "$TMP/db.rec" && ok lmdb-same || nok lmdb-same
"$CAT" -m -i "$TMP/db" | grep -q '"seed": *5' && ok lmdb-meta-seed || nok lmdb-meta-seed
"$CAT" -m -i "$TMP/db" | grep -q '"patch": *64' && ok lmdb-meta-grid || nok lmdb-meta-grid
# A sink error (here a full disk) is one message and status 1.
expect full-disk 1 sh -c "exec \"$S\" \"$D/photo64x48.jpg\" > /dev/full"
stderr_has full-disk-msg "<stdout>: No space left on device"
[ "$(wc -l < "$TMP/err")" -eq 1 ] && ok full-disk-one-line || nok full-disk-one-line
expect lmdb-exists 1 "$S" -s 5 -l "$TMP/good" -o "$TMP/db"
ep=ipc://$TMP/zs
"$CAT" -t 30 -z "$ep" > "$TMP/z.rec" 2>"$TMP/zerr" & pid=$!
expect zmq-send 0 "$S" -s 5 -n 3 -l "$TMP/good" -z ">$ep"
wait $pid && cmp -s "$TMP/j1.rec" "$TMP/z.rec" && ok zmq-same ||
	{ nok zmq-same; cat "$TMP/zerr" >&2; }

# Small images (Fashion-MNIST-like, 28x28) with geometry flags.
vips crop "$D/photo64x48.jpg" "$TMP/f.png" 10 10 28 28
expect small-geometry 0 "$S" $SMALL "$TMP/f.png"
"$CAT" -l "$TMP/out" | cut -f4 | grep -qx 24 && ok small-patch || nok small-patch
expect doersch 0 "$S" -p doersch2015 "$TMP/g4.png" "$TMP/g3.jpg"
expect doersch-project 0 "$S" -p doersch2015 --chroma project "$TMP/g4.png"
# A 28x10 image cannot hold the 42 px lattice within 2000 pixels.
vips crop "$TMP/f.png" "$TMP/wide.png" 0 0 28 10
expect doersch-small-refused 1 "$S" -p doersch2015 --pixels 1000-2000 \
	--patch 10 --gap 5 --jitter 1 "$TMP/f.png" "$TMP/wide.png"
stderr_has doersch-small-msg "wide.png: too small"

# The preview: 8 grids of 90 px in 4 columns with 8 px padding.
expect preview 0 "$S" $SMALL -n 4 --preview "$TMP/p.png" -o "$TMP/pdb" \
	"$TMP/g0.jpg" "$TMP/g1.jpg"
[ "$(vipsheader -f width "$TMP/p.png")x$(vipsheader -f height "$TMP/p.png")" = 400x204 ] &&
	ok preview-size || nok preview-size

# SIGINT: stops, commits what it wrote, exits 128+2.
# (20000 images: several seconds, so the signal comes while it works.)
awk 'BEGIN { for (i = 0; i < 20000; i++) print "f.png" }' > "$TMP/many"
"$S" --resize 24 --crop 24 --patch 6 -l "$TMP/many" -o "$TMP/sig" 2>"$TMP/serr" & pid=$!
while [ ! -f "$TMP/sig/data.mdb" ]; do sleep 0.05; done
sleep 0.3; kill -INT $pid; wait $pid; rc=$?
[ $rc -eq 130 ] && ok sigint-status || { nok sigint-status; echo "  rc $rc" >&2; }
grep -q interrupted "$TMP/serr" && ok sigint-msg || nok sigint-msg
n=$("$CAT" -c -i "$TMP/sig") && [ "$n" -ge 0 ] && [ "$n" -lt 20000 ] &&
	ok sigint-committed || nok sigint-committed
# SIGTERM while pushing over ZeroMQ: no end-of-stream marker, so the
# receiver reports a sender that ended early; no wait for a receiver.
# (The signal comes once records arrived: a sender that never sent one
# is not told from a stray connection, and only the timeout reports it.)
ep=ipc://$TMP/zsig
"$CAT" -t 30 -z "$ep" > "$TMP/zc.rec" 2>"$TMP/zcerr" & cpid=$!
"$S" --resize 24 --crop 24 --patch 6 -l "$TMP/many" -z ">$ep" 2>/dev/null & pid=$!
n=0
while [ ! -s "$TMP/zc.rec" ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 143 ] && ok sigterm-zmq-status || { nok sigterm-zmq-status; echo "  rc $rc" >&2; }
wait $cpid; rc=$?
[ $rc -eq 1 ] && grep -q "without ending its stream" "$TMP/zcerr" &&
	ok sigterm-zmq-receiver-told || { nok sigterm-zmq-receiver-told; cat "$TMP/zcerr" >&2; }
cli_end

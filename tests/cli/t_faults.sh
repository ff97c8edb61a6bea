#!/bin/sh
# Faults: kill -9 of rl-train at several moments, then --resume, ends on a
# checkpoint byte-identical to an uninterrupted run's; a full disk (a
# small tmpfs mounted here) makes every writer print one line naming the
# file and exit 1, and leaves what it wrote before intact. Without the
# right to mount (not root, a container without CAP_SYS_ADMIN) the disk
# part is skipped with a message. Tiny networks (--width 8) keep it fast.
. tests/cli/lib.sh
T=$BIN/rl-train CAT=$BIN/rl-cat S=$BIN/rl-sample X=$BIN/rl-extract
REC=tests/data/grid10.rec
TINY="-a resnet18 --width 8 --neck-dim 32 -b 2"
"$CAT" -o "$TMP/db" "$REC" || nok make-lmdb
R="$TINY -i $TMP/db --max-steps 120 --ckpt-every 1 --keep 2 --log-every 1"

# --- kill -9 at several moments, resume, compare the final checkpoints
expect whole 0 "$T" $R -o "$TMP/ref"
# lines N: wait until the run's metrics have N lines (or it ended)
lines() {
	n=0
	while [ "$(cat "$TMP/k/metrics.jsonl" 2>/dev/null | wc -l)" -lt "$1" ] &&
	    kill -0 $pid 2>/dev/null && [ $n -lt 600 ]; do
		sleep 0.02; n=$((n + 1))
	done
}
kills=0
for moment in start 5 30 0.35 70 0.2; do
	more=
	[ -e "$TMP/k/last.safetensors" ] && more=--resume
	"$T" $R -o "$TMP/k" $more >/dev/null 2>"$TMP/kerr" &
	pid=$!
	case $moment in
	start) ;;                       # at once: before any checkpoint
	0.*) sleep "$moment" ;;         # anywhere, likely inside a write
	*) lines "$moment" ;;
	esac
	kill -9 $pid 2>/dev/null && kills=$((kills + 1))
	wait $pid 2>/dev/null
	# killed before its first checkpoint: start again from nothing
	[ -e "$TMP/k/last.safetensors" ] || rm -rf "$TMP/k"
done
[ $kills -ge 4 ] && ok "killed-$kills-times" || nok "killed-$kills-times"
more=
[ -e "$TMP/k/last.safetensors" ] && more=--resume
expect resume-to-end 0 "$T" $R -o "$TMP/k" $more
cmp -s "$TMP/ref/ckpt-00000120.safetensors" "$TMP/k/ckpt-00000120.safetensors" &&
	ok kill9-resume-bit-exact || nok kill9-resume-bit-exact

# --- rl-extract names a decompression bomb and fails, at once
"$BIN/tests/t_img" --png-bomb "$TMP/bomb.png" 30000 30000 || nok make-bomb
printf '%s 1\n%s 1\n' "$(pwd)/tests/data/photo64x48.jpg" "$TMP/bomb.png" \
    > "$TMP/blist"
mkdir "$TMP/bf"
expect extract-bomb 1 "$X" --random-init 1 -a resnet18 -L gap --size 32 \
    --resize 36 -o "$TMP/bf" "$TMP/blist"
# one_line NAME PATTERN: stderr is one line, matching PATTERN
one_line() {
	if [ "$(wc -l < "$TMP/err")" -eq 1 ] && grep -q -- "$2" "$TMP/err"; then
		ok "$1"
	else nok "$1"; head -5 "$TMP/err" >&2; fi
}
one_line extract-bomb-named "bomb.png: 30000 x 30000 = 900000000 pixels, over the limit"
rm -f "$TMP/bomb.png"

# --- a full disk for every writer
D=$TMP/disk
mkdir -p "$D"
if ! mount -t tmpfs -o size=8m tmpfs "$D" 2>"$TMP/merr"; then
	echo "# full-disk tests skipped: cannot mount a tmpfs ($(head -1 "$TMP/merr"))"
	cli_end
fi
trap 'umount "$D" 2>/dev/null' EXIT
# fill: use up what is left of the tmpfs
fill() {
	i=0
	while dd if=/dev/zero of="$D/fill$i" bs=4k count=64 2>/dev/null; do
		i=$((i + 1))
	done
	sync
}
ENOSPC="No space left on device"

# rl-cat -o and rl-sample -o: an LMDB; rl-cat to a file: whole records
fill
expect cat-lmdb-full 1 "$CAT" -o "$D/c.db" "$REC"
one_line cat-lmdb-msg "$D/c.db.*$ENOSPC"
expect cat-file-full 1 sh -c "\"$CAT\" \"$REC\" > \"$D/c.rec\""
grep -q "$ENOSPC" "$TMP/err" && ok cat-file-msg || nok cat-file-msg
expect sample-lmdb-full 1 "$S" -o "$D/s.db" tests/data/photo64x48.jpg
one_line sample-lmdb-msg "$D/s.db.*$ENOSPC"
rm -rf "$D"/*

# rl-train -o: the checkpoint of the resumed run fails; the old one stays
expect train-first 0 "$T" $TINY -i "$TMP/db" -o "$D/run" --max-steps 2
cp "$D/run/ckpt-00000002.safetensors" "$TMP/ck2"
fill
expect train-full 1 "$T" $TINY -i "$TMP/db" -o "$D/run" --max-steps 4 --resume
grep -q "$D/run/.*$ENOSPC" "$TMP/err" && ok train-full-msg ||
	{ nok train-full-msg; cat "$TMP/err" >&2; }
cmp -s "$TMP/ck2" "$D/run/ckpt-00000002.safetensors" &&
	[ "$(readlink "$D/run/last.safetensors")" = ckpt-00000002.safetensors ] &&
	ok train-full-last-intact || nok train-full-last-intact
rm -rf "$D"/*

# rl-extract -o: features of a tiny network; the earlier files stay
echo "$(pwd)/tests/data/photo64x48.jpg 1" > "$TMP/list"
XO="--random-init 1 -a resnet18 -L feat1,gap --size 32 --resize 36"
mkdir "$D/f"
expect extract-first 0 "$X" $XO -o "$D/f" -p a "$TMP/list"
cp "$D/f/a_feat1.npy" "$TMP/f1"
fill
expect extract-full 1 "$X" $XO -o "$D/f" -p a "$TMP/list"
one_line extract-full-msg "$D/f/a_.*$ENOSPC"
cmp -s "$TMP/f1" "$D/f/a_feat1.npy" && ok extract-full-intact ||
	nok extract-full-intact
rm -rf "$D"/*

# rl-voc: a VOC tree with empty images (rl-voc only lists them)
V=$TMP/VOCdevkit/VOC2007
mkdir -p "$V/ImageSets/Main" "$V/JPEGImages"
for cls in aeroplane bicycle bird boat bottle bus car cat chair cow \
    diningtable dog horse motorbike person pottedplant sheep sofa train \
    tvmonitor; do
	printf '000001  1\n000002 -1\n' >"$V/ImageSets/Main/${cls}_trainval.txt"
	printf '000003  1\n' >"$V/ImageSets/Main/${cls}_test.txt"
done
for id in 000001 000002 000003; do : >"$V/JPEGImages/$id.jpg"; done
mkdir "$D/voc"
fill
expect voc-full 1 "$BIN/rl-voc" -o "$D/voc" "$TMP/VOCdevkit"
one_line voc-full-msg "$D/voc/.*$ENOSPC"
rm -rf "$D"/*

# rl-import: the real Fashion-MNIST, 50 images a split
if [ -d /usr/share/datasets/fashion-mnist ]; then
	fill
	expect import-full 1 "$BIN/rl-import" -n 50 fashion-mnist "$D/fm"
	one_line import-full-msg "$D/fm.*$ENOSPC"
	rm -rf "$D"/*
else
	echo "# rl-import full-disk test skipped: no Fashion-MNIST"
fi
cli_end

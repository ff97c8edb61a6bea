#!/bin/sh
# tests/mktiny.sh: make tiny data sets for trying the pipelines without the
# real ones. Usage: sh tests/mktiny.sh DIR
#
#   DIR/VOCdevkit/VOC2007/   a VOC-format tree: JPEGImages/NNNNNN.jpg (40x32)
#                            and ImageSets/Main/<class>_{trainval,test}.txt
#                            for the 20 VOC classes, 20 images per split.
#                            Image i of a split is present (1) for classes
#                            i and i+1 (mod 20), difficult (0) for class
#                            i+10, absent (-1) otherwise: every class has 2
#                            positives and 1 difficult image in each split.
#   DIR/folder/              a labelled folder: img/*.jpg (40x32) of 3
#                            classes (a photo, its mirror image, its
#                            negative) and the lists train.txt (6 a class)
#                            and val.txt (3 a class) of `path label` lines.
#
# The images are crops of tests/data/photo64x48.jpg made with vips(1); a few
# distinct crops are copied to many names, since each vips call costs a
# process start.
set -e
[ $# -eq 1 ] || { echo "usage: sh tests/mktiny.sh DIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
photo=$top/tests/data/photo64x48.jpg
dir=$1
voc=$dir/VOCdevkit/VOC2007
fold=$dir/folder
mkdir -p "$voc/JPEGImages" "$voc/ImageSets/Main" "$fold/img" "$dir/src"

# Distinct sources: 4 crops of each of 3 variants of the photo.
vips flip "$photo" "$dir/src/v1.png" horizontal
vips invert "$photo" "$dir/src/v2.png"
cp "$photo" "$dir/src/v0.jpg"
for v in 0 1 2; do
	src=$dir/src/v$v.jpg
	[ $v -eq 0 ] || src=$dir/src/v$v.png
	for c in 0 1 2 3; do
		vips crop "$src" "$dir/src/v${v}c$c.jpg" $((c * 7)) $((c * 5)) 40 32
	done
done

classes="aeroplane bicycle bird boat bottle bus car cat chair cow
diningtable dog horse motorbike person pottedplant sheep sofa train tvmonitor"

# VOC: ids 000001..000020 trainval, 000021..000040 test.
for split in trainval test; do
	base=0
	[ $split = test ] && base=20
	i=0
	while [ $i -lt 20 ]; do
		id=$(printf '%06d' $((base + i + 1)))
		cp "$dir/src/v$((i % 3))c$((i % 4)).jpg" "$voc/JPEGImages/$id.jpg"
		c=0
		for cls in $classes; do
			if [ $c -eq $i ] || [ $c -eq $(((i + 1) % 20)) ]; then v=1
			elif [ $c -eq $(((i + 10) % 20)) ]; then v=0
			else v=-1; fi
			printf '%s %2d\n' "$id" $v >>"$voc/ImageSets/Main/${cls}_$split.tmp"
			c=$((c + 1))
		done
		i=$((i + 1))
	done
	for cls in $classes; do
		mv "$voc/ImageSets/Main/${cls}_$split.tmp" \
		    "$voc/ImageSets/Main/${cls}_$split.txt"
	done
	sed 's/ .*//' "$voc/ImageSets/Main/aeroplane_$split.txt" \
	    >"$voc/ImageSets/Main/$split.txt"
done

# Folder: class = variant; train uses crops 0-2 twice, val crops 1-3.
: >"$fold/train.txt"
: >"$fold/val.txt"
for v in 0 1 2; do
	for n in 0 1 2 3 4 5; do
		cp "$dir/src/v${v}c$((n % 3)).jpg" "$fold/img/tr$v$n.jpg"
		echo "img/tr$v$n.jpg $v" >>"$fold/train.txt"
	done
	for n in 0 1 2; do
		cp "$dir/src/v${v}c$((n + 1)).jpg" "$fold/img/va$v$n.jpg"
		echo "img/va$v$n.jpg $v" >>"$fold/val.txt"
	done
done
rm -rf "$dir/src"

# t_voc.sh: rl-voc on a tiny VOC2007 tree made here (all 20 class files,
# 3 trainval and 2 test images).
. tests/cli/lib.sh
. tests/cli/feat_lib.sh
V=$TMP/VOCdevkit/VOC2007
mkdir -p "$V/ImageSets/Main" "$V/JPEGImages" "$TMP/o"
classes="aeroplane bicycle bird boat bottle bus car cat chair cow diningtable
dog horse motorbike person pottedplant sheep sofa train tvmonitor"
c=0
for cls in $classes; do
	# class c: image 000007 present when c is even, 000003 difficult for
	# c = 3, everything else absent; ids deliberately out of order
	a=-1; [ $((c % 2)) -eq 0 ] && a=1
	b=-1; [ $c -eq 3 ] && b=0
	printf '000007 %2d\n000003 %2d\n000010 -1\n' $a $b \
	    >"$V/ImageSets/Main/${cls}_trainval.txt"
	t=-1; [ "$cls" = tvmonitor ] && t=1
	printf '000004 -1\n000001 %2d\n' $t >"$V/ImageSets/Main/${cls}_test.txt"
	c=$((c + 1))
done
for id in 000001 000003 000004 000007 000010; do
	: >"$V/JPEGImages/$id.jpg"
done

expect help 0 "$BIN/rl-voc" -h
synopsis_ok synopsis rl-voc
expect badflag 2 "$BIN/rl-voc" -Z "$V"
expect nodir 2 "$BIN/rl-voc"

expect convert 0 "$BIN/rl-voc" -o "$TMP/o" "$TMP/VOCdevkit"
R=$(cd "$V" && pwd -P)
printf '%s\n' "$R/JPEGImages/000003.jpg" "$R/JPEGImages/000007.jpg" \
    "$R/JPEGImages/000010.jpg" >"$TMP/want_trainval"
printf '%s\n' "$R/JPEGImages/000001.jpg" "$R/JPEGImages/000004.jpg" \
    >"$TMP/want_test"
cat "$TMP/want_trainval" "$TMP/want_test" >"$TMP/want_all"
cmp -s "$TMP/o/trainval.txt" "$TMP/want_trainval" && ok list_trainval ||
    nok list_trainval
cmp -s "$TMP/o/test.txt" "$TMP/want_test" && ok list_test || nok list_test
cmp -s "$TMP/o/trainvaltest.txt" "$TMP/want_all" && ok list_concat ||
    nok list_concat

# label rows: 000003 (0 absent, -1 difficult for class 3), 000007 (1 for
# even classes, 0 for odd), 000010 (all 0)
row3="0 0 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
row7="1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0"
row10="0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
head -c 128 "$TMP/o/trainval_labels.npy" | grep -q "'<i4'.*(3, 20)" &&
    ok labels_header || nok labels_header
got=$(od -An -v -t d4 -j 128 "$TMP/o/trainval_labels.npy" | tr -s ' \n' ' ')
[ "$got" = " $row3 $row7 $row10 " ] && ok labels_trainval ||
    { nok labels_trainval; echo "  got '$got'" >&2; }
got=$(od -An -v -t d4 -j 128 "$TMP/o/test_labels.npy" | tr -s ' \n' ' ')
want=" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 $row10 "
[ "$got" = "$want" ] && ok labels_test || { nok labels_test; echo "  got '$got'" >&2; }

# one split, given the VOC2007 directory itself
mkdir "$TMP/one"
expect one_split 0 "$BIN/rl-voc" -o "$TMP/one" "$V" test
[ -f "$TMP/one/test.txt" ] && [ ! -f "$TMP/one/trainval.txt" ] &&
    [ ! -f "$TMP/one/test.txt.txt" ] && ok one_split_files || nok one_split_files
# a list that cannot be put in place (a directory in its way): one line
# naming it, and no temp file left
mkdir -p "$TMP/blocked/test.txt"
expect blocked_list 1 "$BIN/rl-voc" -o "$TMP/blocked" "$V" test
stderr_has blocked_list_msg "blocked/test.txt: Is a directory"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && [ "$(ls "$TMP/blocked")" = test.txt ] &&
    ok blocked_list_clean || { nok blocked_list_clean; ls "$TMP/blocked" >&2; }

# bad trees
expect notvoc 1 "$BIN/rl-voc" -o "$TMP/o" "$TMP/o"
stderr_has notvoc_msg "no ImageSets/Main"
mv "$V/JPEGImages/000010.jpg" "$TMP/x.jpg"
expect missing_image 1 "$BIN/rl-voc" -o "$TMP/o" "$V"
stderr_has missing_image_msg "000010.jpg: No such file"
expect missing_image_nocheck 0 "$BIN/rl-voc" -n -o "$TMP/o" "$V"
mv "$TMP/x.jpg" "$V/JPEGImages/000010.jpg"
mv "$V/ImageSets/Main/sheep_test.txt" "$TMP/sheep"
expect missing_class 1 "$BIN/rl-voc" -o "$TMP/o" "$V"
stderr_has missing_class_msg "sheep_test.txt: No such file"
mv "$TMP/sheep" "$V/ImageSets/Main/sheep_test.txt"
printf '000007 1\n000003 1\n000011 -1\n' >"$V/ImageSets/Main/cat_trainval.txt"
expect ids_disagree 1 "$BIN/rl-voc" -o "$TMP/o" "$V"
stderr_has ids_disagree_msg "cat_trainval.txt: lacks id 000010"
printf '000007 1\n000003 yes\n000010 -1\n' >"$V/ImageSets/Main/cat_trainval.txt"
expect malformed 1 "$BIN/rl-voc" -o "$TMP/o" "$V"
stderr_has malformed_msg "cat_trainval.txt:2: value 'yes'"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok one_line || nok one_line
expect outdir 1 "$BIN/rl-voc" -o "$TMP/nosuch" "$V"
cli_end

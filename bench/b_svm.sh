#!/bin/sh
# b_svm: rl-svm against scikit-learn's LinearSVC (bench/sklearn_svm.py:
# MMSelfSup's VOC07 SVM protocol) on the same synthetic
# VOC07-like features, in the same run, 2 threads each. Prints both times,
# both mAPs, the speed ratio and the mAP difference.
#
# The data (bench/svm_data.py, fixed seed): 5011 train x 9216 and 4952
# test rows, 20 classes with VOC07's positive rates, some difficult labels,
# nonnegative features. The peer takes 10-30 minutes on 2 cores.
# SVM_BENCH_SMALL=1: 1000 x 2048 train, 1000 test, for a quick look.
set -e
: "${BIN:=build}" "${TMP:=$(mktemp -d)}"
peer=$(pwd)/bench/sklearn_svm.py
if [ "${SVM_BENCH_SMALL:-0}" = 1 ]; then
	size="--train 1000 --test 1000 --dim 2048 --signal 0.12"
else
	size=
fi
# shellcheck disable=SC2086
/usr/bin/python3 bench/svm_data.py "$TMP/data" $size
cd "$TMP/data"
set -- train_x.npy train_y.npy test_x.npy test_y.npy
echo "data: $(/usr/bin/python3 -c 'import numpy as n; a=n.load("train_x.npy",
    mmap_mode="r"); b=n.load("test_x.npy", mmap_mode="r");
print("train %d x %d, test %d" % (a.shape + b.shape[:1]))')"

now() { date +%s.%N; }
t0=$(now)
"$BIN/rl-svm" -j 2 --json ours.json "$@" >ours.txt
t1=$(now)
/usr/bin/python3 "$peer" "$@" --jobs 2 >peer.json
t2=$(now)

/usr/bin/python3 - "$t0" "$t1" "$t2" <<'PY'
import json, sys
t0, t1, t2 = map(float, sys.argv[1:])
ours, peer = json.load(open("ours.json")), json.load(open("peer.json"))
a, b = t1 - t0, t2 - t1
print(f"rl-svm          {a:8.1f} s (whole process)  mAP {ours['map']:.3f}"
      f"  ({ours['fits']} fits, {ours['fits_at_max_iter']} at max_iter)")
print(f"sklearn         {b:8.1f} s (whole process)  mAP {peer['map']:.3f}"
      f"  ({peer['seconds']:.1f} s in its fits)")
print(f"speed ratio     {b / a:8.2f}x whole process, "
      f"{peer['seconds'] / a:.2f}x against the peer's fit time alone")
d = [abs(x - y) for x, y in zip(ours["ap"], peer["ap"]) if x is not None]
same = sum(x == y for x, y in zip(ours["cost"], peer["costs"]))
print(f"mAP difference  {ours['map'] - peer['map']:+.3f}  (max per-class AP "
      f"difference {max(d):.3f}; same cost chosen for {same} of "
      f"{len(d)} classes)")
PY

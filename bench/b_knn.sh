#!/bin/sh
# rl-knn against DINO's kNN in PyTorch (bench/torch_knn.py: MMSelfSup's
# code path, queries in chunks of 500) on the same .npy files: a 50000 x
# 2048 bank of clustered, ReLU'd features, 5000 queries, 1000 classes,
# k = 10,20,100,200. Both times are wall clock with the file loading; the
# two tables must agree (ties aside).
: "${BIN:=build}" "${TMP:=$(mktemp -d)}"
PY=/usr/bin/python3 NB=${NB:-50000} NQ=${NQ:-5000} DIM=${DIM:-2048}
K=10,20,100,200
$PY bench/torch_knn.py make "$TMP" "$NB" "$NQ" "$DIM" 1000 || exit 1
cat "$TMP"/*.npy > /dev/null
echo "bank $NB x $DIM, $NQ queries, 1000 classes, k = $K, $(nproc) cores"
# CPU seconds as well as wall: on a shared machine the wall clock mostly
# measures the neighbours' load (the peer's CPU includes `import torch`).
/usr/bin/time -f "%U %S" -o "$TMP/ptime" \
    $PY bench/torch_knn.py run "$TMP" "$K" > "$TMP/peer" || exit 1
/usr/bin/time -f "%e %U %S" -o "$TMP/time" "$BIN/rl-knn" -k "$K" \
    "$TMP/bank.npy" "$TMP/bank_y.npy" "$TMP/query.npy" "$TMP/query_y.npy" \
    > "$TMP/ours" || exit 1
flop=$(echo "$NB $NQ $DIM" | awk '{ printf "%.0f", 2 * $1 * $2 * $3 / 1e9 }')
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(head -1 "$TMP/peer") $(cat "$TMP/ptime") $(cat "$TMP/time") $flop \
    $($PY -c 'import torch; print(torch.__version__)')" | awk '{
	pc = $2 + $3; oc = $5 + $6
	printf "torch %s: %7.2f s wall %7.2f s CPU\n", $8, $1, pc
	printf "rl-knn:             %7.2f s wall %7.2f s CPU\n", $4, oc
	printf "ratio torch / rl-knn: %.2fx wall, %.2fx CPU " \
	    "(similarities: %d GFLOP, rl-knn %.0f GFLOP per CPU second)\n",
	    $1 / $4, pc / oc, $7, $7 / oc }'
echo "     k  torch top1/top5    rl-knn top1/top5"
tail -n +2 "$TMP/peer" > "$TMP/p"
grep -v '^#' "$TMP/ours" | tail -n +2 | paste "$TMP/p" - |
    awk '{ printf "%6d  %7.2f %7.2f    %7.2f %7.2f%s\n", $1, $2, $3, $5, $6,
    ($2 == $5 && $3 == $6) ? "" : "  (differ)" }'

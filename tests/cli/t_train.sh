#!/bin/sh
# rl-train: learning on images with spatial structure, bit-exact resume,
# the NaN and gradient guards, the stuck-at-chance warning, every input
# kind (stdin, LMDB, ZeroMQ with two senders and a dead one), signals,
# the plot. Small networks (ResNet-18 at width 16, 24-pixel patches) keep
# it quick; images are made here with libvips: red grows to the right,
# green downwards, blue is noise, so where a patch sits is learnable.
. tests/cli/lib.sh
T=$BIN/rl-train S=$BIN/rl-sample CAT=$BIN/rl-cat
SMALL="-a resnet18 --width 16 --neck-dim 128 -b 8"
GEO="--resize 110 --crop 96 --patch 24"

for i in 0 1 2 3; do
	vips xyz "$TMP/xy.v" 128 128 &&
	vips extract_band "$TMP/xy.v" "$TMP/x.v" 0 &&
	vips extract_band "$TMP/xy.v" "$TMP/y.v" 1 &&
	vips gaussnoise "$TMP/n.v" 128 128 --sigma 40 --mean 128 --seed $i &&
	vips bandjoin "$TMP/x.v $TMP/y.v $TMP/n.v" "$TMP/j.v" &&
	vips linear "$TMP/j.v" "$TMP/l.v" "2 2 1" "0 0 0" &&
	vips cast "$TMP/l.v" "$TMP/img$i.png" uchar ||
	nok make-images
	# and images with nothing to learn: noise in every channel
	vips gaussnoise "$TMP/g.v" 128 128 --sigma 60 --mean 128 \
	    --seed $((i + 10)) &&
	vips bandjoin "$TMP/g.v $TMP/g.v $TMP/g.v" "$TMP/h.v" &&
	vips cast "$TMP/h.v" "$TMP/noise$i.png" uchar || nok make-noise
done
ls "$TMP"/img*.png > "$TMP/list"
ls "$TMP"/noise*.png > "$TMP/noiselist"
"$S" -s 1 -n 64 $GEO -l "$TMP/list" -o "$TMP/db" 2>"$TMP/err" ||
	{ nok sample-lmdb; cat "$TMP/err" >&2; }

# last_acc DIR: the mean accuracy of the last two metrics lines, in %.
last_acc() {
	tail -2 "$1/metrics.jsonl" | sed 's/.*"acc":\([0-9.]*\).*/\1/' |
	    awk '{ s += $1 } END { printf "%d\n", 100 * s / NR }'
}

# --- usage
expect no-run-dir 2 "$T" -i "$TMP/db"
stderr_has no-run-dir-msg "no run directory"
expect two-inputs 2 "$T" -o "$TMP/x" -i "$TMP/db" -z 5555
expect ipe-with-lmdb 2 "$T" -o "$TMP/x" -i "$TMP/db" --iters-per-epoch 3
expect bad-arch 2 "$T" -o "$TMP/x" -a vgg16 -i "$TMP/db"
expect missing-lmdb 1 "$T" -o "$TMP/x" -i "$TMP/nope"
stderr_has missing-lmdb-msg "nope"

# --- learning: 64 steps of 64 pairs on the LMDB, accuracy well above 12.5%
expect learn 0 "$T" $SMALL -i "$TMP/db" -o "$TMP/run" --lr 0.05 \
    --warmup 1 --epochs 2 --log-every 8
a=$(last_acc "$TMP/run")
[ "$a" -gt 40 ] && ok "learn-acc-$a%" ||
	{ nok "learn-acc-$a%"; cat "$TMP/run/metrics.jsonl" >&2; }
[ "$(wc -l < "$TMP/run/metrics.jsonl")" -eq 8 ] && ok metrics-lines ||
	nok metrics-lines
grep -q '"step":64,"epoch":1,"lr":0.05,"loss":[0-9.]*,"acc":[0-9.]*,"pairs_s":[0-9.]*,"data_wait":[0-9.]*,"grad_norm":[0-9.e+-]*,"time":' \
    "$TMP/run/metrics.jsonl" && ok metrics-fields || nok metrics-fields
[ "$(readlink "$TMP/run/last.safetensors")" = ckpt-00000064.safetensors ] &&
	ok last-link || nok last-link
head -c 4 "$TMP/run/curves.png" | od -c | grep -q 'P   N   G' &&
	ok plot-written || nok plot-written
# the header names the tensors and the metadata
head -c 20000 "$TMP/run/last.safetensors" > "$TMP/hdr"
for k in '"conv1.weight"' '"layer4.1.bn2.running_var"' '"neck.fc.weight"' \
    '"neck.bn.running_mean"' '"head.fc_cls.weight"' '"optim.momentum"' \
    '"arch":"resnet18"' '"step":"64"' '"epoch":"2"' '\\"batching\\":\\"shared\\"'; do
	grep -q "$k" "$TMP/hdr" && ok "ckpt-has-$k" || nok "ckpt-has-$k"
done
expect refuse-existing-run 1 "$T" $SMALL -i "$TMP/db" -o "$TMP/run"
stderr_has refuse-existing-msg "already holds a run"
rm "$TMP/run/curves.png"
expect plot-on-demand 0 "$T" --plot "$TMP/run"
[ -s "$TMP/run/curves.png" ] && ok plot-again || nok plot-again
expect plot-no-run 1 "$T" --plot "$TMP/nope"

# --- resume: 9 steps, then to 20, equals 20 steps at once, bit for bit
R="$SMALL -i $TMP/db --lr 0.05 --warmup 1 --epochs 2 --milestones 1 --ckpt-every 1000"
expect whole 0 "$T" $R -o "$TMP/ra" --max-steps 20
expect part1 0 "$T" $R -o "$TMP/rb" --max-steps 9
expect part2 0 "$T" $R -o "$TMP/rb" --max-steps 20 --resume
cmp -s "$TMP/ra/ckpt-00000020.safetensors" "$TMP/rb/ckpt-00000020.safetensors" &&
	ok resume-bit-exact || nok resume-bit-exact
expect resume-nothing 1 "$T" $R -o "$TMP/none" --resume
stderr_has resume-nothing-msg "last.safetensors"

# --- the NaN guard: an absurd lr diverges; the last good checkpoint stays
cp "$TMP/rb/ckpt-00000020.safetensors" "$TMP/good"
expect nan-guard 1 "$T" $R -o "$TMP/rb" --resume --max-steps 40 --lr 1e30
stderr_has nan-guard-msg "diverged"
stderr_has nan-guard-last "last good checkpoint is .*ckpt-00000020"
cmp -s "$TMP/good" "$TMP/rb/ckpt-00000020.safetensors" &&
	[ "$(readlink "$TMP/rb/last.safetensors")" = ckpt-00000020.safetensors ] &&
	[ "$(ls "$TMP/rb" | grep -c ckpt-)" -eq 2 ] && ok nan-ckpt-intact ||
	{ nok nan-ckpt-intact; ls -l "$TMP/rb" >&2; }
expect grad-guard 1 "$T" $R -o "$TMP/rg" --max-grad-norm 1e-3
stderr_has grad-guard-msg "gradient norm .* exceeds --max-grad-norm"
[ ! -e "$TMP/rg/last.safetensors" ] && ok grad-guard-no-ckpt ||
	nok grad-guard-no-ckpt

# --- stuck at chance: noise images, a negligible lr
"$S" -s 2 -n 32 $GEO -l "$TMP/noiselist" 2>/dev/null |
	"$T" $SMALL -o "$TMP/rc" --lr 1e-9 --chance-steps 15 \
	    --iters-per-epoch 10 >"$TMP/out" 2>"$TMP/err"
stderr_has chance-warning "still at chance (12.5%) after 15 steps"

# --- stdin: a stream that ends stops cleanly with a checkpoint
"$S" -s 3 -n 10 $GEO -l "$TMP/list" 2>/dev/null |
	"$T" $SMALL -o "$TMP/rs" --iters-per-epoch 100 --shuffle 16 \
	    >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && ok stdin-exit-0 || nok stdin-exit-0
stderr_has stdin-ended "<stdin>: input ended after 40 records"
stderr_has stdin-stopped "stopped at step 5 of 7000; checkpoint"
[ "$(readlink "$TMP/rs/last.safetensors")" = ckpt-00000005.safetensors ] &&
	ok stdin-ckpt || nok stdin-ckpt

# --- ZeroMQ: two senders; then one sender dies (a timeout is reported)
port=$((20000 + $$ % 20000))
"$T" $SMALL -o "$TMP/rz" -z "@tcp://127.0.0.1:$port" -n 2 -t 10 \
    --iters-per-epoch 100 --shuffle 0 >"$TMP/zout" 2>"$TMP/zerr" &
pid=$!
"$S" -s 4 -n 6 $GEO -l "$TMP/list" -z "tcp://127.0.0.1:$port" 2>/dev/null &
"$S" -s 5 -n 6 $GEO -l "$TMP/list" -z "tcp://127.0.0.1:$port" 2>/dev/null
wait $pid
[ $? -eq 0 ] && ok zmq-two-senders || { nok zmq-two-senders; cat "$TMP/zerr" >&2; }
wait
grep -q "input ended after 48 records" "$TMP/zerr" && ok zmq-48-records ||
	{ nok zmq-48-records; cat "$TMP/zerr" >&2; }
[ "$(readlink "$TMP/rz/last.safetensors")" = ckpt-00000006.safetensors ] &&
	ok zmq-ckpt || nok zmq-ckpt
port=$((port + 1))
"$T" $SMALL -o "$TMP/rd" -z "@tcp://127.0.0.1:$port" -n 2 -t 2 \
    --iters-per-epoch 100 >"$TMP/zout" 2>"$TMP/zerr" &
pid=$!
"$CAT" -i "$TMP/db" -Z "tcp://127.0.0.1:$port" 2>/dev/null
wait $pid
[ $? -eq 1 ] && ok zmq-timeout-exit-1 || nok zmq-timeout-exit-1
grep -q "no record from tcp://127.0.0.1:$port in 2 s" "$TMP/zerr" &&
	grep -q "stopped at step 32 of 7000; checkpoint" "$TMP/zerr" &&
	ok zmq-timeout-reported || { nok zmq-timeout-reported; cat "$TMP/zerr" >&2; }

# --- MMSelfSup's batching runs and resumes
expect mmselfsup 0 "$T" $SMALL -i "$TMP/db" -o "$TMP/rm" --mmselfsup-batching \
    --max-steps 2
grep -q 'batching\\":\\"mmselfsup' "$TMP/rm/last.safetensors" &&
	ok mmselfsup-config || nok mmselfsup-config
expect mmselfsup-resume 0 "$T" -i "$TMP/db" -o "$TMP/rm" --resume --max-steps 3
[ -e "$TMP/rm/ckpt-00000003.safetensors" ] && ok mmselfsup-step3 ||
	nok mmselfsup-step3
expect mmselfsup-whole 0 "$T" $SMALL -i "$TMP/db" -o "$TMP/rmw" \
    --mmselfsup-batching --max-steps 3
cmp -s "$TMP/rm/ckpt-00000003.safetensors" \
    "$TMP/rmw/ckpt-00000003.safetensors" && ok mmselfsup-resume-bit-exact ||
	nok mmselfsup-resume-bit-exact

# --- SIGINT: the current step ends, a checkpoint is written, exit 1
"$T" $SMALL -i "$TMP/db" -o "$TMP/ri" --log-every 1 >"$TMP/out" 2>"$TMP/err" &
pid=$!
n=0
while [ ! -s "$TMP/ri/metrics.jsonl" ] && [ $n -lt 600 ]; do
	sleep 0.1; n=$((n + 1))
done
kill -INT $pid
wait $pid
[ $? -eq 1 ] && ok sigint-exit-1 || nok sigint-exit-1
stderr_has sigint-msg "Interrupt: stopped at step [0-9]* of 2240; checkpoint"
[ -e "$TMP/ri/last.safetensors" ] && ok sigint-ckpt || nok sigint-ckpt

# -v into a log file: plain lines, no carriage returns or escapes
"$T" $SMALL -o "$TMP/rv" -i "$TMP/db" --max-steps 3 -v 2>"$TMP/verr"
[ $? -eq 0 ] && grep -q "3 steps done" "$TMP/verr" &&
	! grep -q "$(printf '\r')" "$TMP/verr" &&
	! grep -q "$(printf '\033')" "$TMP/verr" && ok verbose-log-plain ||
	{ nok verbose-log-plain; od -c "$TMP/verr" | head >&2; }
cli_end

#!/bin/sh
# ZeroMQ record streams against hostile and unauthorised peers, as
# rl-record(5) "Trust" promises: a trainer skips and counts bad frames
# (garbage, a 64 MiB frame, a stray end-of-stream marker) and fails after
# --bad-records of them, never with status 0; with CURVE keys it takes
# only the samplers it is told; a non-loopback endpoint needs keys or
# --insecure; a host name binds. Tiny networks (--width 4) on the 10
# records of tests/data/grid10.rec keep each run well under a second.
. tests/cli/lib.sh
T=$BIN/rl-train CAT=$BIN/rl-cat KG=$BIN/rl-keygen S=$BIN/rl-sample
PUSH="$BIN/tests/t_stream --push"
REC=tests/data/grid10.rec
TINY="-a resnet18 --width 4 --neck-dim 16 -b 2 --iters-per-epoch 100 --shuffle 0"
port=$((30000 + $$ % 20000))

# --- a hostile peer before the sampler: skipped and counted
"$T" $TINY -o "$TMP/r1" -z "@tcp://127.0.0.1:$port" -t 20 \
    >"$TMP/out" 2>"$TMP/e1" &
pid=$!
$PUSH "tcp://127.0.0.1:$port" empty garbage big || nok hostile-push
"$CAT" -Z "$port" "$REC" 2>"$TMP/err" || { nok sampler; cat "$TMP/err" >&2; }
wait $pid
[ $? -eq 0 ] && ok hostile-survived || { nok hostile-survived; cat "$TMP/e1" >&2; }
cp "$TMP/e1" "$TMP/err"
stderr_has hostile-marker "sender 1 (127.0.0.1): an end-of-stream marker before any record; skipped (bad frame 1, at most 10 allowed)"
stderr_has hostile-garbage "sender 1 (127.0.0.1): not a record"
stderr_has hostile-ended "input ended after 10 records"
[ -e "$TMP/r1/ckpt-00000005.safetensors" ] && ok hostile-ckpt ||
	nok hostile-ckpt

# --- more bad frames than allowed: status 1, never 0 on an empty frame
port=$((port + 1))
"$T" $TINY -o "$TMP/r2" -z "@tcp://127.0.0.1:$port" -t 20 \
    --bad-records 2 >"$TMP/out" 2>"$TMP/e2" &
pid=$!
$PUSH "tcp://127.0.0.1:$port" empty empty garbage || nok limit-push
wait $pid
[ $? -eq 1 ] && ok bad-limit-exit-1 || { nok bad-limit-exit-1; cat "$TMP/e2" >&2; }
cp "$TMP/e2" "$TMP/err"
stderr_has bad-limit-msg "3 bad frames, more than the 2 allowed"

# --- CURVE: keys, a refused sampler, an accepted one
expect keygen-t 0 "$KG" "$TMP/trainer"
expect keygen-s 0 "$KG" -n sampler-a "$TMP/samp"
expect keygen-x 0 "$KG" "$TMP/stranger"
expect keygen-exists 1 "$KG" "$TMP/samp"
stderr_has keygen-exists-msg "samp.pub: File exists"
[ "$(stat -c %a "$TMP/samp.key")" = 600 ] && ok keygen-mode-600 ||
	nok keygen-mode-600
grep -q ' sampler-a$' "$TMP/samp.pub" && ok keygen-name || nok keygen-name
port=$((port + 1))
K="--key $TMP/trainer.key --allow $TMP/samp.pub"
"$T" $TINY -o "$TMP/r3" -z "@tcp://127.0.0.1:$port" -t 20 $K \
    >"$TMP/out" 2>"$TMP/e3" &
pid=$!
expect curve-stranger 1 "$CAT" -Z "$port" --key "$TMP/stranger.key" \
    --peer-key "$TMP/trainer.pub" "$REC"
stderr_has curve-stranger-msg "the receiver refused the handshake"
expect curve-nokey 1 "$CAT" -Z "$port" "$REC"
expect curve-sampler 0 "$CAT" -Z "$port" --key "$TMP/samp.key" \
    --peer-key "$TMP/trainer.pub" "$REC"
wait $pid
[ $? -eq 0 ] && ok curve-trained || { nok curve-trained; cat "$TMP/e3" >&2; }
cp "$TMP/e3" "$TMP/err"
stderr_has curve-refusal-logged "refused a sender at 127.0.0.1"
stderr_has curve-10-records "input ended after 10 records"
chmod 644 "$TMP/samp.key"
expect curve-open-secret 1 "$CAT" -Z "$port" --key "$TMP/samp.key" \
    --peer-key "$TMP/trainer.pub" "$REC"
stderr_has curve-open-secret-msg "readable by others"
chmod 600 "$TMP/samp.key"
expect curve-half 1 "$T" $TINY -o "$TMP/r4" -z "$port" --key "$TMP/trainer.key"
stderr_has curve-half-msg "public keys are needed"

# --- rl-sample with keys to rl-cat with keys
port=$((port + 1))
"$CAT" -c -t 20 -z "$port" $K >"$TMP/sc" 2>"$TMP/e4" &
pid=$!
expect sample-curve 0 "$S" -n 2 -z "$port" --key "$TMP/samp.key" \
    --peer-key "$TMP/trainer.pub" tests/data/photo64x48.jpg
wait $pid
[ "$(cat "$TMP/sc")" = 2 ] && ok sample-curve-2 || { nok sample-curve-2; cat "$TMP/e4" >&2; }

# --- endpoints: a host name binds; non-loopback needs keys or --insecure
port=$((port + 1))
"$CAT" -t 20 -z "localhost:$port" >"$TMP/z.rec" 2>"$TMP/e5" &
pid=$!
expect hostname-send 0 "$CAT" -Z "localhost:$port" "$REC"
wait $pid
[ $? -eq 0 ] && cmp -s "$REC" "$TMP/z.rec" && ok hostname-bind ||
	{ nok hostname-bind; cat "$TMP/e5" >&2; }
expect open-bind 1 "$T" $TINY -o "$TMP/r5" -z "@tcp://*:$port"
stderr_has open-bind-msg "not a loopback address and no CURVE keys"
expect open-bind-cat 1 "$CAT" -c -z "@tcp://0.0.0.0:$port"
expect insecure-bind 1 "$CAT" -c -t 0.3 -z "@tcp://*:$port" --insecure
stderr_has insecure-bound "no record from tcp://0.0.0.0:$port in 0.3 s"
# --- the security options are for ZeroMQ only
expect keys-without-z-train 2 "$T" $TINY -o "$TMP/r6" --key "$TMP/trainer.key" "$REC"
expect keys-without-z-cat 2 "$CAT" -c --insecure "$REC"
expect keys-without-z-sample 2 "$S" --peer-key "$TMP/trainer.pub" \
    tests/data/photo64x48.jpg
cli_end

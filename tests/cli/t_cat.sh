# rl-cat: options, exit codes, and records moved between a stream, LMDB
# and ZeroMQ (ipc:// in $TMP), byte for byte. Data: tests/data/grid10.rec,
# 10 records of patch 4 (t_record checks it is what record_pack writes).
. tests/cli/lib.sh
CAT=$BIN/rl-cat
REC=tests/data/grid10.rec

expect help 0 "$CAT" -h
grep -q '^usage: rl-cat ' "$TMP/out" && ok help-stdout || nok help-stdout
# The usage line is the man page's SYNOPSIS.
u=$(awk '/^usage:/ || /^        / { print; next } { exit }' "$TMP/out" |
	sed 's/^usage: //' | tr -s ' \t\n' '   ' | sed 's/^ *//;s/ *$//')
m=$(MANWIDTH=200 mandoc -Tascii man/rl-cat.1 | col -b | sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' |
	sed '1d;$d' | tr -s ' \t\n' '   ' | sed 's/^ *//;s/ *$//')
[ "$u" = "$m" ] && ok synopsis || { nok synopsis; echo "  -h:  $u" >&2; echo "  man: $m" >&2; }
expect version 0 "$CAT" -V
expect bad-flag 2 "$CAT" -x
expect modes-exclusive 2 "$CAT" -c -l "$REC"
expect meta-needs-lmdb 2 "$CAT" -m "$REC"
expect operand-with-lmdb 2 "$CAT" -i "$TMP/x" "$REC"

expect count 0 "$CAT" -c "$REC"
[ "$(cat "$TMP/out")" = 10 ] && ok count-10 || nok count-10
expect count-stdin 0 sh -c "\"$CAT\" -c < $REC"
[ "$(cat "$TMP/out")" = 10 ] && ok count-stdin-10 || nok count-stdin-10
expect count-two-files 0 "$CAT" -c "$REC" - < "$REC"
[ "$(cat "$TMP/out")" = 20 ] && ok count-20 || nok count-20
expect list 0 "$CAT" -l "$REC"
[ "$(wc -l < "$TMP/out")" -eq 10 ] &&
	[ "$(sed -n 2p "$TMP/out" | cut -f 1-6)" = "$(printf '1000000000007\t1\t1\t4\t1\tdata/img-1.jpg')" ] &&
	[ "$(sed -n 2p "$TMP/out" | awk -F '\t' '{print NF}')" -eq 15 ] &&
	ok list-fields || { nok list-fields; sed -n 2p "$TMP/out" >&2; }

# Broken input: exit 1, one line naming the input.
head -c 5000 "$REC" > "$TMP/trunc.rec"
expect truncated 1 "$CAT" -c "$TMP/trunc.rec"
stderr_has truncated-msg "trunc.rec: record 6 at byte [0-9]*: truncated"
[ "$(wc -l < "$TMP/err")" -eq 1 ] && ok truncated-one-line || nok truncated-one-line
expect truncated-stdin 1 sh -c "\"$CAT\" < $TMP/trunc.rec > $TMP/part.rec"
stderr_has truncated-stdin-msg "<stdin>: record 6"
# Whole records only: the 6 good ones.
expect partial-count 0 "$CAT" -c "$TMP/part.rec"
[ "$(cat "$TMP/out")" = 6 ] && ok partial-whole-records || nok partial-whole-records
{ head -c 733 "$REC"; printf '\301'; } > "$TMP/bad.rec"
expect corrupt 1 "$CAT" -l "$TMP/bad.rec"
stderr_has corrupt-msg "bad.rec: record 1 at byte 733: not msgpack"
expect missing-file 1 "$CAT" -c "$TMP/nonexistent" "$REC"
stderr_has missing-file-msg "nonexistent: No such file"

# A full device is an error, not a success.
if [ -w /dev/full ]; then
	expect full-device 1 sh -c "\"$CAT\" $REC > /dev/full"
	stderr_has full-device-msg "No space left on device"
	expect full-device-list 1 sh -c "\"$CAT\" -l $REC > /dev/full"
fi

# stream -> LMDB -> stream, byte-identical; metadata; write-once.
expect to-lmdb 0 "$CAT" -o "$TMP/db" "$REC"
expect lmdb-count 0 "$CAT" -c -i "$TMP/db"
[ "$(cat "$TMP/out")" = 10 ] && ok lmdb-count-10 || nok lmdb-count-10
expect from-lmdb 0 sh -c "\"$CAT\" -i $TMP/db > $TMP/back.rec"
cmp -s "$REC" "$TMP/back.rec" && ok lmdb-round-trip || nok lmdb-round-trip
expect meta 0 "$CAT" -m -i "$TMP/db"
grep -q '"count":10' "$TMP/out" && grep -q '"record_version":1' "$TMP/out" &&
	ok meta-count || nok meta-count
expect lmdb-write-once 1 "$CAT" -o "$TMP/db" "$REC"
stderr_has lmdb-write-once-msg "already holds 10 records"
expect lmdb-missing 1 "$CAT" -c -i "$TMP/nodb"
# LMDB -> LMDB keeps the metadata.
expect lmdb-copy 0 "$CAT" -i "$TMP/db" -o "$TMP/db2"
expect lmdb-copy-meta 0 "$CAT" -m -i "$TMP/db2"
grep -q '"count":10' "$TMP/out" && ok lmdb-copy-meta-count || nok lmdb-copy-meta-count

# ZeroMQ: a PULL binds, a PUSH connects; then two senders.
ep=ipc://$TMP/s1
"$CAT" -t 20 -z "$ep" > "$TMP/z.rec" 2>"$TMP/zerr" & pid=$!
expect zmq-send 0 "$CAT" -Z "$ep" "$REC"
wait $pid && cmp -s "$REC" "$TMP/z.rec" && ok zmq-round-trip ||
	{ nok zmq-round-trip; cat "$TMP/zerr" >&2; }
ep=ipc://$TMP/s2
"$CAT" -t 20 -n 2 -z "$ep" -c > "$TMP/zc" 2>"$TMP/zerr" & pid=$!
"$CAT" -Z "$ep" "$REC" & p1=$!
"$CAT" -Z "$ep" "$REC" "$REC"; r2=$?
wait $p1; r1=$?
wait $pid && [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$(cat "$TMP/zc")" = 30 ] &&
	ok zmq-two-senders || { nok zmq-two-senders; cat "$TMP/zerr" >&2; }
expect zmq-timeout 1 "$CAT" -t 0.2 -c -z "ipc://$TMP/s3"
stderr_has zmq-timeout-msg "no record from ipc://.*s3 in 0.2 s"

# SIGINT while receiving into LMDB: what arrived is committed.
ep=ipc://$TMP/s4
"$CAT" -t 0 -n 2 -z "$ep" -o "$TMP/dbi" 2>"$TMP/ierr" & pid=$!
"$CAT" -Z "$ep" "$REC"
sleep 1
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 1 ] && grep -q 'interrupted after 10 records' "$TMP/ierr" &&
	ok interrupt || { nok interrupt; echo "  exit $rc" >&2; cat "$TMP/ierr" >&2; }
expect interrupt-committed 0 "$CAT" -c -i "$TMP/dbi"
[ "$(cat "$TMP/out")" = 10 ] && ok interrupt-count || nok interrupt-count
cli_end

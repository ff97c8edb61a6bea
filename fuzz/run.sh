#!/bin/sh
# fuzz/run.sh: run libFuzzer harnesses built by `make fuzz` (not alone).
# Each harness X runs FUZZ_TIME seconds, FUZZ_JOBS of them at once, at a
# low priority, on a working corpus $FUZZ_BUILD/corpus/X seeded from the
# committed fuzz/corpus/X; a crash is written to fuzz/crashes/X/ (commit it
# with its fix: make check replays it). Prints one line per harness:
# executions, and ok or CRASH. Usage: sh fuzz/run.sh harness...
B=${FUZZ_BUILD:-build-fuzz} T=${FUZZ_TIME:-60} J=${FUZZ_JOBS:-2}
one() {
	mkdir -p "$B/corpus/$1" "fuzz/crashes/$1"
	nice -n 10 "$B/$1" -max_total_time="$T" -print_final_stats=1 \
	    -rss_limit_mb=2048 -timeout=20 -artifact_prefix="fuzz/crashes/$1/" \
	    "$B/corpus/$1" "fuzz/corpus/$1" >"$B/$1.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/$1.log")
	if [ $rc -eq 0 ]; then st=ok; else st="CRASH (rc $rc, see $B/$1.log)"; fi
	printf '%-10s %12s executions (-max_total_time=%s): %s\n' "$1" "${execs:-?}" "$T" "$st"
	[ $rc -eq 0 ]
}
fail=0 n=0
for h in "$@"; do
	one "$h" & n=$((n + 1))
	if [ $n -ge "$J" ]; then wait; n=0; fi
done
wait
# the statuses of background jobs are lost to `wait`: look at the logs
for h in "$@"; do
	grep -q '^==[0-9]*==ERROR\|^SUMMARY\|deadly signal\|FUZZ_ASSERT' \
	    "$B/$h.log" && fail=1
done
exit $fail

#!/bin/sh
# make bench: runs each bench/b_*.sh (or those whose name contains $1) with
# BIN=$BUILD and a scratch directory TMP, and tees everything to
# $BUILD/bench.log. Each script times an rl-* tool and its peer in the same
# run and prints the ratio; none of them is a pass/fail test.
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD" && pwd)
export BIN
pat=${1:-}
log="$BUILD/bench.log"
: >"$log"
for b in bench/b_*.sh; do
	[ -f "$b" ] || continue
	case ${b##*/} in *"$pat"*) ;; *) continue ;; esac
	TMP=$(mktemp -d) && export TMP
	echo "== ${b##*/} ($(date -u +%FT%TZ), $(nproc) cores)" | tee -a "$log"
	sh "$b" 2>&1 | tee -a "$log"
	rm -rf "$TMP"
done
echo "bench: log in $log"

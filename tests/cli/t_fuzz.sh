#!/bin/sh
# Every committed fuzz seed and crash (fuzz/corpus/X, fuzz/crashes/X)
# replayed through its harness fuzz/X.c in the normal build: a crash once
# found stays fixed. No clang needed (see `make fuzz`).
. tests/cli/lib.sh
for f in fuzz/fz_*.c; do
	h=${f##*/}; h=${h%.c}
	set -- fuzz/corpus/"$h"
	[ -d fuzz/crashes/"$h" ] && set -- "$@" fuzz/crashes/"$h"
	if "$BIN/fuzz/$h" "$@" >"$TMP/out" 2>"$TMP/err"; then
		ok "replay-$h"
	else
		nok "replay-$h"; tail -5 "$TMP/err" >&2
	fi
	n=$(sed -n 's/^replayed \([0-9]*\) inputs$/\1/p' "$TMP/out")
	[ "${n:-0}" -ge 3 ] && ok "replay-$h-seeds" || nok "replay-$h-seeds"
done
cli_end

#!/bin/sh
# Runs every unit test ($BUILD/tests/t_*) and every CLI test (tests/cli/t_*.sh),
# counts the cases, and ends with one line "check: N passed, N failed".
# A CLI test is a POSIX sh script run with BIN=$BUILD, TMP=a fresh directory;
# it prints `ok name`/`FAIL name` lines like the unit tests and exits non-zero
# on failure. Usage: sh tests/run.sh [name-pattern]
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD" && pwd)
export BIN
pat=${1:-}
pass=0 fail=0 failed=
log=$(mktemp)
for t in "$BUILD"/tests/t_* tests/cli/t_*.sh; do
	[ -f "$t" ] || continue
	name=${t##*/}
	case $name in *"$pat"*) ;; *) continue ;; esac
	TMP=$(mktemp -d) && export TMP
	start=$(date +%s)
	case $t in
	*.sh) sh "$t" >"$log" 2>&1 ;;
	*) "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	rm -rf "$TMP"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)) fail=$((fail + f))
	printf '%-28s %3d ok %3d failed  %3ds\n' "$name" "$p" "$f" $(($(date +%s) - start))
	if [ "$f" -ne 0 ]; then
		failed="$failed $name"
		sed 's/^/    /' "$log" | grep -v '^    ok ' | tail -40
	fi
done
rm -f "$log"
[ -z "$failed" ] || echo "failed:$failed"
echo "check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

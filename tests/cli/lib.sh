# tests/cli/lib.sh: helpers sourced by the CLI tests (not a test itself).
# BIN is the build directory, TMP a fresh scratch directory (tests/run.sh).
: "${BIN:=build}" "${TMP:=$(mktemp -d)}"
cli_fail=0
ok() { echo "ok $1"; }
nok() { echo "FAIL $1"; cli_fail=1; }
# expect NAME STATUS CMD...: runs CMD, checks its exit status.
expect() {
	n=$1 want=$2; shift 2
	"$@" >"$TMP/out" 2>"$TMP/err"; got=$?
	if [ "$got" -eq "$want" ]; then ok "$n"
	else nok "$n"; echo "  $*: exit $got, want $want" >&2; head -5 "$TMP/err" >&2; fi
}
# stderr_has NAME PATTERN: the last command's stderr matches PATTERN.
stderr_has() {
	if grep -q -- "$2" "$TMP/err"; then ok "$1"
	else nok "$1"; echo "  stderr lacks '$2':" >&2; head -5 "$TMP/err" >&2; fi
}
cli_end() { exit $cli_fail; }

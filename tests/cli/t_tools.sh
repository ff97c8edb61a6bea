#!/bin/sh
# Promises every rl-* tool keeps: -h prints a usage line to stdout and exits
# 0; that usage line says what the man page's SYNOPSIS says; -V prints the
# version; an unknown option exits 2 with the usage on stderr; every tool
# has a man page and every man page passes mandoc -Tlint.
. tests/cli/lib.sh

# Words of the usage text: the "usage:" line and the indented lines that
# continue it (indented by eight or more blanks; option lines take two).
usage_words() {
	awk '/^usage:/ { on = 1; sub(/^usage:/, ""); print; next }
	    on && /^        / { print; next } { on = 0 }' |
	    tr -s ' \t\n' '   ' | sed 's/^ *//; s/ *$//'
}
# Words of the SYNOPSIS as mandoc renders it.
synopsis_words() {
	MANWIDTH=1000 mandoc -Tascii -O width=1000 "$1" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' |
	    tr -s ' \t\n' '   ' | sed 's/^ *//; s/ *$//'
}

for src in tools/*.c; do
	[ -f "$src" ] || continue
	t=$(basename "$src" .c)
	[ -x "$BIN/$t" ] || { nok "$t-built"; continue; }
	expect "$t-h" 0 "$BIN/$t" -h
	u=$(usage_words <"$TMP/out")
	case $u in "$t "*|"$t") ok "$t-h-usage" ;;
	*) nok "$t-h-usage"; echo "  -h printed: $u" >&2 ;; esac
	expect "$t-V" 0 "$BIN/$t" -V
	grep -q "$t" "$TMP/out" && ok "$t-V-name" || nok "$t-V-name"
	expect "$t-badflag" 2 "$BIN/$t" --no-such-flag
	stderr_has "$t-badflag-usage" "usage:"
	if [ -f "man/$t.1" ]; then
		ok "$t-man"
		s=$(synopsis_words "man/$t.1")
		if [ "$s" = "$u" ]; then ok "$t-synopsis"
		else nok "$t-synopsis"
			echo "  usage:    $u" >&2
			echo "  synopsis: $s" >&2
		fi
	else
		nok "$t-man"
	fi
done
for m in man/*.[1-9]; do
	[ -f "$m" ] || continue
	out=$(mandoc -Tlint -W warning "$m" 2>&1)
	if [ -z "$out" ]; then ok "lint-${m#man/}"
	else nok "lint-${m#man/}"; echo "$out" | head -5 >&2; fi
done
cli_end

#!/bin/sh
# make install / uninstall honour DESTDIR and PREFIX, and put every tool and
# man page where man(1) finds them.
. tests/cli/lib.sh
dest=$TMP/dest
make -s install DESTDIR="$dest" PREFIX=/usr BUILD="$BIN" >"$TMP/log" 2>&1 &&
    ok install || { nok install; cat "$TMP/log" >&2; }
for src in tools/*.c; do
	[ -f "$src" ] || continue
	t=$(basename "$src" .c)
	[ -x "$dest/usr/bin/$t" ] && ok "installed-$t" || nok "installed-$t"
done
for m in man/*.[1-9]; do
	[ -f "$m" ] || continue
	s=${m##*.}
	[ -f "$dest/usr/share/man/man$s/${m##*/}" ] && ok "installed-${m##*/}" ||
	    nok "installed-${m##*/}"
done
make -s uninstall DESTDIR="$dest" PREFIX=/usr BUILD="$BIN" >"$TMP/log" 2>&1 &&
    ok uninstall || nok uninstall
left=$(find "$dest" -type f | wc -l)
[ "$left" -eq 0 ] && ok uninstall-empty || { nok uninstall-empty; find "$dest" -type f >&2; }
cli_end

#!/bin/sh
# t_cite: every citation of a manual page in the sources names one that
# exists in man/, and a section it cites is a .Sh of that page. A citation
# is NAME(N) for NAME rl-* or relloc*, optionally followed by ", SECTION"
# with SECTION in capitals as the page's .Sh spells it (e.g.
# "relloc-protocols(7), SVM"), or a path man/NAME.N. Documents outside the
# repository (the old protocols.md, performance.md, style.md, anything in
# the shared directory beside a checkout) must not be cited at all. The
# checker is also run on a planted file, so that it is seen to catch each
# kind of bad citation.
. tests/cli/lib.sh

# cites ROOT FILE...: prints "file:line: citation" for each bad one, the
# pages looked up in ROOT/man.
cites() {
	root=$1; shift
	grep -HnoE '(rl-[a-z]+|relloc(-[a-z]+)?)\([1-9]\)(, [A-Z][A-Z0-9-]+( [A-Z][A-Z0-9-]+)*)?|man/[a-z][a-z-]*\.[1-9]' "$@" 2>/dev/null |
	while IFS= read -r hit; do
		where=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}; c=${rest#*:}
		case $c in
		man/*) page=$c sec= ;;
		*) name=${c%%(*}; n=${c#*(}; n=${n%%)*}; page=man/$name.$n
		   sec=; case $c in *", "*) sec=${c#*, } ;; esac ;;
		esac
		if [ ! -f "$root/$page" ]; then
			echo "$where:$line: $c: no $page"
		elif [ -n "$sec" ] && ! grep -qxF ".Sh $sec" "$root/$page"; then
			echo "$where:$line: $c: $page has no section $sec"
		fi
	done
	grep -HnE 'protocols\.md|performance\.md|style\.md|architecture\.md|peers\.md|\.\./shared' "$@" 2>/dev/null |
	    sed 's/^\([^:]*:[0-9]*\):.*/\1: cites a document outside the repository/'
}

# The sources: everything tracked but data, binaries and this test's fixture.
files=$(find common tools tests pipelines bench man README.md Makefile \
    -type f ! -path 'tests/data/*' ! -name '*.safetensors' ! -name '*.npy' \
    ! -name '*.png' ! -name '*.jpg' ! -name '*.gz' ! -name 't_cite.sh' | sort)
# shellcheck disable=SC2086
cites . $files >"$TMP/bad"
if [ -s "$TMP/bad" ]; then nok cite-repo; sed 's/^/  /' "$TMP/bad" >&2
else ok cite-repo; fi
# shellcheck disable=SC2086
n=$(grep -hoE 'relloc(-protocols)?\(7\)(, [A-Z][A-Z0-9-]+( [A-Z][A-Z0-9-]+)*)?' $files | wc -l)
if [ "$n" -ge 20 ]; then ok cite-count; else nok cite-count; echo "  only $n citations of section 7 found" >&2; fi

# The planted file: one good citation and one of each bad kind.
mkdir -p "$TMP/r/man" "$TMP/r/src"
printf '.Sh NAME\n.Sh SVM\n' >"$TMP/r/man/relloc-protocols.7"
cat >"$TMP/r/src/x.c" <<'EOF'
/* relloc-protocols(7), SVM: good */
/* relloc-protocols(7), KNN: no such section */
/* relloc-nothing(7) no such page */
/* see man/rl-none.5 */
/* protocols.md section 3 */
EOF
cites "$TMP/r" "$TMP/r/src/x.c" >"$TMP/planted"
for want in ':2: relloc-protocols(7), KNN: man/relloc-protocols.7 has no section KNN' \
    ':3: relloc-nothing(7): no man/relloc-nothing.7' ':4: man/rl-none.5: no man/rl-none.5' \
    ':5: cites a document outside'; do
	if grep -qF -- "$want" "$TMP/planted"; then ok "cite-catches$(echo "$want" | cut -c1-3)"
	else nok cite-catches; echo "  not caught: $want" >&2; cat "$TMP/planted" >&2; fi
done
if grep -q ':1:' "$TMP/planted"; then nok cite-good; else ok cite-good; fi
cli_end

#!/bin/sh
# pipelines/pipe.sh: the small jobs the pipeline make files share, so no
# recipe is written twice. POSIX sh and awk only. Usage: sh pipe.sh CMD ARGS
#
# Results of the scoring tools, as TSV (key <tab> value, one a line):
#   svm FILE...        rl-svm outputs (one per layer, named LAYER.txt):
#                      LAYER <tab> mAP
#   lowshot FILE       rl-svm --lowshot output: k <tab> mean mAP of the
#                      test-selected cost (the protocol's figure)
#   linear FILE NAMES  rl-linear output: NAMES[i] <tab> val top-1 of head i
#                      (NAMES comma-separated, one per head)
#   knn FILE           rl-knn output: k <tab> top-1
#   best TSV           the key of the largest value
#
# Markdown tables:
#   head TITLE COL...  the header of a table (| TITLE | COL | ... |)
#   row LABEL KIND TSV...  one row, one cell per TSV (a missing file is
#                      "n/a"); KIND: list (values joined by ", "), bestlist
#                      (the same with the largest in bold), best (the best
#                      key and its value in bold), one (the first value)
#   keys TSV           the keys of TSV joined by "," (row labels)
#   wins TSV1 TSV2     "N of M": the keys where TSV1's value beats TSV2's
#   pretext JSONL      the last line of rl-train's metrics.jsonl in words
#
# Stage timing (FILE is a TSV of stage <tab> seconds):
#   start FILE NAME    print a banner, note the start time
#   end FILE NAME      record the seconds since start (replacing an older
#                      entry of NAME)
#   times FILE         print the stages and their total as a table
set -e
cmd=$1
shift

num() {
	case $1 in
	'' | *[!0-9.]* | *.*.*) return 1 ;;
	*) return 0 ;;
	esac
}

case $cmd in
svm)
	for f; do
		l=${f##*/}
		l=${l%.txt}
		v=$(awk '$1 == "mAP" { print $2 }' "$f")
		num "$v" || { echo "pipe.sh: $f: no mAP line" >&2; exit 1; }
		printf '%s\t%s\n' "$l" "$v"
	done
	;;
lowshot)
	awk -v f="$1" '$1 ~ /^[0-9]+$/ && NF == 10 { printf "%s\t%s\n", $1, $3; n++ }
	    END { if (!n) { print "pipe.sh: " f ": no low-shot rows" >"/dev/stderr"; exit 1 } }' "$1"
	;;
linear)
	awk -v f="$1" -v names="$2" 'BEGIN { m = split(names, nm, ",") }
	    /^#/ { next }
	    $1 ~ /^[0-9]+$/ && NF >= 7 { n++; printf "%s\t%s\n", (n <= m ? nm[n] : "head" n), $6 }
	    END { if (n != m) { print "pipe.sh: " f ": " n " heads, want " m >"/dev/stderr"; exit 1 } }' "$1"
	;;
knn)
	awk -v f="$1" '/^#/ { next } $1 ~ /^[0-9]+$/ && NF == 3 { printf "%s\t%s\n", $1, $2; n++ }
	    END { if (!n) { print "pipe.sh: " f ": no kNN rows" >"/dev/stderr"; exit 1 } }' "$1"
	;;
best)
	awk -F '\t' 'NR == 1 || $2 + 0 > b { b = $2 + 0; k = $1 } END { print k }' "$1"
	;;
keys)
	awk -F '\t' '{ printf "%s%s", (NR > 1 ? "," : ""), $1 } END { print "" }' "$1"
	;;
wins)
	awk -F '\t' 'NR == FNR { a[$1] = $2; next }
	    ($1 in a) { m++; if (a[$1] + 0 > $2 + 0) n++ }
	    END { printf "%d of %d\n", n, m }' "$1" "$2"
	;;
pretext)
	tail -n 1 "$1" | awk '
	    function val(k,   s) {
		if (!match($0, "\"" k "\"[ ]*:[ ]*[-0-9.eE+]+")) return ""
		s = substr($0, RSTART, RLENGTH); sub(/.*:[ ]*/, "", s); return s
	    }
	    { printf "pretext loss %.3f, accuracy %.1f%% (chance 12.5%%) at step %d\n",
		val("loss"), 100 * val("acc"), val("step") }'
	;;
head)
	printf '| %s |' "$1"
	shift
	for c; do printf ' %s |' "$c"; done
	printf '\n|---|'
	for c; do printf -- '---|'; done
	printf '\n'
	;;
row)
	label=$1 kind=$2
	shift 2
	printf '| %s |' "$label"
	for f; do
		if [ ! -s "$f" ]; then
			printf ' n/a |'
			continue
		fi
		awk -F '\t' -v kind="$kind" '
		    { k[NR] = $1; v[NR] = $2; if (NR == 1 || $2 + 0 > bv) { bv = $2 + 0; b = NR } }
		    END {
			if (kind == "one") s = v[1]
			else if (kind == "best") s = k[b] " \342\206\222 **" v[b] "**"
			else for (i = 1; i <= NR; i++)
				s = s (i > 1 ? ", " : "") (kind == "bestlist" && i == b ? "**" v[i] "**" : v[i])
			printf " %s |", s
		    }' "$f"
	done
	printf '\n'
	;;
start)
	mkdir -p "${1%/*}"
	date +%s >"$1.$(echo "$2" | tr / _).t0"
	printf '\n==> %s (%s)\n' "$2" "$(date +%H:%M:%S)"
	;;
end)
	t0f=$1.$(echo "$2" | tr / _).t0
	t0=$(cat "$t0f")
	s=$(($(date +%s) - t0))
	rm -f "$t0f"
	touch "$1"
	awk -F '\t' -v n="$2" '$1 != n' "$1" >"$1.tmp"
	printf '%s\t%d\n' "$2" "$s" >>"$1.tmp"
	mv "$1.tmp" "$1"
	printf '<== %s: %d s\n' "$2" "$s"
	;;
times)
	[ -f "$1" ] || exit 0
	awk -F '\t' 'BEGIN { print "| stage | seconds |"; print "|---|---:|" }
	    { printf "| %s | %d |\n", $1, $2; t += $2 }
	    END { printf "| **total** | **%d** (%d min %d s) |\n", t, t / 60, t % 60 }' "$1"
	;;
*)
	echo "usage: sh pipe.sh svm|lowshot|linear|knn|best|keys|head|row|start|end|times ..." >&2
	exit 2
	;;
esac

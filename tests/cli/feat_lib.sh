# tests/cli/feat_lib.sh: helpers for the CLI tests of the scoring tools
# (rl-linear, rl-knn, rl-voc); sourced after lib.sh, not a test itself.
#
# npy WRITE: `npy FILE DTYPE SHAPE < numbers` writes whitespace-separated
# numbers as a NumPy .npy file, DTYPE f4 or i4, SHAPE as numpy prints it
# ("3, 4" or "5,"); "nan", "inf" and "-inf" are the IEEE values. Plain awk (IEEE single encoded
# by hand, round to nearest), so the tests need no numpy.
npy() {
	LC_ALL=C awk -v dtype="$2" -v shape="$3" '
	function byte4(u,   i) {
		for (i = 0; i < 4; i++) { printf "%c", u % 256; u = int(u / 256) }
	}
	function f32(s,   v, sg, e, m) {
		if (s == "nan") return 2143289344          # 0x7fc00000
		if (s == "inf") return 2139095040          # 0x7f800000
		if (s == "-inf") return 4286578688
		v = s + 0
		if (v == 0) return 0
		sg = 0
		if (v < 0) { sg = 2147483648; v = -v }
		e = 0
		while (v >= 2) { v /= 2; e++ }
		while (v < 1) { v *= 2; e-- }
		m = int((v - 1) * 8388608 + 0.5)
		if (m == 8388608) { m = 0; e++ }
		return sg + (e + 127) * 8388608 + m
	}
	{ for (i = 1; i <= NF; i++) val[n++] = $i }
	END {
		h = sprintf("{\047descr\047: \047<%s\047, \047fortran_order\047: " \
		    "False, \047shape\047: (%s), }", dtype, shape)
		while ((10 + length(h) + 1) % 64) h = h " "
		h = h "\n"
		printf "%cNUMPY%c%c%c%c%s", 147, 1, 0, length(h) % 256,
		    int(length(h) / 256), h
		for (i = 0; i < n; i++) {
			if (dtype == "f4") byte4(f32(val[i]))
			else { x = val[i] + 0; if (x < 0) x += 4294967296; byte4(x) }
		}
	}' >"$1"
}

# synopsis_ok NAME TOOL: the usage TOOL prints for a bad option (all its
# lines) is the SYNOPSIS of man/TOOL.1 (relloc(7), CONVENTIONS: the two must match).
synopsis_ok() {
	u=$("$BIN/$2" --no-such-option 2>&1 >/dev/null |
	    sed -n '/^usage: /,$p' | sed 's/^usage: //' | tr -s ' \n' ' ')
	m=$(mandoc -Tascii -O width=400 "man/$2.1" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' ' ')
	if [ " $u" = "$m" ] || [ " $u " = "$m" ]; then ok "$1"
	else nok "$1"; echo "  usage '$u' != SYNOPSIS '$m'" >&2; fi
}

# bench/grids.sh: sourced by bench scripts (not a bench itself).
# grids N NAME: N noise images of 320x300 and an LMDB $TMP/db of 8 grids
# each (content does not change the speed); exits naming NAME on failure.
grids() {
	for i in $(seq 0 $(($1 - 1))); do
		vips gaussnoise "$TMP/img$i.png" 320 300 --sigma 50 \
		    --mean 128 --seed $i || { echo "$2: vips failed" >&2; exit 1; }
	done
	ls "$TMP"/img*.png > "$TMP/list"
	"$BIN/rl-sample" -n 8 -l "$TMP/list" -o "$TMP/db" 2>/dev/null || exit 1
}

#!/bin/sh
# b_engine: one ResNet-50 Relative-Location training step, the engine
# (bench/engine_bench.c) against PyTorch (torch_relloc.py train
# --shared-center), same machine, same run. Both sides do the same work:
# 16 images x 9 patches of 3x64x64 through the trunk in train mode (144
# patch forwards), the 128 (centre, neighbour) pairs of GAP features
# through Linear(4096,4096)-BN1d-ReLU-Dropout-Linear(4096,8), cross-entropy,
# the whole backward, and one SGD step (momentum, weight decay) over every
# parameter. Neither side computes the input's gradient. GFLOP/s counts
# conv + linear only, 3 x the forward's 2*MACs (PyTorch's script also
# reports an exact count, 298.4 against 301.2 GFLOP), as a direct
# convolution does them: the engine's 3x3 stride-1 convolutions do 2.25x
# fewer multiplications by Winograd (wino.c), so its figure is a
# direct-convolution equivalent, not the rate of its FPUs. Both rates are
# also given as shares of this machine's sgemm peak (2048^3 through
# blas_gemm: $SGEMM_PEAK from bench/run.sh, or engine_bench measures it).
# The engine runs the OpenBLAS kernels blas_init chose for this CPU
# (blas.h) and GOMP_SPINCOUNT=100000 unless set; PyTorch runs with its
# defaults.
# engine_bench is $BIN/bench/engine_bench, which `make bench` builds with
# the tools' flags against libcommon.a.
set -e
BIN=${BIN:-build}
exe=$BIN/bench/engine_bench
[ -x "$exe" ] || { echo "b_engine: no $exe (run make bench)" >&2; exit 1; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (the figures below are only comparable in one run)"
out=$("$exe" -a 50 -i 16 -n 5 -w 2 ${SGEMM_PEAK:+-P "$SGEMM_PEAK"})
echo "$out"
peak=$(echo "$out" | sed -n 's/.*measured sgemm peak \([0-9.]*\) .*/\1/p')
peer=$(/usr/bin/python3 bench/torch_relloc.py train --arch resnet50 \
	--threads 2 --shared-center --steps 5 --warmup 2)
echo "pytorch: $peer"
ours=$(echo "$out" | sed -n 's/.*step \([0-9.]*\) s.*/\1/p')
echo "$peer" | /usr/bin/python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
t = r['sec_per_step']['median']
ours = float('$ours')
g = 3 * r['fwd_gflop']
peak = float('$peak')
print('pytorch: resnet50 step %.3f s (median of %d), %.1f pairs/s, %.1f GFLOP/s (3 x %.1f GFLOP forward), %.0f%% of the measured sgemm peak %.1f GFLOP/s'
      % (t, r['sec_per_step']['n'], r['pairs_per_s_median'], g / t, r['fwd_gflop'], 100 * g / t / peak, peak))
print('ratio: engine is %.2fx PyTorch (step throughput)' % (t / ours))
"

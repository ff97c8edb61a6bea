#!/usr/bin/python3
"""torch_relloc.py - relloc's PyTorch peer for bench/b_train.sh, b_engine.sh
and b_extract.sh: the same work as rl-train's step and rl-extract's forward,
done by PyTorch on the CPU of the same machine in the same run.

Needs Debian's python3-torch and python3-torchvision (make deps-bench); run
it with /usr/bin/python3, which is the interpreter those packages serve.

  torch_relloc.py train [--arch resnet50] [--images 16] [--shared-center]
      one Relative-Location step (Doersch et al. 2015, MMSelfSup's
      RelativeLoc): each image gives 8 (centre, neighbour) pairs of 3x64x64
      patches; a torchvision ResNet without its fc (random weights) turns
      each patch into its global-average-pooled feature; the two features
      of a pair are concatenated and go through Linear(2F, 4096),
      BatchNorm1d, ReLU, Dropout(0.5), Linear(4096, 8); cross-entropy
      against the neighbour's position, backward, and
      SGD(lr 0.01, momentum 0.9, weight decay 5e-4) - the recipe of
      relloc-protocols(7), OPTIMISATION. By default both patches of each pair go
      through the trunk (2 x 8 x images forwards, MMSelfSup's batching);
      --shared-center passes the 9 patches of an image once and pairs the
      centre's feature with each neighbour's (9 x images), as rl-train does.
  torch_relloc.py fwd [--arch resnet50] [--size 224] [--batch 16]
      eval-mode forward of the trunk under no_grad on a random batch
      (feature extraction without decoding or pooling).

Inputs are random tensors (the speed does not depend on their content),
seeded with 0. The first --warmup steps are not timed. Prints one JSON line:
per-step seconds (median, min, max, n), throughput, the FLOP count of the
convolutions and linear layers (2 per multiply-add, counted with forward
hooks), the threads and oneDNN state, peak RSS and the versions.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torchvision


def layer_macs(net, x):
    """Multiply-adds of each Conv2d/Linear in one forward of x, in call
    order, as a list of (kind, macs)."""
    seen, hooks = [], []

    def on_conv(mod, _inp, out):
        per_out = mod.in_channels // mod.groups
        per_out *= mod.kernel_size[0] * mod.kernel_size[1]
        seen.append(("conv", out.numel() * per_out))

    def on_linear(mod, _inp, out):
        seen.append(("linear", out.numel() * mod.in_features))

    for mod in net.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(on_conv))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(on_linear))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return seen


def trunk_of(arch):
    net = getattr(torchvision.models, arch)(weights=None)
    width = net.fc.in_features
    net.fc = nn.Identity()
    return net, width


class Siamese(nn.Module):
    """Trunk shared by both patches, then the pair classifier."""

    def __init__(self, arch, shared_center):
        super().__init__()
        self.trunk, width = trunk_of(arch)
        self.shared_center = shared_center
        self.classifier = nn.Sequential(
            nn.Linear(2 * width, 4096), nn.BatchNorm1d(4096),
            nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4096, 8))

    def forward(self, x):
        if self.shared_center:
            # x is [images, 9, 3, 64, 64], patch 0 the centre
            n = x.shape[0]
            f = self.trunk(x.reshape(n * 9, *x.shape[2:])).reshape(n, 9, -1)
            centre = f[:, 0:1, :].expand(-1, 8, -1)
            pairs = torch.cat((centre, f[:, 1:, :]), 2).reshape(n * 8, -1)
        else:
            # x is [pairs, 2, 3, 64, 64]: (centre, neighbour)
            n = x.shape[0]
            pairs = self.trunk(x.reshape(n * 2, *x.shape[2:])).reshape(n, -1)
        return self.classifier(pairs)


def stats(times):
    return {"median": statistics.median(times), "min": min(times),
            "max": max(times), "n": len(times)}


def timed(fn, warmup, count):
    out, times = None, []
    for i in range(warmup + count):
        t = time.perf_counter()
        out = fn()
        t = time.perf_counter() - t
        if i >= warmup:
            times.append(t)
    return out, stats(times)


def bench_train(a):
    torch.manual_seed(0)
    net = Siamese(a.arch, a.shared_center).train()
    sgd = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9,
                          weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    pairs = 8 * a.images
    if a.shared_center:
        x = torch.randn(a.images, 9, 3, 64, 64)
        forwards = 9 * a.images
    else:
        x = torch.randn(pairs, 2, 3, 64, 64)
        forwards = 2 * pairs
    y = torch.randint(0, 8, (pairs,))

    per_patch = layer_macs(net.trunk, torch.randn(1, 3, 64, 64))
    head = layer_macs(net.classifier.eval(),
                      torch.randn(2, net.classifier[0].in_features))
    net.train()
    head_macs = sum(m for _, m in head) * pairs // 2
    fwd_macs = sum(m for _, m in per_patch) * forwards + head_macs
    # backward = weight gradients of every layer + input gradients of every
    # layer but the first convolution (the images need no gradient)
    bwd_macs = 2 * fwd_macs - per_patch[0][1] * forwards

    def step():
        sgd.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        sgd.step()
        return loss

    loss, s = timed(step, a.warmup, a.steps)
    fwd_flop = 2 * fwd_macs
    return {"bench": "train", "arch": a.arch, "images": a.images,
            "pairs": pairs, "patch_forwards": forwards,
            "shared_center": a.shared_center, "sec_per_step": s,
            "pairs_per_s_median": pairs / s["median"],
            "fwd_gflop": fwd_flop / 1e9,
            "step_gflop_exact": (fwd_flop + 2 * bwd_macs) / 1e9,
            "achieved_gflops_median":
                (fwd_flop + 2 * bwd_macs) / s["median"] / 1e9,
            "final_loss": float(loss)}


def bench_fwd(a):
    torch.manual_seed(0)
    net, _ = trunk_of(a.arch)
    net.eval()
    x = torch.randn(a.batch, 3, a.size, a.size)
    macs = sum(m for _, m in layer_macs(net, x[:1]))
    with torch.no_grad():
        f, s = timed(lambda: net(x), a.warmup, a.iters)
    return {"bench": "fwd", "arch": a.arch, "size": a.size,
            "batch": a.batch, "feat_dim": int(f.shape[1]),
            "sec_per_batch": s,
            "images_per_s_median": a.batch / s["median"],
            "gmac_per_image": macs / 1e9,
            "achieved_gflops_median":
                2 * macs * a.batch / s["median"] / 1e9}


def main():
    p = argparse.ArgumentParser(description="PyTorch peer of rl-train and "
                                "rl-extract (see the file's header)")
    p.add_argument("bench", choices=("train", "fwd"))
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--images", type=int, default=16,
                   help="train: images per step, 8 pairs each")
    p.add_argument("--steps", type=int, default=8, help="train: timed steps")
    p.add_argument("--shared-center", action="store_true",
                   help="train: one trunk pass per patch, centre reused")
    p.add_argument("--size", type=int, default=64, help="fwd: image side")
    p.add_argument("--batch", type=int, default=64, help="fwd: batch size")
    p.add_argument("--iters", type=int, default=8, help="fwd: timed batches")
    p.add_argument("--no-mkldnn", action="store_true",
                   help="turn oneDNN off (PyTorch's im2col + BLAS path)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.no_mkldnn:
        torch.backends.mkldnn.enabled = False
    r = bench_train(a) if a.bench == "train" else bench_fwd(a)
    r.update(threads=torch.get_num_threads(),
             mkldnn=torch.backends.mkldnn.enabled,
             peak_rss_mib=resource.getrusage(
                 resource.RUSAGE_SELF).ru_maxrss / 1024,
             torch=torch.__version__, torchvision=torchvision.__version__)
    print(json.dumps(r))


if __name__ == "__main__":
    main()

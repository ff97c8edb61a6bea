#!/usr/bin/python3
"""The peer of rl-knn: DINO's weighted kNN as MMSelfSup 0.x runs it
(knn_classifier.py), in PyTorch on the CPU, queries in chunks of 500.

  torch_knn.py make DIR NBANK NQUERY DIM NCLASS   write clustered features
  torch_knn.py run DIR K,K,...                     time the kNN, print a table

`run` prints the seconds (load included, as rl-knn's wall clock) and, per
k, top-1 and top-5 in percent, the format rl-knn's table uses.
"""
import sys
import time

import numpy as np


def make(d, nb, nq, dim, ncls):
    rng = np.random.default_rng(0)
    centre = rng.standard_normal((ncls, dim), dtype=np.float32)
    for name, n in (("bank", nb), ("query", nq)):
        y = rng.integers(0, ncls, n)
        # ReLU'd like pooled CNN features; noise well above the centres
        x = np.maximum(centre[y] + 5 * rng.standard_normal((n, dim),
                       dtype=np.float32), 0)
        np.save(f"{d}/{name}.npy", x.astype(np.float32))
        np.save(f"{d}/{name}_y.npy", y.astype(np.int64))


def run(d, ks):
    import torch
    import torch.nn.functional as F
    t0 = time.time()
    bank = torch.from_numpy(np.load(f"{d}/bank.npy"))
    by = torch.from_numpy(np.load(f"{d}/bank_y.npy"))
    q = torch.from_numpy(np.load(f"{d}/query.npy"))
    qy = torch.from_numpy(np.load(f"{d}/query_y.npy"))
    ncls = int(max(by.max(), qy.max())) + 1
    bank = F.normalize(bank, dim=1).t()
    q = F.normalize(q, dim=1)
    kmax, T = max(ks), 0.07
    top1 = {k: 0 for k in ks}
    top5 = {k: 0 for k in ks}
    step = 500
    with torch.no_grad():
        for i in range(0, q.shape[0], step):
            s = q[i:i + step] @ bank
            dist, idx = s.topk(kmax, largest=True, sorted=True)
            cand = by.view(1, -1).expand(s.shape[0], -1)
            for k in ks:
                ret = torch.gather(cand, 1, idx[:, :k])
                onehot = torch.zeros(s.shape[0] * k, ncls)
                onehot.scatter_(1, ret.reshape(-1, 1), 1)
                w = dist[:, :k].clone().div_(T).exp_()
                probs = (onehot.view(s.shape[0], -1, ncls)
                         * w.view(s.shape[0], -1, 1)).sum(1)
                _, pred = probs.sort(1, True)
                ok = pred.eq(qy[i:i + step].view(-1, 1))
                top1[k] += ok[:, :1].sum().item()
                top5[k] += ok[:, :min(5, k)].sum().item()
    t = time.time() - t0
    n = q.shape[0]
    print(f"{t:.3f}")
    for k in ks:
        print(f"{k:6d} {100 * top1[k] / n:7.2f} {100 * top5[k] / n:7.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], *map(int, sys.argv[3:7]))
    else:
        run(sys.argv[2], [int(k) for k in sys.argv[3].split(",")])

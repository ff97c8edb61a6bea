#!/usr/bin/python3
"""svm_data.py - synthetic VOC07-like SVM benchmark data for bench/b_svm.sh.

Usage: svm_data.py OUTDIR [--train 5011] [--test 4952] [--dim 9216] [--seed 7]
Writes OUTDIR/{train,test}_{x,y}.npy: features float32 (N x dim), labels
int32 (N x 20) with 1 present, 0 absent, -1 difficult (MMSelfSup's SVMLabels).

Label statistics follow VOC2007 trainval: per-class positive rates from 1.9%
(sheep, 96 of 5011) to 40% (person), independent per class; about 7% of the
positive count again is marked difficult (-1) among the other images. The
features look like pooled ReLU activations: nonnegative, correlated through a
few shared latent factors, with a weak class-dependent mean shift (difficult
images get half of it), so the classes are learnable but far from separable
on the test set.
"""
import argparse
import os

import numpy as np

# VOC2007 trainval images per class (aeroplane ... tvmonitor), of 5011.
VOC_POS = [238, 243, 330, 181, 244, 186, 713, 337, 445, 141,
           200, 421, 287, 245, 2008, 245, 96, 229, 261, 256]


def labels(rng, n):
    rate = np.array(VOC_POS) / 5011.0
    y = (rng.random((n, len(rate))) < rate).astype(np.int32)
    for c in range(len(rate)):
        neg = np.flatnonzero(y[:, c] == 0)
        k = int(round(0.07 * y[:, c].sum()))
        y[rng.choice(neg, size=k, replace=False), c] = -1
    return y


def features(rng, y, mu, basis, chunk=512):
    n, dim = y.shape[0], mu.shape[1]
    x = np.empty((n, dim), dtype=np.float32)
    w = np.where(y == 1, 1.0, np.where(y == -1, 0.5, 0.0))
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        z = rng.standard_normal((b - a, basis.shape[0]))
        v = rng.standard_normal((b - a, dim)) + z @ basis + w[a:b] @ mu
        x[a:b] = np.maximum(v, 0.0)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--train", type=int, default=5011)
    ap.add_argument("--test", type=int, default=4952)
    ap.add_argument("--dim", type=int, default=9216)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--signal", type=float, default=0.08)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    mu = a.signal * rng.standard_normal((len(VOC_POS), a.dim))
    basis = 0.5 * rng.standard_normal((16, a.dim))
    for split, n in (("train", a.train), ("test", a.test)):
        y = labels(rng, n)
        x = features(rng, y, mu, basis)
        np.save(os.path.join(a.outdir, split + "_x.npy"), x)
        np.save(os.path.join(a.outdir, split + "_y.npy"), y)


if __name__ == "__main__":
    main()

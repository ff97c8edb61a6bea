#!/usr/bin/python3
"""gen_svm_ref.py - reference values from scikit-learn for tests/t_svm.c.

Run by hand (make check does not need Python); it rewrites svm_ref.txt
beside this script and the tiny .npy fixtures of tests/cli/t_svm.sh in
tests/data/svm/:  /usr/bin/python3 tests/ref/gen_svm_ref.py

The file is whitespace-separated tokens, one record per keyword:
  svm NAME n d m C         n training rows (d features then the +1/-1
                           label), m test rows (d features), then the
                           decision values of the n + m rows, then the
                           primal objective, of LinearSVC(C,
                           class_weight={1: 2, -1: 1}, squared hinge, dual,
                           intercept_scaling 1) solved to tol 1e-10
  folds NAME n             n labels, then StratifiedKFold(3).split fold
                           numbers (the test fold of each row)
  ap NAME n                n scores, n labels (+1/-1), then
                           average_precision_score(labels == 1, scores)
"""
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "svm_ref.txt")
DATA = os.path.join(HERE, "..", "data", "svm")


def fmt(v):
    return " ".join(repr(float(x)) for x in np.ravel(v))


def svm_case(f, name, rng, n, d, m, C, nonneg):
    x = rng.standard_normal((n + m, d))
    if nonneg:
        x = np.maximum(x, 0)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-5
    w = rng.standard_normal(d)
    y = np.where(x[:n] @ w + 0.3 * rng.standard_normal(n) > 0.1, 1, -1)
    clf = LinearSVC(C=C, class_weight={1: 2, -1: 1}, loss="squared_hinge",
                    penalty="l2", dual=True, tol=1e-10, max_iter=10**6,
                    intercept_scaling=1.0, random_state=0).fit(x[:n], y)
    dec = clf.decision_function(x)
    wt = np.append(clf.coef_.ravel(), clf.intercept_)
    xt = np.hstack([x[:n], np.ones((n, 1))])
    ci = np.where(y > 0, 2 * C, C)
    obj = 0.5 * wt @ wt + np.sum(ci * np.maximum(0, 1 - y * (xt @ wt)) ** 2)
    f.write(f"svm {name} {n} {d} {m} {C!r}\n")
    for i in range(n):
        f.write(fmt(x[i]) + f" {y[i]}\n")
    for i in range(n, n + m):
        f.write(fmt(x[i]) + "\n")
    f.write(fmt(dec) + "\n" + repr(float(obj)) + "\n")


def folds_case(f, name, y):
    y = np.asarray(y)
    fold = np.empty(len(y), dtype=int)
    for k, (_, te) in enumerate(StratifiedKFold(3).split(np.zeros(len(y)), y)):
        fold[te] = k
    f.write(f"folds {name} {len(y)}\n{' '.join(map(str, y))}\n"
            f"{' '.join(map(str, fold))}\n")


def ap_case(f, name, s, y):
    f.write(f"ap {name} {len(y)}\n{fmt(s)}\n{' '.join(map(str, y))}\n"
            f"{average_precision_score(np.asarray(y) == 1, s)!r}\n")


def fixtures(rng):
    """Separable data for the CLI test: class c's positives have feature c
    raised by 2, so every test AP is 100. Labels: 2-D 1/0/-1 (int32, one
    difficult row per class) and the same as a class vector (int64)."""
    os.makedirs(DATA, exist_ok=True)
    for split, n in (("tr", 30), ("te", 20)):
        cls = np.arange(n) % 3
        x = rng.random((n, 4)).astype(np.float32)
        x[np.arange(n), cls] += 2
        y = (cls[:, None] == np.arange(3)[None, :]).astype(np.int32)
        y[5, 0] = -1 if y[5, 0] == 0 else y[5, 0]
        y[7, 2] = -1 if y[7, 2] == 0 else y[7, 2]
        np.save(os.path.join(DATA, split + "x.npy"), x)
        np.save(os.path.join(DATA, split + "y.npy"), y)
        np.save(os.path.join(DATA, split + "y1.npy"), cls.astype(np.int64))
        if split == "tr":
            x[3, 1] = np.nan
            np.save(os.path.join(DATA, "trx_nan.npy"), x)
            # MMSelfSup's low-shot sample files for k = 1, samples 1 and 2:
            # -1 everywhere but one positive and 19 negatives per class.
            os.makedirs(os.path.join(DATA, "lowshot"), exist_ok=True)
            for smp in (1, 2):
                t = -np.ones_like(y)
                for c in range(3):
                    t[rng.choice(np.flatnonzero(y[:, c] == 1)), c] = 1
                    t[rng.choice(np.flatnonzero(y[:, c] == 0), 19,
                                 replace=False), c] = 0
                np.save(os.path.join(DATA, "lowshot",
                                     f"train_targets_sample{smp}_k1.npy"), t)
        else:
            y[:, 2] = np.where(y[:, 2] == 1, -1, y[:, 2])   # no positive
            np.save(os.path.join(DATA, "tey_nopos.npy"), y)


def main():
    rng = np.random.default_rng(20240601)
    with open(OUT, "w") as f:
        f.write(f"# gen_svm_ref.py, scikit-learn {sklearn.__version__}, "
                f"numpy {np.__version__}\n")
        svm_case(f, "dense-c1", rng, 40, 6, 10, 1.0, False)
        svm_case(f, "relu-c10", rng, 60, 12, 10, 10.0, True)
        svm_case(f, "relu-c0.0625", rng, 50, 8, 10, 0.0625, True)
        svm_case(f, "wide-c100", rng, 30, 40, 10, 100.0, True)
        folds_case(f, "pos-first", [1, 1, -1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1])
        folds_case(f, "neg-first", [-1, 1, -1, 1, -1, -1, 1, -1, -1, -1, -1])
        folds_case(f, "two-pos", [-1, -1, 1, -1, -1, -1, 1, -1])
        folds_case(f, "three-class", [2, 0, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2, 2, 0, 1, 1, 1])
        y = np.where(rng.random(300) < 0.2, 1, -1)
        folds_case(f, "random-300", y)
        s = np.round(rng.standard_normal(200), 1)   # many ties
        ap_case(f, "ties-200", s, np.where(rng.random(200) < 0.3, 1, -1))
        s = rng.standard_normal(100)
        ap_case(f, "plain-100", s, np.where(rng.random(100) < 0.1, 1, -1))
    fixtures(rng)


if __name__ == "__main__":
    sys.exit(main())

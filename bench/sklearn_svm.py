#!/usr/bin/python3
"""sklearn_svm.py - relloc's scikit-learn peer for bench/b_svm.sh: the VOC07
SVM benchmark as MMSelfSup 0.x runs it (relloc-protocols(7), SVM), on the
same .npy features rl-svm reads, so the two can be timed side by side and
their mAPs compared.

Needs Debian's python3-sklearn and python3-numpy (make deps-bench); run it
with /usr/bin/python3.

  sklearn_svm.py TRAIN_X TRAIN_Y TEST_X TEST_Y [--jobs 2] [--costs 1,10,100]

TRAIN_X, TEST_X: float32 matrices, one row per image. TRAIN_Y, TEST_Y:
either int matrices with one column per class (1 present, 0 absent,
-1 difficult, MMSelfSup's SVMLabels) or one integer class per row, which
is expanded to one-vs-rest columns with nothing difficult.

What it does, per the protocol:
  - features to float64, each row divided by (its L2 norm + 1e-5);
  - the costs: the --costs list followed by 0.5**n for n = 4..19;
  - per class, training labels 1 -> +1 and everything else (absent and
    difficult) -> -1; for each cost, LinearSVC(C, class_weight {1: 2, -1: 1},
    squared hinge, L2, dual, tol 1e-4, max_iter 2000, intercept_scaling 1)
    scored by cross_val_score(cv=3, scoring="average_precision");
  - the first cost with the best mean CV score is refitted on every
    training row; its decision_function scores the test rows;
  - test AP over the rows not marked -1 for the class, with the VOC
    all-point interpolation (precision made non-increasing from the right,
    summed where recall changes).
Classes run in parallel over --jobs processes (joblib).

Prints one JSON line: "ap" (per class, x100), "map" (x100), "costs" (the
chosen cost per class), "seconds" (the fits and tests, loading excluded),
"classes", "train_rows", "dim", "jobs".
"""
import argparse
import json
import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.svm import LinearSVC


def unit_rows(x):
    x = np.asarray(x, dtype=np.float64)
    return x / (np.sqrt((x * x).sum(axis=1))[:, None] + 1e-5)


def label_matrix(y):
    y = np.asarray(y)
    if y.ndim == 2:
        return y.astype(np.int64)
    cols = np.arange(int(y.max()) + 1)
    return (y.reshape(-1, 1) == cols.reshape(1, -1)).astype(np.int64)


def all_point_ap(score, truth):
    """VOC all-point interpolated AP of scores against labels 1/0, rows
    labelled -1 left out."""
    kept = truth != -1
    score, truth = score[kept], truth[kept]
    hit = (truth[np.argsort(-score, kind="stable")] > 0).astype(np.float64)
    tp = np.cumsum(hit)
    fp = np.cumsum(1.0 - hit)
    recall = tp / max(tp[-1] if len(tp) else 0.0, 1.0)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    step = np.flatnonzero(r[1:] != r[:-1])
    return float(((r[step + 1] - r[step]) * p[step + 1]).sum())


def classifier(cost):
    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, penalty="l2",
                     loss="squared_hinge", dual=True, tol=1e-4,
                     max_iter=2000, intercept_scaling=1.0)


def fit_class(c, xtr, ytr, xte, yte, costs):
    warnings.simplefilter("ignore", ConvergenceWarning)
    y = np.where(ytr[:, c] == 1, 1, -1)
    cv = [np.mean(cross_val_score(classifier(k), xtr, y, cv=3,
                                  scoring="average_precision"))
          for k in costs]
    cost = costs[int(np.argmax(cv))]
    model = classifier(cost).fit(xtr, y)
    return cost, all_point_ap(model.decision_function(xte), yte[:, c])


def main():
    p = argparse.ArgumentParser(description="scikit-learn peer of rl-svm "
                                "(see the file's header)")
    for name in ("train_x", "train_y", "test_x", "test_y"):
        p.add_argument(name)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--costs", default="1.0,10.0,100.0")
    a = p.parse_args()
    xtr, xte = unit_rows(np.load(a.train_x)), unit_rows(np.load(a.test_x))
    ytr, yte = label_matrix(np.load(a.train_y)), label_matrix(np.load(a.test_y))
    costs = [float(v) for v in a.costs.split(",")]
    costs += [0.5 ** n for n in range(4, 20)]
    start = time.perf_counter()
    out = Parallel(n_jobs=a.jobs)(
        delayed(fit_class)(c, xtr, ytr, xte, yte, costs)
        for c in range(ytr.shape[1]))
    seconds = time.perf_counter() - start
    aps = [ap for _, ap in out]
    print(json.dumps({
        "peer": "scikit-learn LinearSVC", "classes": len(aps),
        "train_rows": int(xtr.shape[0]), "dim": int(xtr.shape[1]),
        "ap": [round(100 * v, 3) for v in aps],
        "map": round(100 * float(np.mean(aps)), 3),
        "costs": [c for c, _ in out], "seconds": round(seconds, 2),
        "jobs": a.jobs}))


if __name__ == "__main__":
    main()

"""Agreement statistics in plain Python (no numpy/scipy at run time; the tests compare every
function with scipy/sklearn). A statistic that is undefined for the data (a constant series,
fewer than two points) is None, never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _check(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"series differ in length: {len(x)} vs {len(y)}")


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    _check(x, y)
    n = len(x)
    if n < 2 or min(x) == max(x) or min(y) == max(y):
        return None  # undefined for a constant series
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def rank(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank (as scipy.stats.rankdata)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    _check(x, y)
    return pearson(rank(x), rank(y))


def rmse(x: Sequence[float], y: Sequence[float]) -> float | None:
    _check(x, y)
    if not x:
        return None
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)) / len(x))


def quadratic_weighted_kappa(a: Sequence[int], b: Sequence[int], *, min_rating: int | None = None,
                             max_rating: int | None = None) -> float | None:
    """Cohen's kappa with quadratic weights over integer ratings min_rating..max_rating
    (default: the range seen in either series)."""
    _check(a, b)
    if not a:
        return None
    lo = min(min(a), min(b)) if min_rating is None else min_rating
    hi = max(max(a), max(b)) if max_rating is None else max_rating
    k = hi - lo + 1
    if k < 2:
        return None
    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b):
        observed[x - lo][y - lo] += 1
    n = len(a)
    row = [sum(r) for r in observed]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            w = (i - j) ** 2 / (k - 1) ** 2
            num += w * observed[i][j]
            den += w * row[i] * col[j] / n
    if den == 0:
        return None
    return 1 - num / den


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float | None:
    _check(y_true, y_pred)
    if not y_true:
        return None
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float | None:
    """Unweighted mean of per-label F1 over every label in either series (sklearn's default;
    a label with no true and no predicted items cannot occur, one with a 0/0 F1 counts 0)."""
    _check(y_true, y_pred)
    if not y_true:
        return None
    labels = sorted(set(y_true) | set(y_pred))
    scores = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred))
        fp = sum(t != label and p == label for t, p in zip(y_true, y_pred))
        fn = sum(t == label and p != label for t, p in zip(y_true, y_pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores)


def to_scale(value: float, lo: int, hi: int) -> int:
    """Round half up onto the integer points of a scale, clamped (for kappa)."""
    return max(lo, min(hi, int(math.floor(value + 0.5))))


def mae(x: Sequence[float], y: Sequence[float]) -> float | None:
    _check(x, y)
    if not x:
        return None
    return sum(abs(a - b) for a, b in zip(x, y)) / len(x)


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Counts with rows = true label, columns = predicted label, in the order of `labels`
    (labels outside the list are not counted)."""
    _check(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    out = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred):
        if t in index and p in index:
            out[index[t]][index[p]] += 1
    return out

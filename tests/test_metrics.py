"""Agreement statistics against scipy/sklearn and hand-computed values."""

from __future__ import annotations

import math
import random

import pytest

from mlgrade.evaluation import metrics

scipy_stats = pytest.importorskip("scipy.stats")
skm = pytest.importorskip("sklearn.metrics")


def _series(seed: int, n: int = 40):
    rng = random.Random(seed)
    human = [rng.choice([0, 0.5, 1, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5, 5]) for _ in range(n)]
    pred = [min(5.0, max(0.0, h + rng.gauss(0, 1.2))) for h in human]
    return human, pred


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pearson_and_spearman_match_scipy(seed):
    h, p = _series(seed)
    assert metrics.pearson(p, h) == pytest.approx(scipy_stats.pearsonr(p, h)[0], abs=1e-12)
    assert metrics.spearman(p, h) == pytest.approx(scipy_stats.spearmanr(p, h)[0], abs=1e-12)


def test_ranks_average_ties_like_scipy():
    v = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    assert metrics.rank(v) == list(scipy_stats.rankdata(v))


def test_hand_computed_values():
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert metrics.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.accuracy(["a", "b", "a", "a"], ["a", "a", "a", "b"]) == 0.5
    # F1(a) = 2*2/(2*2+1+1) = 2/3, F1(b) = 0 -> macro 1/3
    assert metrics.macro_f1(["a", "b", "a", "a"], ["a", "a", "a", "b"]) == pytest.approx(1 / 3)
    assert metrics.quadratic_weighted_kappa([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)


def test_undefined_statistics_are_none_not_numbers():
    assert metrics.pearson([2.0, 2.0, 2.0], [1, 2, 3]) is None
    assert metrics.spearman([1, 2, 3], [4, 4, 4]) is None
    assert metrics.pearson([1.0], [2.0]) is None
    assert metrics.rmse([], []) is None
    assert metrics.quadratic_weighted_kappa([], []) is None
    with pytest.raises(ValueError):
        metrics.pearson([1, 2], [1, 2, 3])


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_qwk_rmse_match_sklearn(seed):
    h, p = _series(seed)
    hi = [metrics.to_scale(x, 0, 5) for x in h]
    pi = [metrics.to_scale(x, 0, 5) for x in p]
    expected = skm.cohen_kappa_score(hi, pi, weights="quadratic", labels=list(range(6)))
    assert metrics.quadratic_weighted_kappa(hi, pi, min_rating=0, max_rating=5) == pytest.approx(expected, abs=1e-12)
    assert metrics.rmse(p, h) == pytest.approx(math.sqrt(skm.mean_squared_error(h, p)), abs=1e-12)


@pytest.mark.parametrize("seed", [7, 8])
def test_accuracy_and_macro_f1_match_sklearn(seed):
    rng = random.Random(seed)
    labels = ["correct", "incorrect", "contradictory"]
    t = [rng.choice(labels) for _ in range(50)]
    p = [x if rng.random() < 0.6 else rng.choice(labels) for x in t]
    assert metrics.accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))
    assert metrics.macro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="macro"))


def test_to_scale_rounds_half_up_and_clamps():
    assert [metrics.to_scale(x, 0, 5) for x in (-1, 0.49, 0.5, 2.5, 4.6, 7)] == [0, 0, 1, 3, 5, 5]

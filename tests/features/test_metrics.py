"""features.metrics: hand-computed values, the one tie rule of screening precision, zero guards."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from features import metrics


def test_wape_bias_mae_by_hand() -> None:
    y = np.array([10.0, 0.0, 30.0, 60.0])  # 100 units
    f = np.array([12.0, 5.0, 20.0, 60.0])  # errors 2, 5, 10, 0 -> 17; total 97
    assert metrics.wape(y, f) == pytest.approx(0.17)
    assert metrics.bias(y, f) == pytest.approx(-0.03)
    assert metrics.mae(y, f) == pytest.approx(17 / 4)
    # A forecast that is right in total but wrong per SKU: no bias, but WAPE sees it.
    swapped = np.array([30.0, 0.0, 10.0, 60.0])
    assert metrics.bias(y, swapped) == 0.0 and metrics.wape(y, swapped) == pytest.approx(0.4)


def test_curve_wape_counts_every_cell() -> None:
    actual = np.array([[4.0, 4.0], [0.0, 2.0]])  # 10 units
    forecast = np.array([[2.0, 6.0], [1.0, 1.0]])  # |errors| 2 + 2 + 1 + 1 = 6, totals right
    assert metrics.curve_wape(actual, forecast) == pytest.approx(0.6)
    # The totals are exact (8 and 2 vs 8 and 2): per-SKU WAPE would say 0, the curve does not.
    assert metrics.wape(actual.sum(axis=1), forecast.sum(axis=1)) == 0.0


def test_interval_coverage_by_hand_ends_included() -> None:
    y = np.array([1.0, 5.0, 10.0, 11.0, 0.0])
    low = np.array([1.0, 2.0, 2.0, 2.0, 1.0])
    high = np.array([3.0, 4.0, 10.0, 10.0, 3.0])
    shares = metrics.interval_coverage(y, low, high)
    # inside: 1 (on low), 10 (on high); above: 5, 11; below: 0.
    assert shares == pytest.approx({"coverage": 0.4, "below": 0.2, "above": 0.4})


def test_zero_actuals_are_guarded() -> None:
    zeros = np.zeros(5)
    assert metrics.wape(zeros, zeros) == 0.0 and metrics.bias(zeros, zeros) == 0.0
    with np.errstate(all="raise"):  # no division by zero anywhere
        missed = metrics.wape(zeros, np.ones(5))
        over = metrics.bias(zeros, np.ones(5))
    assert math.isfinite(missed) and missed > 1e6
    assert math.isfinite(over) and over > 1e6


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="shape"):
        metrics.wape(np.ones(3), np.ones((3, 1)))  # would broadcast to 3 x 3 pairs
    with pytest.raises(ValueError, match="shape"):
        metrics.screening_precision(np.ones(4), np.ones(5))


def test_screening_precision_by_hand() -> None:
    actual = np.array([100, 90, 50, 40, 30, 20, 10, 5], dtype=float)  # top quarter: items 0, 1
    assert metrics.screening_precision(actual, np.array([95, 10, 80, 1, 1, 1, 1, 1.0])) == 0.5
    assert metrics.screening_precision(actual, actual) == 1.0
    assert metrics.screening_precision(actual, -actual) == 0.0
    # three tied for two places, one of them truly top: it gets 2/3 of a place, out of 2
    tied = np.array([50, 1, 50, 50, 1, 1, 1, 1], dtype=float)
    assert metrics.screening_precision(actual, tied) == pytest.approx((2 / 3) / 2)
    # 9 items -> ceil(9/4) = 3 places; the forecast finds 2 of the true top 3
    nine = np.arange(9, 0, -1, dtype=float)
    assert metrics.screening_precision(nine, np.array([9, 8, 0, 7, 0, 0, 0, 0, 0.0])) == pytest.approx(2 / 3)
    # share changes the cut: top half of 8 = items 0..3; forecast picks 0, 2, 3 and 1 of 5 ties
    half = metrics.screening_precision(actual, np.array([9, 0, 8, 7, 0, 0, 0, 0.0]), share=0.5)
    assert half == pytest.approx((3 + 1 / 5) / 4)


@pytest.mark.parametrize("n", [1, 4, 8, 9, 10, 599, 600])
def test_a_constant_forecast_scores_like_a_random_pick(n: int) -> None:
    y = np.random.default_rng(n).poisson(30, n).astype(float)
    assert metrics.screening_precision(y, np.full(n, 7.0)) == pytest.approx(math.ceil(n / 4) / n)


def _expected_over_orders(y: np.ndarray, f: np.ndarray, share: float) -> float:
    """Precision averaged over every order of the rows, each ranked by a stable sort: the
    expectation over random tie-breaking, by brute force."""
    top = math.ceil(share * len(y))
    values = []
    for order in itertools.permutations(range(len(y))):
        order = np.array(order)
        picked = set(order[np.argsort(-f[order], kind="stable")[:top]].tolist())
        winners = set(order[np.argsort(-y[order], kind="stable")[:top]].tolist())
        values.append(len(picked & winners) / top)
    return float(np.mean(values))


@pytest.mark.parametrize(
    ("y", "f"),
    [
        ([9, 8, 7, 6, 5, 4], [3, 3, 3, 1, 3, 0]),  # ties in the forecast at the cut
        ([5, 5, 5, 2, 5, 1], [6, 5, 4, 3, 2, 1]),  # ties in the actuals at the cut
        ([1, 1, 1, 1, 1, 1], [6, 5, 4, 3, 2, 1]),  # every actual tied: a pick is as good as chance
    ],
)
def test_ties_are_the_expectation_over_random_tie_breaking(y: list[float], f: list[float]) -> None:
    y, f = np.array(y, dtype=float), np.array(f, dtype=float)
    # ties in only one of the two: one shared row order breaks them uniformly at random
    assert metrics.screening_precision(y, f, share=0.5) == pytest.approx(_expected_over_orders(y, f, 0.5))


def test_row_order_never_matters() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 40).astype(float)  # many ties in both
    f = rng.integers(0, 4, 40).astype(float)
    value = metrics.screening_precision(y, f)
    for _ in range(20):
        order = rng.permutation(40)
        assert metrics.screening_precision(y[order], f[order]) == pytest.approx(value, abs=1e-12)


def test_screening_refuses_what_it_cannot_rank() -> None:
    with pytest.raises(ValueError, match="NaN"):
        metrics.screening_precision(np.ones(4), np.array([1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(ValueError, match="non-empty"):
        metrics.screening_precision(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="share"):
        metrics.screening_precision(np.ones(4), np.ones(4), share=0.0)

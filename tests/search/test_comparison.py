"""The statistics of comparison stages, on numbers whose answers are known.

Expected values are from the textbook formulas: the t-interval mean ± t(0.975, n-1) s / sqrt(n), and Welch's
t = (mean_b - mean_a) / sqrt(s_a²/n_a + s_b²/n_b) with Welch-Satterthwaite degrees of freedom. The first row is
R's `t.test(c(4, 5, 6), c(1, 2, 3))`: t = 3.6742, df = 4, p-value = 0.02131, 95% CI 0.7330 to 5.2670
(3 ± 2.776445 · sqrt(2/3)).
"""

import math

import pytest

from hpsearch.search.watch.comparison import compare_variants, mean_interval, welch

NAN = math.nan

INTERVALS = [
    # values, mean, low, high
    ([1.0, 2.0, 3.0], 2.0, 2.0 - 4.302653 / math.sqrt(3), 2.0 + 4.302653 / math.sqrt(3)),
    ([0.90, 0.905, 0.91], 0.905, 0.905 - 4.302653 * 0.005 / math.sqrt(3), 0.905 + 4.302653 * 0.005 / math.sqrt(3)),
    ([0.5, 0.7], 0.6, 0.6 - 12.706205 * 0.141421 / math.sqrt(2), 0.6 + 12.706205 * 0.141421 / math.sqrt(2)),
    ([0.8, 0.8, 0.8, 0.8], 0.8, 0.8, 0.8),  # no spread: the interval is the point
    ([0.9], 0.9, NAN, NAN),  # one seed: no interval
    ([], NAN, NAN, NAN),
]


@pytest.mark.parametrize(("values", "mean", "low", "high"), INTERVALS)
def test_mean_interval(values: list[float], mean: float, low: float, high: float) -> None:
    got = mean_interval(values)
    assert got == pytest.approx((mean, low, high), abs=1e-5, nan_ok=True)


WELCH = [
    # a (reference), b, p, difference interval low, high (of mean(b) - mean(a))
    ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], 0.021311, 0.733042, 5.266958),
    # unequal spreads: df = 2.9412, t = 2.3238
    ([0.90, 0.905, 0.91], [0.91, 0.92, 0.93], 0.104479, -0.005777, 0.035777),
    ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 0.0, 1.0, 1.0),  # no spread on either side, different means: certain
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], NAN, NAN, NAN),  # nothing to test
    ([1.0, 2.0], [3.0], NAN, NAN, NAN),  # one value on a side
]


@pytest.mark.parametrize(("a", "b", "p", "low", "high"), WELCH)
def test_welch(a: list[float], b: list[float], p: float, low: float, high: float) -> None:
    assert welch(a, b) == pytest.approx((p, low, high), abs=1e-5, nan_ok=True)


def test_variants_are_tested_against_the_first() -> None:
    first, same, better, lone = compare_variants([
        ("max", [0.93, 0.935, 0.94]), ("max-again", [0.93, 0.935, 0.94]), ("min", [0.91, 0.915, 0.92]),
        ("one-seed", [0.9])])
    assert first.diff is None and first.p_value is None and first.significant is None
    assert first.mean == pytest.approx(0.935) and (first.low, first.high) == pytest.approx((0.92258, 0.94742),
                                                                                          abs=1e-5)
    assert same.diff == pytest.approx(0.0) and same.p_value == pytest.approx(1.0) and same.significant is False
    assert better.diff == pytest.approx(-0.02) and better.significant is True
    assert better.p_value == pytest.approx(0.00805, abs=1e-5)  # t = -4.899, df = 4
    assert lone.p_value is None and lone.significant is None and math.isnan(lone.low)
    exported = better.to_dict()
    assert exported["ci95"] == pytest.approx([0.90258, 0.92742], abs=1e-5) and exported["significant"] is True
    assert lone.to_dict()["ci95"] == [None, None]

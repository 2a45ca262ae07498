"""The statistics of a comparison stage: each variant's mean with a 95% interval, and Welch's t-test against
the first variant. Pure functions over lists of values; scipy.stats does the distributions.

Welch's test, not Student's: variants such as a large LR with small momentum are less stable over seeds than
their reference, so the two spreads must not be assumed equal. Seeds are few (3 to 10), so the intervals use
the t distribution, not the normal one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE  # significance level of the test, matching the intervals


@dataclass(frozen=True)
class VariantResult:
    """One variant over its seeds, and (from the second variant on) its difference to the first."""

    name: str
    values: tuple[float, ...]
    mean: float
    std: float  # sample standard deviation (n - 1)
    low: float  # 95% confidence interval of the mean; nan with fewer than two values
    high: float
    diff: float | None = None  # mean minus the first variant's mean; None for the first variant
    diff_low: float | None = None  # 95% interval of that difference (Welch)
    diff_high: float | None = None
    p_value: float | None = None  # Welch's two-sided t-test against the first variant; None when untestable
    significant: bool | None = None  # p_value < ALPHA; None for the first variant or when untestable

    def to_dict(self) -> dict[str, Any]:
        """Plain, rounded numbers (None where a number is undefined) for exports."""
        return {"variant": self.name, "n": len(self.values), "mean": _round(self.mean), "std": _round(self.std),
                "ci95": [_round(self.low), _round(self.high)], "values": list(self.values),
                "diff_to_first": _round(self.diff),
                "diff_ci95": None if self.diff is None else [_round(self.diff_low), _round(self.diff_high)],
                "p_value": _round(self.p_value), "significant": self.significant}


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval of the mean; low and high are nan for fewer than two values."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    from scipy import stats  # 0.8 s of import: only where a comparison is computed, not at every worker start

    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * _std(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def welch(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(p, low, high) of Welch's two-sided t-test of mean(b) - mean(a); all nan when it cannot be computed
    (fewer than two values on a side, or no spread on either)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, math.nan
    from scipy import stats

    with warnings.catch_warnings():  # identical values: scipy warns, then answers nan or an exact 0
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(b, a, equal_var=False)
        interval = result.confidence_interval(confidence)
    if math.isnan(result.pvalue):
        return math.nan, math.nan, math.nan
    return float(result.pvalue), float(interval.low), float(interval.high)


def compare_variants(groups: Sequence[tuple[str, Sequence[float]]], alpha: float = ALPHA) -> list[VariantResult]:
    """One result per (name, values) in order; every variant after the first is tested against the first."""
    out: list[VariantResult] = []
    first: Sequence[float] = groups[0][1] if groups else ()
    for i, (name, values) in enumerate(groups):
        mean, low, high = mean_interval(values, 1 - alpha)
        std = _std(values) if len(values) > 1 else math.nan
        if i == 0:
            out.append(VariantResult(name, tuple(map(float, values)), mean, std, low, high))
            continue
        p, diff_low, diff_high = welch(first, values, 1 - alpha)
        diff = mean - math.fsum(first) / len(first) if first and values else math.nan
        testable = not math.isnan(p)
        out.append(VariantResult(name, tuple(map(float, values)), mean, std, low, high, diff, diff_low, diff_high,
                                 p if testable else None, bool(p < alpha) if testable else None))
    return out


def _std(values: Sequence[float]) -> float:
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)

"""Which trials narrowing centres the next box on, ranked by a smoothed value instead of each trial's own run
(pure, no I/O).

A cheap stage's values are noisy, and at a misleading fidelity the best single runs are often lucky ones. With
narrowing's `smooth` > 0, each completed trial is ranked by a kernel-weighted mean of the values around it
(Nadaraya-Watson): numeric params in their own scale (log where the space is log) divided by the box's width,
a Gaussian kernel of `smooth` widths; a trial only counts as a neighbour where their categorical choices agree.
The box then spans the top trials by that mean together with the configs carried into the next stage, so they
still lie in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution

from hpsearch.search.plan.space import Space, is_active


def smoothed_values(space: Space, trials: Sequence[Mapping[str, Any]], values: Sequence[float],
                    bandwidth: float) -> list[float]:
    """Each trial's kernel-weighted mean of `values` over the trials near it in `space` (itself included)."""
    if bandwidth <= 0 or len(trials) < 2:
        return [float(v) for v in values]
    numeric, same = _coordinates(space, trials)
    with np.errstate(over="ignore"):  # far past the kernel's width a weight is 0, however far
        diff = (numeric[:, None, :] - numeric[None, :, :]) / bandwidth
        diff = np.where(np.isnan(diff), 0.0, diff)  # a param inactive in either trial is not a distance
        weights = np.exp(-0.5 * np.sum(diff**2, axis=-1)) * same  # 1 on the diagonal: never all zero
    v = np.asarray(values, dtype=float)
    return [float(x) for x in weights @ v / weights.sum(axis=1)]


def _coordinates(space: Space, trials: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Numeric params as fractions of the space's width (nan where inactive), and which pairs of trials agree
    on every categorical param active in both."""
    n = len(trials)
    columns: list[list[float]] = []
    same = np.ones((n, n))
    for p in space:
        d = p.distribution
        active = [p.name in t and is_active(p, t) for t in trials]
        if isinstance(d, CategoricalDistribution):
            labels = [repr(t[p.name]) if a else None for t, a in zip(trials, active, strict=True)]
            for i in range(n):
                for j in range(n):
                    if labels[i] is not None and labels[j] is not None and labels[i] != labels[j]:
                        same[i, j] = 0.0
            continue
        to = math.log if d.log else float
        lo, span = to(d.low), to(d.high) - to(d.low)
        if span <= 0:
            continue
        columns.append([(to(t[p.name]) - lo) / span if a and _positive(t[p.name], d.log) else math.nan
                        for t, a in zip(trials, active, strict=True)])
    numeric = np.array(columns, dtype=float).T if columns else np.zeros((n, 0))
    return numeric, same


def _positive(value: Any, log: bool) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (not log or value > 0)


def smoothed_order(space: Space, params: Sequence[Mapping[str, Any]], values: Sequence[float], bandwidth: float,
                   *, minimize: bool = False, done: int | None = None) -> list[int]:
    """Indices of the first `done` (the completed trials; default all) of `params`, best smoothed value first
    (ties by index); with `bandwidth` 0 or fewer than two of them, in their own order."""
    done = len(params) if done is None else min(done, len(params))
    if bandwidth <= 0 or done < 2:
        return list(range(done))
    smoothed = smoothed_values(space, params[:done], values[:done], bandwidth)
    sign = 1.0 if minimize else -1.0
    return sorted(range(done), key=lambda i: (sign * smoothed[i], i))


def box_trials(space: Space, ranked: Sequence[Mapping[str, Any]], values: Sequence[float], count: int, carry: int,
               bandwidth: float, *, minimize: bool = False, done: int | None = None) -> list[Mapping[str, Any]]:
    """The trials a box is drawn around: of `ranked` (params, best first by their own `values`), the best `count`
    of the first `done` (the completed ones; default all) by smoothed value, best first, then those of the first
    `carry` that are not among them. Without smoothing, the first max(count, carry) as they come."""
    if bandwidth <= 0 or (len(ranked) if done is None else min(done, len(ranked))) < 2:
        return list(ranked[: max(count, carry)])
    order = smoothed_order(space, ranked, values, bandwidth, minimize=minimize, done=done)[:count]
    order += [i for i in range(min(carry, len(ranked))) if i not in order]
    return [ranked[i] for i in order]

"""How far a stage's ranking can be trusted: whether its trials rank alike halfway through their runs and at the
end (pure, no I/O).

Narrowing, carrying and the final stage's choice all rest on the order of one stage's trials. Where a stage's
fidelity is too low for its noise, or the optimum moves as runs get longer, that order is little better than
chance, and a box drawn from it holds whatever the noise favoured. A stage cannot re-run its configs to check,
but each trial already reports a value per epoch: the Spearman correlation, over the completed trials, between the
values at the middle and at the end of their runs is a test-retest measure of the ranking that costs nothing. On
the tuning landscapes of bench/landscapes.py the example plan's wide coarse stage gives 0.49 to 0.97 on the
synthetic objective and its variants (below 0.5 once in 90 campaigns) and -0.3 to 0.6 on the MF-Hartmann functions,
whose low fidelities are mostly noise (above 0.5 twice in 60; bench/search_quality_suite.py prints it per
family). In a narrowed stage the configs are close, so the same noise weighs more and rho falls on every
landscape. The next stage's note and the report show it, with a warning below `LOW`; a search stage's `escalate`
form acts on it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_PAIRS = 5  # fewer trials that reported both steps measure nothing
LOW = 0.5  # below this, the stage's ranking is called little better than chance


@dataclass(frozen=True)
class Agreement:
    """Spearman's rho between the values at step `mid` and step `last`, over `pairs` completed trials."""

    rho: float
    pairs: int
    mid: int
    last: int

    @property
    def low(self) -> bool:
        return self.rho < LOW

    def describe(self) -> str:
        """One line for the stage note and the report."""
        text = f"rho = {self.rho:.2f} between steps {self.mid} and {self.last} over {self.pairs} completed trials"
        if self.low:
            text += (" (low: its ranking is little better than chance. After a wide stage, its fidelity misleads "
                     "and the configs it put on top may not hold at this one's; after a narrowed one, its configs "
                     "may just be about equally good)")
        return text

    def to_data(self) -> dict[str, Any]:
        return {"rho": self.rho, "pairs": self.pairs, "mid": self.mid, "last": self.last}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Agreement:
        return cls(float(data["rho"]), int(data["pairs"]), int(data["mid"]), int(data["last"]))


def ranking_agreement(curves: Sequence[Mapping[int, float]]) -> Agreement | None:
    """The agreement of the completed trials' values (step -> value, one mapping per trial) between their last
    step and the latest step at most half of it that enough of them reported; None where fewer than `MIN_PAIRS`
    trials reported both, or where either side has no spread."""
    finite = [{int(s): float(v) for s, v in c.items() if math.isfinite(v)} for c in curves]
    finite = [c for c in finite if c]
    if len(finite) < MIN_PAIRS:
        return None
    last = max(max(c) for c in finite)
    ended = [c for c in finite if last in c]
    counts: dict[int, int] = {}
    for c in ended:
        for s in c:
            if 2 * s <= last:
                counts[s] = counts.get(s, 0) + 1
    steps = [s for s, n in counts.items() if n >= MIN_PAIRS]
    if not steps:
        return None
    mid = max(steps)
    pairs = [(c[mid], c[last]) for c in ended if mid in c]
    rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
    return None if math.isnan(rho) else Agreement(rho, len(pairs), mid, last)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation, scipy's (ties get their mean rank); nan when either side is constant."""
    if len(x) < 2:
        return math.nan
    from scipy import stats  # loaded where a stage opens, not with every worker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(x, y).statistic)

"""Coarse to fine: derive a smaller space from the best trials of the previous stage (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpsearch.search.plan.space import Distribution, Param, PlanError, Space, is_active, same_value

_RULE_KEYS = ("top_k", "top_fraction", "margin", "min_width", "grow", "edge", "smooth")


@dataclass(frozen=True)
class NarrowRule:
    """Which trials count as "top" (exactly one of top_k / top_fraction) and how far to widen around them."""

    top_k: int | None = None
    top_fraction: float | None = None  # of the ranked trials, rounded up, at least one
    margin: float = 0.25  # widen by this fraction of the top trials' range on each side
    min_width: float = 0.1  # never narrower than this fraction of the parent's width (in its scale)
    # Re-open a side, as a trust region does: when the best trial lies within `edge` x the parent box's width of a
    # side the plan's space reaches past, the child extends `grow` x that width beyond it (0: never).
    grow: float = 1.0
    edge: float = 0.1
    # Rank the previous stage's completed trials by the kernel-weighted mean of the values around each (Gaussian,
    # `smooth` x the box's width per numeric param) when choosing the top ones, not by their own noisy run (0: off;
    # search/plan/model_rank.py). The carried configs stay in the box either way.
    smooth: float = 0.0

    def __post_init__(self) -> None:
        if (self.top_k is None) == (self.top_fraction is None):
            raise ValueError("NarrowRule needs exactly one of top_k and top_fraction")

    def count(self, n_ranked: int) -> int:
        """How many of `n_ranked` trials are top trials."""
        if self.top_k is not None:
            return min(self.top_k, n_ranked)
        assert self.top_fraction is not None
        # The epsilon keeps 0.1 * 30 == 3.0000000000000004 from rounding up to 4.
        return min(n_ranked, max(1, math.ceil(self.top_fraction * n_ranked - 1e-9)))


def parse_narrow_rule(data: Any, where: str = "narrow") -> NarrowRule:
    """Build a NarrowRule from its plan-file form {top_k | top_fraction, margin, min_width}."""
    if not isinstance(data, dict):
        raise PlanError(f"{where}: expected a mapping like {{top_fraction: 0.25, margin: 0.25, "
                        f"min_width: 0.1}}, got {data!r}")
    unknown = sorted(set(data) - set(_RULE_KEYS))
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]!r}; valid keys are {', '.join(_RULE_KEYS)}")
    if ("top_k" in data) == ("top_fraction" in data):
        raise PlanError(f"{where}: give exactly one of top_k (a count) and top_fraction "
                        "(a share of the trials)")
    top_k = data.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise PlanError(f"{where}.top_k: must be an integer >= 1, got {top_k!r}")
    fraction = _fraction(data.get("top_fraction"), f"{where}.top_fraction", low_open=True)
    margin = data.get("margin", NarrowRule.margin)
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin < math.inf:
        raise PlanError(f"{where}.margin: must be a number >= 0, got {margin!r}")
    min_width = _fraction(data.get("min_width", NarrowRule.min_width), f"{where}.min_width", low_open=False)
    grow = data.get("grow", NarrowRule.grow)
    if not isinstance(grow, (int, float)) or isinstance(grow, bool) or not 0 <= grow <= 10:
        raise PlanError(f"{where}.grow: must be a number in [0, 10] (widths of the previous box to re-open a side "
                        f"by; 0 never re-opens), got {grow!r}")
    edge = data.get("edge", NarrowRule.edge)
    if not isinstance(edge, (int, float)) or isinstance(edge, bool) or not 0 <= edge <= 0.5:
        raise PlanError(f"{where}.edge: must be a number in [0, 0.5] (the share of the previous box's width that "
                        f"counts as its edge), got {edge!r}")
    smooth = data.get("smooth", NarrowRule.smooth)
    if not isinstance(smooth, (int, float)) or isinstance(smooth, bool) or not 0 <= smooth <= 1:
        raise PlanError(f"{where}.smooth: must be a number in [0, 1] (the kernel's width as a share of the box's; "
                        f"0 ranks by each trial's own value), got {smooth!r}")
    return NarrowRule(top_k, fraction, float(margin), min_width if min_width is not None else 0.0, float(grow),
                      float(edge), float(smooth))


def _fraction(value: Any, where: str, *, low_open: bool) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 < value <= 1 if low_open else 0 <= value <= 1):
        bounds = "(0, 1]" if low_open else "[0, 1]"
        raise PlanError(f"{where}: must be a number in {bounds}, got {value!r}")
    return float(value)


def rule_to_data(rule: NarrowRule) -> dict[str, Any]:
    """Plan-file form of a rule, which `parse_narrow_rule` reads back."""
    top = {"top_k": rule.top_k} if rule.top_k is not None else {"top_fraction": rule.top_fraction}
    # smooth only when on: a plan stored before it existed keeps its fingerprint
    smooth = {"smooth": rule.smooth} if rule.smooth else {}
    return {**top, "margin": rule.margin, "min_width": rule.min_width, "grow": rule.grow, "edge": rule.edge,
            **smooth}


def narrow(
    space: Space, ranked_trials: Sequence[Mapping[str, Any]], rule: NarrowRule, *, keep: int = 0,
    bounds: Space | None = None,
) -> Space:
    """The child space around the top trials (param dicts, best first); the best `keep` always count as top.

    Pass `keep` = the number of configs carried into the next stage, so that they lie in its space. With
    `bounds` (the plan's whole space), a side of `space` that the best trial sits against is re-opened by
    `rule.grow` x its width, within `bounds`: the child may then reach past `space` on that side.
    """
    top = ranked_trials[: max(rule.count(len(ranked_trials)), min(keep, len(ranked_trials)))]
    if not top:
        return space
    children: dict[str, Param] = {}
    for p in space.params:
        # A dropped parent choice makes its children's condition narrower, or impossible: then drop them.
        condition = {}
        for parent, allowed in p.condition.items():
            if parent not in children:
                break
            parent_d = children[parent].distribution
            assert isinstance(parent_d, CategoricalDistribution)
            condition[parent] = tuple(v for v in allowed if any(same_value(v, c) for c in parent_d.choices))
            if not condition[parent]:
                break
        else:
            values = [t[p.name] for t in top if p.name in t and is_active(p, t)]
            child = _narrow_distribution(p.distribution, values, rule)
            if bounds is not None and p.name in bounds and values:
                child = grow_side(p.distribution, child, values[0], bounds[p.name].distribution, rule)
            children[p.name] = Param(p.name, child, condition)
    return Space(tuple(children.values()))


def _narrow_distribution(parent: Distribution, values: list[Any], rule: NarrowRule) -> Distribution:
    if isinstance(parent, CategoricalDistribution):
        kept = [c for c in parent.choices if any(same_value(c, v) for v in values)]
        return CategoricalDistribution(kept) if kept else parent
    inside = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
              and parent.low <= v <= parent.high]
    if not inside:
        return parent
    low, high = _widen(parent, min(inside), max(inside), rule)
    if isinstance(parent, IntDistribution):
        # Outward onto the parent's grid, so every int the child allows the parent allows too; the
        # epsilon keeps exp(log(64)) == 63.99999999999999 from rounding down to 63.
        step = parent.step
        low = parent.low + math.floor((low - parent.low) / step + 1e-9) * step
        high = parent.low + math.ceil((high - parent.low) / step - 1e-9) * step
        low, high = int(max(parent.low, low)), int(min(parent.high, high))
        return IntDistribution(low, high, log=parent.log, step=step)
    return FloatDistribution(low, high, log=parent.log)


def _widen(parent: FloatDistribution | IntDistribution, vmin: float, vmax: float,
           rule: NarrowRule) -> tuple[float, float]:
    """[vmin, vmax] widened by margin and min_width in the param's own scale, shifted to fit the parent."""
    to, back = (math.log, math.exp) if parent.log else (float, float)
    plo, phi = to(parent.low), to(parent.high)
    lo, hi = to(vmin), to(vmax)
    spread = hi - lo
    lo, hi = lo - rule.margin * spread, hi + rule.margin * spread
    need = rule.min_width * (phi - plo)
    if hi - lo < need:
        centre = (lo + hi) / 2
        lo, hi = centre - need / 2, centre + need / 2
    # Shift rather than clip, so a cluster at the parent's edge still gets min_width. Within a
    # hair of an edge counts as on it and takes the parent's exact bound: log/exp round trips
    # would otherwise move bounds by an ulp each time the same trials narrow a space again.
    tol = 1e-9 * (phi - plo)
    at_low = lo <= plo + tol
    if at_low:
        lo, hi = plo, hi + max(0.0, plo - lo)
    at_high = hi >= phi - tol
    if at_high:
        lo, hi = max(plo, lo - max(0.0, hi - phi)), phi
        at_low = at_low or lo <= plo + tol
    low = parent.low if at_low else back(lo)
    high = parent.high if at_high else back(hi)
    # The round trip through log/exp may also land an ulp inside the top trials' own values.
    return min(low, vmin), max(high, vmax)


def grow_side(parent: Distribution, child: Distribution, best: Any, outer: Distribution,
              rule: NarrowRule) -> Distribution:
    """`child`, re-opened on each side of `parent` that `best` lies within `rule.edge` of, by `rule.grow` x the
    parent's width in its scale, never past `outer` (the plan's space). Other kinds come back unchanged."""
    numeric = (FloatDistribution, IntDistribution)
    if (not isinstance(parent, numeric) or type(child) is not type(parent) or type(outer) is not type(parent)
            or rule.grow <= 0 or isinstance(best, bool) or not isinstance(best, (int, float))):
        return child
    assert isinstance(parent, numeric) and isinstance(child, numeric) and isinstance(outer, numeric)
    to, back = (math.log, math.exp) if parent.log else (float, float)
    plo, phi, olo, ohi = to(parent.low), to(parent.high), to(outer.low), to(outer.high)
    width, where = phi - plo, to(best)
    low, high = child.low, child.high
    if where - plo <= rule.edge * width and outer.low < parent.low:
        low = min(low, max(outer.low, back(max(olo, plo - rule.grow * width))))
    if phi - where <= rule.edge * width and outer.high > parent.high:
        high = max(high, min(outer.high, back(min(ohi, phi + rule.grow * width))))
    if (low, high) == (child.low, child.high):
        return child
    if isinstance(child, IntDistribution):
        step = child.step
        low = child.low - math.ceil((child.low - low) / step - 1e-9) * step
        high = child.high + math.ceil((high - child.high) / step - 1e-9) * step
        return IntDistribution(int(max(outer.low, low)), int(min(outer.high, high)), log=child.log, step=step)
    return FloatDistribution(low, high, log=child.log)


def what_changed(parent: Distribution | None, child: Distribution | None) -> str:
    """In words, what narrowing did to one param: kept, narrowed, re-opened below / above, or moved."""
    if parent is None or child is None:
        return "added" if parent is None else "dropped"
    if isinstance(parent, CategoricalDistribution) or isinstance(child, CategoricalDistribution):
        if not isinstance(parent, CategoricalDistribution) or not isinstance(child, CategoricalDistribution):
            return "changed"
        dropped = len(parent.choices) - len(child.choices)
        return f"narrowed ({dropped} choice(s) dropped)" if dropped > 0 else "kept"
    below, above = child.low < parent.low, child.high > parent.high
    if below and above:
        return "widened"
    if below or above:
        side = "below" if below else "above"
        inside = child.high < parent.high if below else child.low > parent.low
        return f"moved (re-opened {side})" if inside else f"re-opened {side}"
    return "kept" if (child.low, child.high) == (parent.low, parent.high) else "narrowed"


def set_lr_range(space: Space, low: float, high: float, margin: float = 0.0) -> Space:
    """lr on a log scale over an LR range test's [low, high], widened by `margin` x its log width per side."""
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got {low} and {high}")
    lo, hi = math.log(low), math.log(high)
    pad = margin * (hi - lo)
    return space.with_distribution("lr", FloatDistribution(math.exp(lo - pad), math.exp(hi + pad), log=True))

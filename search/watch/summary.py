"""What a campaign cost per stage, and what its comparison stages found: read from the storage for status,
report and export. The arithmetic is in `cost` and `comparison`; this module only gathers the trials."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.plan.plan import Stage, StageKind
from hpsearch.search.plan.stages import CompareStage
from hpsearch.search.run.campaign import DUPLICATE, SLOT, Campaign, StageView
from hpsearch.search.run.cost import EPOCH_EQUIVALENTS, Cost, stored_cost, total
from hpsearch.search.watch.comparison import VariantResult, compare_variants

COSTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)  # running trials count once they end


@dataclass(frozen=True)
class StageSummary:
    """One stage's cost by trial state, and for a compare stage its variants' results."""

    name: str
    kind: str
    opened: bool
    costs: dict[str, Cost] = field(default_factory=dict)  # "complete" | "pruned" | "fail" -> their cost
    comparison: list[VariantResult] = field(default_factory=list)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # compare: name -> its overrides
    compare_on: str = ""  # compare: "best" or "base"

    @property
    def cost(self) -> Cost:
        return total(self.costs.values())


def cost_columns(unit: str) -> list[int]:
    """Which of a cost row's columns (stage, trials, epochs or steps, device-hours, work in `unit`, of pruned
    trials, of failed trials, saved by pruning) a cost table shows: all for the built-in objectives; for a user's,
    no saved (its planned length is not known), and no work column where the work is the steps again."""
    if unit == EPOCH_EQUIVALENTS:
        return list(range(8))
    return [i for i in range(7) if not (i == 4 and unit == "steps")]


def campaign_summary(storage: BaseStorage, campaign: str) -> list[StageSummary]:
    """Every stage of the campaign in plan order; stages not open yet cost nothing."""
    stored = Campaign.load(storage, campaign)
    return summary_of(stored.views(), stored.plan.cost_unit)


def summary_of(views: list[tuple[Stage, StageView | None]], unit: str = EPOCH_EQUIVALENTS) -> list[StageSummary]:
    """`campaign_summary` of stages already looked at (`Campaign.views`); `unit`: the objective's cost unit."""
    return [stage_summary(view, unit) if view is not None else StageSummary(stage.name, stage.kind, False)
            for stage, view in views]


def stage_summary(view: StageView, unit: str = EPOCH_EQUIVALENTS) -> StageSummary:
    """The summary of one open stage, from its trials as the view read them."""
    trials = [t for t in view.trials if DUPLICATE not in t.system_attrs]
    costs: dict[str, Cost] = {}
    for t in trials:
        if t.state in COSTED:
            key = t.state.name.lower()
            costs[key] = costs.get(key, Cost(unit=unit)) + trial_cost_of(t, unit)
    stage = view.stage
    if not isinstance(stage, CompareStage):
        return StageSummary(stage.name, stage.kind, True, costs)
    groups = variant_values(trials, [name for name, _ in stage.variants], stage.seeds)
    return StageSummary(stage.name, stage.kind, True, costs, compare_variants(groups),
                        {name: dict(changes) for name, changes in stage.variants}, stage.compare_on)


def trial_cost_of(t: FrozenTrial, unit: str = EPOCH_EQUIVALENTS) -> Cost:
    """The cost of one stored trial (see `cost.stored_cost`)."""
    wall = None
    if t.datetime_start is not None and t.datetime_complete is not None:
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
    return stored_cost(t.user_attrs, pruned=t.state == TrialState.PRUNED, wall_seconds=wall, unit=unit)


def variant_values(trials: list[FrozenTrial], names: list[str], seeds: int) -> list[tuple[str, list[float]]]:
    """(variant, final validation accuracies) in the stage's order. Slot v * seeds + s is variant v; a run
    that diverged counts with the accuracy it reached, since instability is what some comparisons measure."""
    values: list[list[float]] = [[] for _ in names]
    for t in sorted(trials, key=lambda t: t.number):
        finished = t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if finished and SLOT in t.system_attrs and t.value is not None and math.isfinite(t.value):
            values[t.system_attrs[SLOT] // seeds].append(float(t.value))
    return list(zip(names, values, strict=True))


def summary_to_dict(stages: list[StageSummary]) -> dict[str, Any]:
    """Plain data for an export: the campaign's cost, each stage's, and each comparison's results."""
    everything = total(s.cost for s in stages)
    unit = ("epoch-equivalent = one full-data epoch at width 64" if everything.unit == EPOCH_EQUIVALENTS
            else everything.unit)
    out: dict[str, Any] = {
        "cost": {"unit": unit, **everything.to_dict()},
        "stages": {s.name: {"kind": str(s.kind), "cost": s.cost.to_dict(),
                            "cost_by_state": {k: c.to_dict() for k, c in sorted(s.costs.items())}}
                   for s in stages if s.opened},
    }
    comparisons = {s.name: {"config": s.compare_on, "test": "Welch's t-test against the first variant, alpha 0.05",
                            "variants": [{**r.to_dict(), "overrides": s.variants.get(r.name, {})}
                                         for r in s.comparison]}
                   for s in stages if s.kind == StageKind.COMPARE and s.opened}
    if comparisons:
        out["comparisons"] = comparisons
    return out

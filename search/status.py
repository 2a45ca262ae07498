"""`hpsearch status`: per stage, its space, its trials by state and the best so far."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import TrialState
from rich.console import Group
from rich.table import Table

from hpsearch.search.campaign import DUPLICATE, load_plan, rank, stage_view
from hpsearch.search.cost import Cost, total
from hpsearch.search.space import Space, space_to_data
from hpsearch.search.summary import StageSummary


@dataclass(frozen=True)
class StageStatus:
    name: str
    kind: str
    n_trials: int
    opened: bool
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any]
    space: dict[str, Any]

    @property
    def finished(self) -> int:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0)


def campaign_status(storage: BaseStorage, campaign: str) -> list[StageStatus]:
    plan = load_plan(storage, campaign)
    out = []
    for index, stage in enumerate(plan.stages):
        view = stage_view(storage, plan, index)
        if view is None:
            out.append(StageStatus(stage.name, stage.kind, stage.n_trials, False, {}, None, {}, {}))
            continue
        counts = Counter(t.state.name for t in view.trials if DUPLICATE not in t.system_attrs)
        best = rank(view.trials)
        out.append(StageStatus(stage.name, stage.kind, stage.n_trials, True, dict(counts),
                               best[0].value if best else None, dict(best[0].params) if best else {},
                               space_to_data(view.space)))
    return out


def is_done(stages: list[StageStatus]) -> bool:
    return bool(stages) and all(s.opened and not s.counts.get("WAITING") and not s.counts.get("RUNNING")
                                for s in stages)


def status_table(campaign: str, stages: list[StageStatus]) -> Table:
    table = Table(title=f"campaign {campaign}")
    for col in ("stage", "budget", "done", "pruned", "running", "waiting", "failed", "best val acc", "best params"):
        table.add_column(col, overflow="fold")
    table.caption = "\n".join(f"{s.name}: {_space_summary(s.space)}" for s in stages if s.opened)
    for s in stages:
        c = s.counts
        table.add_row(
            f"{s.name} ({s.kind})" if s.kind != "search" else s.name, str(s.n_trials),
            str(c.get("COMPLETE", 0)), str(c.get("PRUNED", 0)), str(c.get("RUNNING", 0)), str(c.get("WAITING", 0)),
            str(c.get(TrialState.FAIL.name, 0)), f"{s.best_value:.4f}" if s.best_value is not None else "-",
            _short(s.best_params) if s.opened else "not open yet",
        )
    return table


def _short(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _space_summary(space: dict[str, Any] | Space) -> str:
    parts = []
    for name, spec in space.items():
        if spec.get("type") == "categorical":
            parts.append(f"{name}∈{{{','.join(map(str, spec['choices']))}}}")
        else:
            scale = " log" if spec.get("log") else ""
            parts.append(f"{name}∈[{spec['low']:.3g},{spec['high']:.3g}]{scale}")
    return "; ".join(parts)


def status_view(campaign: str, stages: list[StageStatus], summaries: list[StageSummary]) -> Group:
    """The status table, then what each stage cost, then one table per comparison stage."""
    return Group(status_table(campaign, stages), cost_table(summaries), *compare_tables(summaries))


def cost_table(summaries: list[StageSummary]) -> Table:
    """Device-hours and epoch-equivalents per stage and for the campaign, pruned and failed trials included."""
    table = Table(title="cost")
    for col in ("stage", "trials", "epochs", "device-h", "epoch-eq", "of which pruned", "failed", "saved"):
        table.add_column(col, justify="left" if col == "stage" else "right", overflow="fold")
    table.caption = ("epoch-eq: full-data epochs at width 64 (epochs x data_fraction x (width/64)^2); stopped "
                     "trials count the epochs they ran; saved: epochs pruning cut off")

    def row(name: str, costs: dict[str, Cost]) -> tuple[str, ...]:
        c = total(costs.values())
        pruned, failed = costs.get("pruned", Cost()), costs.get("fail", Cost())
        return (name, str(c.trials), str(c.epochs), _amount(c.device_hours), _amount(c.epoch_equivalents),
                _amount(pruned.epoch_equivalents), _amount(failed.epoch_equivalents), _amount(c.saved))

    everything: dict[str, Cost] = {}
    for s in summaries:
        if s.opened:
            table.add_row(*row(s.name, s.costs))
            for state, c in s.costs.items():
                everything[state] = everything.get(state, Cost()) + c
    table.add_section()
    table.add_row(*row("campaign", everything))
    return table


def compare_tables(summaries: list[StageSummary]) -> list[Table]:
    """Per comparison stage: each variant's mean, 95% interval, and its difference to the first (Welch)."""
    tables = []
    for s in summaries:
        if s.kind != "compare" or not s.opened:
            continue
        table = Table(title=f"compare {s.name} (variants of the {s.compare_on} config)")
        for col in ("variant", "n", "mean", "95% interval", "vs first", "p", "signif."):
            table.add_column(col, justify="left" if col == "variant" else "right")
        table.caption = "Welch's t-test against the first variant; significant when p < 0.05"
        for r in s.comparison:
            interval = f"[{r.low:.4f}, {r.high:.4f}]" if math.isfinite(r.low) else "-"
            table.add_row(r.name, str(len(r.values)), f"{r.mean:.4f}" if r.values else "-", interval,
                          f"{r.diff:+.4f}" if r.diff is not None and math.isfinite(r.diff) else "-",
                          f"{r.p_value:.3g}" if r.p_value is not None else "-",
                          {True: "yes", False: "no", None: "-"}[r.significant])
        tables.append(table)
    return tables


def _amount(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}" if x >= 1 else f"{x:.2g}"

"""`hpsearch status`: per stage, its space, its trials by state and the best so far."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import TrialState
from rich.table import Table

from hpsearch.search.campaign import DUPLICATE, load_plan, rank, stage_view
from hpsearch.search.space import Space, space_to_data


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

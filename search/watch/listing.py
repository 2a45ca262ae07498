"""`hpsearch list`: every campaign of a storage on one line: state, current stage, progress, cost, best."""

from __future__ import annotations

from dataclasses import dataclass

from optuna.storages import BaseStorage
from rich.table import Table

from hpsearch.search.run.campaign import Campaign
from hpsearch.search.run.stored_plans import campaign_names
from hpsearch.search.watch.status import StageStatus, is_done, status_of
from hpsearch.search.watch.summary import summary_of


@dataclass(frozen=True)
class CampaignLine:
    name: str
    state: str  # done | running | waiting (trials left, none running: no worker at work)
    stage: str  # the first stage not finished (the last one when all are)
    finished: int  # trials finished of that stage
    budget: int
    device_hours: float
    best: float | None  # the best so far of the latest stage that has one


def campaign_lines(storage: BaseStorage) -> list[CampaignLine]:
    """One line per campaign in the storage, sorted by name."""
    lines = []
    for name in campaign_names(storage):
        stored = Campaign.load(storage, name)
        views = stored.views()  # one read of each stage serves status and cost
        stages = status_of(views, stored.plan.metric)  # the best by the plan's metric and direction
        current = next((s for s in stages if not s.opened or s.finished < s.n_trials), stages[-1])
        state = "done" if is_done(stages) else "running" if _running(stages) else "waiting"
        best = next((s.best_value for s in reversed(stages) if s.best_value is not None), None)
        hours = sum(s.cost.device_hours for s in summary_of(views, stored.plan.cost_unit))
        lines.append(CampaignLine(name, state, current.name, current.finished, current.n_trials, hours, best))
    return lines


def _running(stages: list[StageStatus]) -> bool:
    return any(s.counts.get("RUNNING") for s in stages)


def campaign_table(lines: list[CampaignLine]) -> Table:
    """The lines as a table that fits 80 columns."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("campaign", overflow="fold")
    for column in ("state", "stage", "progress", "device-h", "best"):
        table.add_column(column, no_wrap=column != "stage", overflow="fold")
    for c in lines:
        best = "-" if c.best is None else f"{c.best:.4f}"
        table.add_row(c.name, c.state, c.stage, f"{c.finished}/{c.budget}", f"{c.device_hours:.2f}", best)
    return table

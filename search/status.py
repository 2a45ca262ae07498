"""`hpsearch status`: per stage, its space, its trials by state and the best so far."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import TrialState
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hpsearch.objectives.objective import VAL_ACC, Metric
from hpsearch.search.campaign import DUPLICATE, Campaign, StageView, given_up, rank
from hpsearch.search.cost import EPOCH_EQUIVALENTS, Cost, total
from hpsearch.search.plan import Stage, StageKind
from hpsearch.search.record import found_lr_range
from hpsearch.search.space import Space, space_to_data
from hpsearch.search.stage_logic import config_groups
from hpsearch.search.summary import StageSummary


@dataclass(frozen=True)
class StageStatus:
    name: str
    kind: str
    n_trials: int
    opened: bool
    counts: dict[str, int]
    best_value: float | None  # validation accuracy; for a final stage the best config's mean over its seeds
    best_params: dict[str, Any]
    space: dict[str, Any]
    best_std: float | None = None  # spread of that mean over the seeds (final stage only)
    best_runs: int = 1  # how many runs best_value averages
    lr_range: tuple[float, float] | None = None  # what an LR range test found; such a stage has no accuracy
    given_up: dict[int, dict[str, Any]] = field(default_factory=dict)  # slots out of retries: slot -> trial, reason

    @property
    def finished(self) -> int:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0)


def campaign_status(storage: BaseStorage, campaign: str) -> list[StageStatus]:
    """Every stage of the campaign as stored, in plan order; stages not open yet have no counts."""
    stored = Campaign.load(storage, campaign)
    return status_of(stored.views(), stored.plan.metric)


def status_of(views: list[tuple[Stage, StageView | None]], metric: Metric = VAL_ACC) -> list[StageStatus]:
    """`campaign_status` of stages already looked at (`Campaign.views`); best by the plan's `metric`."""
    out = []
    for stage, view in views:
        if view is None:
            out.append(StageStatus(stage.name, stage.kind, stage.n_trials, False, {}, None, {}, {}))
            continue
        out.append(replace(_stage_status(stage, view, metric), given_up=given_up(view.study.user_attrs)))
    return out


def _stage_status(stage: Stage, view: StageView, metric: Metric) -> StageStatus:
    counts = dict(Counter(t.state.name for t in view.trials if DUPLICATE not in t.system_attrs))
    space = space_to_data(view.space)
    if stage.kind == StageKind.LR_RANGE_TEST:
        # Its trial's value is the top of the range it found, a learning rate: never show it as an accuracy.
        return StageStatus(stage.name, stage.kind, stage.n_trials, True, counts, None, {}, space,
                           lr_range=found_lr_range(view.trials))
    if stage.kind == StageKind.FINAL:
        return _final_status(view, counts, space, metric)
    best = rank(view.trials, metric.minimize)
    return StageStatus(stage.name, stage.kind, stage.n_trials, True, counts,
                       best[0].value if best else None, dict(best[0].params) if best else {}, space)


def _final_status(view: StageView, counts: dict[str, int], space: dict[str, Any], metric: Metric) -> StageStatus:
    """The best config by its mean over seeds, grouped and ordered as `hpsearch export` ranks them."""
    groups = config_groups(view.trials, view.stage.seeds)
    stage = view.stage
    if not groups:
        return StageStatus(stage.name, stage.kind, stage.n_trials, True, counts, None, {}, space)
    sign = 1.0 if metric.minimize else -1.0
    best = min(groups.values(), key=lambda ts: (sign * statistics.fmean(t.value for t in ts), ts[0].number))
    values = [t.value for t in best]
    return StageStatus(stage.name, stage.kind, stage.n_trials, True, counts, statistics.fmean(values),
                       dict(best[0].params), space, statistics.stdev(values) if len(values) > 1 else 0.0,
                       len(values))


def is_done(stages: list[StageStatus]) -> bool:
    return bool(stages) and all(s.opened and not s.counts.get("WAITING") and not s.counts.get("RUNNING")
                                for s in stages)


def status_table(campaign: str, stages: list[StageStatus], metric: Metric = VAL_ACC) -> RenderableType:
    """The counts table, then each stage's best params and space on lines of their own.

    Params stay out of the table: as a column they were folded into fragments on an 80-column terminal.
    """
    table = Table(title=f"campaign {campaign}", show_edge=False, pad_edge=False)  # fits 80 columns
    table.add_column("stage", overflow="fold")  # the one column that gives way on a narrow terminal
    best = "best val acc" if metric == VAL_ACC else f"best {metric.name}"
    for col in ("budget", "done", "pruned", "running", "waiting", "failed", best):
        table.add_column(col, no_wrap=True)
    for s in stages:
        c = s.counts
        table.add_row(
            s.name, str(s.n_trials),
            str(c.get("COMPLETE", 0)), str(c.get("PRUNED", 0)), str(c.get("RUNNING", 0)), str(c.get("WAITING", 0)),
            str(c.get(TrialState.FAIL.name, 0)), _best(s),
        )
    details = Table.grid(padding=(0, 1))
    details.add_column(no_wrap=True)
    details.add_column(overflow="fold")  # wraps between params (at spaces), folds only a param wider than the screen
    for s in stages:
        details.add_row(f"[bold]{s.name}[/bold]", _details(s))
    return Group(table, details)


def _best(s: StageStatus) -> str:
    if s.best_value is None:
        return "-"
    if s.best_std is None:
        return f"{s.best_value:.4f}"
    return f"{s.best_value:.4f} ±{s.best_std:.4f}"


def _details(s: StageStatus) -> str:
    if not s.opened:
        return "not open yet"
    lines = []
    if s.kind == StageKind.LR_RANGE_TEST:
        found = f"{s.lr_range[0]:.3g} to {s.lr_range[1]:.3g}" if s.lr_range else "not yet"
        lines.append(f"LR range test: found {found}")
    elif s.best_params:
        mean = f" (mean ± std of {s.best_runs} seeds)" if s.best_std is not None else ""
        lines.append(f"best{mean}: {_short(s.best_params)}")
    if s.given_up:
        lines.append(f"[red]{under_budget_line(s)}[/red]")
    lines.append(f"space: {_space_summary(s.space)}")
    return "\n".join(lines)


def under_budget_line(s: StageStatus) -> str:
    """`N of M slots failed on every retry: ...`: why a stage ended (or will end) under its budget."""
    slot = min(s.given_up)
    last = s.given_up[slot]
    return (f"under budget: {len(s.given_up)} of {s.n_trials} slot(s) failed on every retry (slot {slot}, "
            f"trial {last.get('trial')}: {last.get('reason')})")


def under_budget(stages: list[StageStatus]) -> list[str]:
    """One line per stage with slots out of retries, naming the stage."""
    return [f"stage {s.name} ended {under_budget_line(s)}" for s in stages if s.given_up]


def _short(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _space_summary(space: dict[str, Any] | Space) -> str:
    parts = []
    for name, spec in space.items():
        if spec.get("type") == "categorical":
            parts.append(f"{name}∈{{{','.join(map(str, spec['choices']))}}}")
        else:
            scale = "(log)" if spec.get("log") else ""  # no space inside a param: lines wrap only between params
            parts.append(f"{name}{scale}∈[{spec['low']:.3g},{spec['high']:.3g}]")
    return "; ".join(parts)


def status_view(campaign: str, stages: list[StageStatus], summaries: list[StageSummary],
                metric: Metric = VAL_ACC, unit: str = EPOCH_EQUIVALENTS, failed: str | None = None) -> Group:
    """The status table, then what each stage cost, then one table per comparison stage; a failed campaign's
    reason first."""
    head = [Text(f"FAILED: {failed}", style="bold red")] if failed else []
    return Group(*head, status_table(campaign, stages, metric), cost_table(summaries, unit),
                 *compare_tables(summaries))


def cost_table(summaries: list[StageSummary], unit: str = EPOCH_EQUIVALENTS) -> Table:
    """Device-hours and the objective's work (epoch-equivalents for the built-in objectives) per stage and for
    the campaign, pruned and failed trials included."""
    table = Table(title="cost")
    builtin = unit == EPOCH_EQUIVALENTS
    # A user's objective: its steps and its own unit, and no "saved" (its planned length is not known).
    columns = (("stage", "trials", "epochs", "device-h", "epoch-eq", "of which pruned", "failed", "saved")
               if builtin else ("stage", "trials", "steps", "device-h", unit, "of which pruned", "failed"))
    if unit == "steps":
        columns = ("stage", "trials", "steps", "device-h", "of which pruned", "failed")
    for col in columns:
        table.add_column(col, justify="left" if col == "stage" else "right", overflow="fold")
    table.caption = ("epoch-eq: full-data epochs at width 64 (epochs x data_fraction x (width/64)^2); stopped "
                     "trials count the epochs they ran; saved: epochs pruning cut off" if builtin else
                     f"{unit}: the objective's own cost; stopped trials count the steps they reported")

    def row(name: str, costs: dict[str, Cost]) -> tuple[str, ...]:
        c = total(costs.values())
        pruned, failed = costs.get("pruned", Cost()), costs.get("fail", Cost())
        if unit == "steps":
            return (name, str(c.trials), str(c.epochs), _amount(c.device_hours), str(pruned.epochs),
                    str(failed.epochs))
        values = (name, str(c.trials), str(c.epochs), _amount(c.device_hours), _amount(c.work),
                  _amount(pruned.work), _amount(failed.work), _amount(c.saved))
        return values if builtin else values[:-1]

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
        if s.kind != StageKind.COMPARE or not s.opened:
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

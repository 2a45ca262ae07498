"""`hpsearch status`: per stage, its space, its trials by state and the best so far."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hpsearch.objectives.objective import VAL_ACC, Metric
from hpsearch.search.plan.plan import Stage, StageKind
from hpsearch.search.plan.space import Space, space_to_data
from hpsearch.search.plan.stage_logic import config_groups
from hpsearch.search.plan.stages import FinalStage
from hpsearch.search.record import found_lr_range
from hpsearch.search.run.campaign import DUPLICATE, Campaign, StageView, rank
from hpsearch.search.run.cost import EPOCH_EQUIVALENTS, Cost, total
from hpsearch.search.run.retries import given_up
from hpsearch.search.watch.summary import StageSummary, cost_columns


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
    counts = _counts(view.trials)
    space = space_to_data(view.space)
    if stage.kind == StageKind.LR_RANGE_TEST:
        # Its trial's value is the top of the range it found, a learning rate: never show it as an accuracy.
        return StageStatus(stage.name, stage.kind, stage.n_trials, True, counts, None, {}, space,
                           lr_range=found_lr_range(view.trials))
    if isinstance(stage, FinalStage):
        return _final_status(stage, view, counts, space, metric)
    best = rank(view.trials, metric.minimize)
    return StageStatus(stage.name, stage.kind, stage.n_trials, True, counts,
                       best[0].value if best else None, dict(best[0].params) if best else {}, space)


def _counts(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state; a failed trial whose slot was queued again (handed back at a stop, or retried after its
    worker died) counts as RETRIED, not FAIL: FAIL is what no retry will redo."""
    live = [t for t in trials if DUPLICATE not in t.system_attrs]
    retried = {n for t in live for n in t.system_attrs.get("retry_history", [])}
    return dict(Counter("RETRIED" if t.state == TrialState.FAIL and t.number in retried else t.state.name
                        for t in live))


def _final_status(stage: FinalStage, view: StageView, counts: dict[str, int], space: dict[str, Any],
                  metric: Metric) -> StageStatus:
    """The best config by its mean over seeds, grouped and ordered as `hpsearch export` ranks them."""
    groups = config_groups(view.trials, stage.seeds)
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
    # No vertical rules and short headers: a 20-character stage name and every column fit 80 columns unbroken.
    table = Table(title=f"campaign {campaign}", box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("stage", no_wrap=True)
    best = "best val acc" if metric == VAL_ACC else f"best {metric.name}"[:14]
    for col in ("budget", "done", "pruned", "run", "wait", "failed", best):
        table.add_column(col, no_wrap=True)
    for s in stages:
        c = s.counts
        counts = [c.get(k, 0) for k in ("COMPLETE", "PRUNED", "RUNNING", "WAITING", TrialState.FAIL.name)]
        table.add_row(s.name, str(s.n_trials), *(map(str, counts) if s.opened else ["-"] * 5), _best(s))
    details = Table.grid(padding=(0, 1))
    details.add_column(no_wrap=True)
    details.add_column(overflow="fold")  # wraps between params (at spaces), folds only a param wider than the screen
    for s in stages:
        shown = _details(s, current=s is _current(stages))
        if shown:
            details.add_row(f"[bold]{s.name}[/bold]", shown)
    return Group(table, details)


def _current(stages: list[StageStatus]) -> StageStatus | None:
    """The stage the workers are on: the first open one with trials left."""
    return next((s for s in stages if s.opened and s.finished < s.n_trials), None)


def _best(s: StageStatus) -> str:
    if s.best_value is None:
        return "-"
    if s.best_std is None:
        return f"{s.best_value:.4f}"
    return f"{s.best_value:.4f} ±{s.best_std:.4f}"


def _details(s: StageStatus, current: bool) -> str:
    """Its best config, and its space while it is the stage at work (the table says which are not open)."""
    if not s.opened:
        return ""
    lines = []
    if s.kind == StageKind.LR_RANGE_TEST:
        found = f"{s.lr_range[0]:.3g} to {s.lr_range[1]:.3g}" if s.lr_range else "not yet"
        lines.append(f"LR range test: found {found}")
    elif s.best_params:
        mean = f" (mean ± std of {s.best_runs} seeds)" if s.best_std is not None else ""
        lines.append(f"best{mean}: {_short(s.best_params)}")
    if s.given_up:
        lines.append(f"[red]{under_budget_line(s)}[/red]")
    if current and s.space:  # a compare stage searches no space
        lines.append(f"space: {_space_summary(s.space)}")
    return "\n".join(lines)


def under_budget_line(s: StageStatus) -> str:
    """`under budget: N of M slots failed on every retry (...)`: why a stage ended (or ends) under its budget."""
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
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))
    builtin = unit == EPOCH_EQUIVALENTS
    keep = cost_columns(unit)
    columns = ("cost", "trials", "epochs" if builtin else "steps", "device-h", "epoch-eq" if builtin else unit[:12],
               "pruned", "failed", "saved")
    for i in keep:
        table.add_column(columns[i], justify="left" if i == 0 else "right", no_wrap=True)
    # pruned, failed and saved are in the work's unit too: of all, those of pruned and failed trials, and what
    # pruning cut off (a stopped trial counts the epochs it ran).
    table.caption = ("epoch-eq: epochs x data_fraction x (width/64)^2" if builtin
                     else "pruned, failed: the steps those trials reported" if unit == "steps"
                     else f"{unit}: the objective's own cost")

    def row(name: str, costs: dict[str, Cost]) -> tuple[str, ...]:
        c = total(costs.values())
        pruned, failed = costs.get("pruned", Cost()), costs.get("fail", Cost())
        values = (name, str(c.trials), str(c.epochs), _amount(c.device_hours), _amount(c.work),
                  _amount(pruned.work), _amount(failed.work), _amount(c.saved))
        return tuple(values[i] for i in keep)

    everything: dict[str, Cost] = {}
    for s in summaries:
        if s.opened:
            table.add_row(*row(s.name, s.costs))
            for state, c in s.costs.items():
                everything[state] = everything.get(state, Cost()) + c
    table.add_row(*row("campaign", everything), style="bold")
    return table


def compare_tables(summaries: list[StageSummary]) -> list[RenderableType]:
    """One table of every comparison stage: each variant's mean, 95% interval, and its difference to its stage's
    first variant (Welch); one row per variant, so several comparisons still fit one screen."""
    stages = [s for s in summaries if s.kind == StageKind.COMPARE and s.opened]
    if not stages:
        return []
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("compared", "variant", "n", "mean", "95% interval", "vs first", "p"):
        table.add_column(col, justify="left" if col in ("compared", "variant") else "right", no_wrap=True)
    for s in stages:
        for i, r in enumerate(s.comparison):
            # The stage's name on its first row, the config its variants change on the second.
            label = s.name if i == 0 else f"  on {s.compare_on}" if i == 1 else ""
            interval = f"[{r.low:.3f}, {r.high:.3f}]" if math.isfinite(r.low) else "-"
            p = "-" if r.p_value is None else f"{r.p_value:.2g}{'*' if r.significant else ''}"
            table.add_row(label, r.name, str(len(r.values)), f"{r.mean:.4f}" if r.values else "-", interval,
                          f"{r.diff:+.4f}" if r.diff is not None and math.isfinite(r.diff) else "-", p)
    # Below the table rather than its caption, which would wrap to the width of a narrow table.
    return [table, Text("vs first, p: against the stage's first variant (Welch's t-test); * p < 0.05")]


def _amount(x: float) -> str:
    if x == 0:
        return "0"
    if x >= 100 or float(x).is_integer():  # whole steps or epochs print as counts
        return f"{x:,.0f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.2g}"

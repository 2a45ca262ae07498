"""`hpsearch report`: one self-contained HTML file (images inline) about a campaign, readable offline."""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import math
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage

from hpsearch.objectives.objective import Metric
from hpsearch.search.plan.agreement import Agreement
from hpsearch.search.plan.narrow import what_changed
from hpsearch.search.plan.plan import StageKind
from hpsearch.search.plan.space import space_from_json
from hpsearch.search.plan.stage_logic import AGREEMENT, ESCALATED, config_groups
from hpsearch.search.record import found_lr_range
from hpsearch.search.run.campaign import DUPLICATE, Campaign, rank
from hpsearch.search.run.cost import EPOCH_EQUIVALENTS, Cost
from hpsearch.search.watch import report_plots as plots
from hpsearch.search.watch.export import SEED_BLIND, seed_blind
from hpsearch.search.watch.summary import StageSummary, cost_columns, stage_summary

log = logging.getLogger(__name__)

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
code,pre{background:#f4f4f4;padding:.1em .3em}img{max-width:100%;display:block;margin:.5em 0}
section{border-top:2px solid #ddd;margin-top:2em}.note{color:#777;font-style:italic}"""


def write_report(storage: BaseStorage, campaign: str, out: Path, command: str, runs: Path | None = None) -> Path:
    """Write `out/<campaign>-report.html`; returns its path."""
    page = render_report(storage, campaign, command, runs)  # a missing campaign fails before any file exists
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{campaign}-report.html"
    path.write_text(page)
    return path


def render_report(storage: BaseStorage, campaign: str, command: str, runs: Path | None = None) -> str:
    stored = Campaign.load(storage, campaign)
    plan = stored.plan
    try:
        hpsearch_version = version("hpsearch")
    except PackageNotFoundError:
        hpsearch_version = "unknown"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(campaign)}: hpsearch report</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Campaign {_e(campaign)}</h1>",
             f"<p>Produced by <code>{_e(command)}</code> on {now} (hpsearch {_e(hpsearch_version)}). "
             f"Objective <code>{_e(plan.objective)}</code>, {len(plan.stages)} stage(s): "
             f"{_e(' → '.join(s.name for s in plan.stages))}.</p>"]
    intro, summaries = len(parts), []
    for stage, view in stored.views():
        parts.append(f"<section id='stage-{_e(stage.name)}'><h2>Stage {_e(stage.name)} ({_e(stage.kind)})</h2>")
        if view is None:
            summaries.append(StageSummary(stage.name, stage.kind, False))
            parts.append("<p class='note'>not opened yet</p></section>")
            continue
        summaries.append(stage_summary(view, plan.cost_unit))
        parts.append(_stage_section(view, plan.metric))
        if stage.kind == StageKind.COMPARE:
            parts.append(_compare_section(summaries[-1]))
        parts.append("</section>")
    # right after the introduction: what the campaign cost
    parts.insert(intro, _cost_section(summaries, plan.cost_unit))
    tests = _test_results(runs) if runs is not None else []
    if tests:
        parts.append("<section><h2>Test accuracy of exported runs</h2>")
        parts.append(_table(("run", "validation accuracy", "test accuracy", "test balanced accuracy"), tests))
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _stage_section(view: Any, metric: Metric) -> str:
    trials = [t for t in view.trials if DUPLICATE not in t.system_attrs]
    attrs = view.study.user_attrs
    parent = space_from_json(attrs["parent_space"]) if attrs.get("parent_space") else None
    counts = Counter(t.state.name.lower() for t in trials)
    # An LR range test's value is the top of the range it found, a learning rate: not ranked as an accuracy.
    ranked = rank(trials, metric.minimize) if view.stage.kind != StageKind.LR_RANGE_TEST else []
    out = [f"<p>{view.stage.n_trials} trial(s) budgeted; "
           + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
           + (f". Best {_e(metric.label)} <b>{ranked[0].value:.4g}</b> (trial {ranked[0].number})" if ranked else "")
           + ".</p>"]
    if ranked:
        out.append(_table(("trial", "value", *ranked[0].params),
                          [(t.number, f"{t.value:.4f}", *(_fmt(t.params.get(k)) for k in ranked[0].params))
                           for t in ranked[:5]]))
    lr_range = found_lr_range(trials)
    if lr_range:
        out.append(f"<p>LR range test: useful learning rates {lr_range[0]:.3g} to {lr_range[1]:.3g}.</p>")
    out.append(_figure("Search space: parent's intervals against this stage's", plots.space_intervals(parent,
                                                                                                     view.space)))
    if parent is not None and view.stage.kind == StageKind.SEARCH:
        changes = [f"{p.name} {what_changed(parent[p.name].distribution if p.name in parent else None, p.distribution)}"
                   for p in view.space]
        out.append("<p>Narrowing from the previous stage: " + html.escape("; ".join(changes)) + ".</p>")
    if attrs.get(ESCALATED):
        out.append("<p>Escalated: the ranking before it did not hold, so it ran its escalated form (its plan's "
                   "<code>escalate</code>) over the previous stage's space.</p>")
    if isinstance(attrs.get(AGREEMENT), dict):
        out.append("<p>The previous stage's ranking, middle against end of its runs: "
                   + html.escape(Agreement.from_data(attrs[AGREEMENT]).describe()) + ".</p>")
    categorical = [p for p in view.space if hasattr(p.distribution, "choices")]
    if categorical:
        out.append(_table(("categorical param", "choices"),
                          [(p.name, ", ".join(map(str, p.distribution.choices))) for p in categorical]))
    if view.stage.kind in (StageKind.LR_RANGE_TEST, StageKind.COMPARE):  # nothing searched: no history, importances
        return "\n".join(out)
    out.append(_figure("Optimization history", plots.optimization_history(view.study)))
    figure, note = plots.param_importances(view.study)
    out.append(_figure("Parameter importances", figure, note))
    out.append(_figure("Learning rate against momentum", plots.lr_momentum(trials)))
    out.append(_figure("Best trials: train and validation curves", plots.best_curves(trials)))
    if view.stage.kind == StageKind.FINAL:
        groups = _seed_groups(view, trials)
        out.append(_figure("Spread over seeds", plots.seed_spread(groups),
                           SEED_BLIND + "." if seed_blind(groups.values()) else ""))
    return "\n".join(out)


def _cost_section(summaries: list[StageSummary], unit: str = EPOCH_EQUIVALENTS) -> str:
    """What each stage and the campaign consumed, pruned and failed trials included."""
    rows, everything = [], Cost(unit=unit)
    for s in summaries:
        if s.opened:
            c, pruned, failed = s.cost, s.costs.get("pruned", Cost()), s.costs.get("fail", Cost())
            everything = everything + c
            rows.append((s.name, c.trials, c.epochs, f"{c.device_hours:.4g}", f"{c.epoch_equivalents:.4g}",
                         f"{pruned.epoch_equivalents:.4g}", f"{failed.epoch_equivalents:.4g}", f"{c.saved:.4g}"))
    rows.append(("campaign", everything.trials, everything.epochs, f"{everything.device_hours:.4g}",
                 f"{everything.epoch_equivalents:.4g}", "", "", f"{everything.saved:.4g}"))
    builtin = unit == EPOCH_EQUIVALENTS
    header = ("stage", "trials", "epochs" if builtin else "steps", "device-hours", unit, "of which pruned",
              "of which failed", "saved by pruning")
    keep = cost_columns(unit)
    if builtin:
        what = ("an epoch-equivalent is one epoch over the full training split at width 64 (epochs run x data "
                "fraction x (width / 64)<sup>2</sup>). Pruned, diverged and failed trials count the epochs they ran; "
                "<i>saved</i> is what pruning cut off.")
    else:
        what = (f"the work column is the objective's own cost, in {_e(unit)}; pruned and failed trials count the "
                "steps they reported." if unit != "steps" else
                "the objective declares no cost of its own, so its work is the steps it reported; pruned and "
                "failed trials count theirs.")
    return ("<section id='cost'><h2>Cost</h2><p>Device-hours are the wall time trials held their device; "
            + what + "</p>"
            + _table(tuple(header[i] for i in keep), [tuple(r[i] for i in keep) for r in rows])
            + _figure(f"{unit.capitalize()} per stage", plots.stage_costs(
                {s.name: (s.cost.work, s.cost.saved) for s in summaries if s.opened}, unit))
            + "</section>")


def _compare_section(summary: StageSummary) -> str:
    """Each variant's mean over seeds with its 95% interval, and Welch's test against the first variant."""
    rows = []
    for r in summary.comparison:
        rows.append((r.name, _fmt(summary.variants.get(r.name, {})) or "(as is)", len(r.values),
                     f"{r.mean:.4f}" if r.values else "—", _interval(r.low, r.high),
                     f"{r.diff:+.4f} {_interval(r.diff_low, r.diff_high)}" if r.diff is not None else "reference",
                     f"{r.p_value:.3g}" if r.p_value is not None else "—",
                     {True: "yes", False: "no", None: "—"}[r.significant]))
    return (f"<h3>Comparison on the {_e(summary.compare_on)} config</h3><p>Each variant re-trains the "
            f"{_e(summary.compare_on)} config with its changes, over the same seeds. Intervals are 95% t-intervals "
            "of the mean; the difference to the first variant is tested with Welch's t-test (scipy.stats, "
            "unequal variances), significant when p &lt; 0.05.</p>"
            + _table(("variant", "changes", "n", "mean val acc", "95% interval", "difference to first",
                      "p", "significant"), rows)
            + _figure("Variants: mean and 95% interval", plots.variant_intervals(summary.comparison)))


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{low:.4f}, {high:.4f}]"


def _seed_groups(view: Any, trials: list) -> dict[str, list[float]]:
    """Final-stage values per config: slots seeds*i .. seeds*i + seeds - 1 are one config."""
    return {f"config {config + 1}\n" + "\n".join(f"{k}={_fmt(v)}" for k, v in ts[0].params.items()):
            [t.value for t in ts] for config, ts in config_groups(trials, view.stage.seeds).items()}


def _test_results(runs: Path) -> list[tuple[str, str, str, str]]:
    """Rows from `hpsearch train --test` outputs (metrics.json) under `runs`; runs without a test are skipped."""
    rows = []
    for path in sorted(runs.rglob("metrics.json")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            log.warning("skipping %s: %s", path, e)
            continue
        if not isinstance(metrics, dict) or "test_acc" not in metrics:
            continue
        rows.append((str(path.parent.relative_to(runs)) or ".", _summary(metrics.get("final_val_acc")),
                     _summary(metrics.get("test_acc")), _summary(metrics.get("test_bacc"))))
    return rows


def _summary(s: Any) -> str:
    if not isinstance(s, dict) or "mean" not in s:
        return "—"
    return f"{s['mean']:.4f} ± {s.get('std', 0.0):.4f} (n={len(s.get('values', []))})"


def _figure(title: str, data: bytes | None, note: str = "") -> str:
    """The figure inline, with `note` under it; without a figure, `note` says why."""
    if data is None:
        return f"<h3>{_e(title)}</h3><p class='note'>{_e(note or 'nothing to draw yet')}</p>"
    payload = base64.b64encode(data).decode("ascii")
    caveat = f"<p class='note'>{_e(note)}</p>" if note else ""
    return f"<h3>{_e(title)}</h3><img alt='{_e(title)}' src='data:image/png;base64,{payload}'>{caveat}"


def _table(header: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)

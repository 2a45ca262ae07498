"""The report's figures, each returned as PNG bytes (None when there is nothing to draw)."""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt
import optuna
from matplotlib.figure import Figure
from optuna.distributions import CategoricalDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.plan.space import Space
from hpsearch.search.record import TrialRecord

log = logging.getLogger(__name__)

MIN_TRIALS_FOR_IMPORTANCE = 4  # importance on fewer completed trials says nothing


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def space_intervals(parent: Space | None, space: Space) -> bytes | None:
    """One row per numeric param: the parent's interval above this stage's, on a log axis where the param is log."""
    names = [p.name for p in space if not isinstance(p.distribution, CategoricalDistribution)]
    if not names:
        return None
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 0.9 + 0.8 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        d = space[name].distribution
        rows = [("this stage", d, "C0")]
        if parent is not None and name in parent:
            rows.insert(0, ("parent", parent[name].distribution, "C7"))
        for y, (_label, dist, colour) in enumerate(rows):
            ax.plot([dist.low, dist.high], [y, y], color=colour, lw=6, solid_capstyle="butt")
            ax.annotate(f"{dist.low:.3g} to {dist.high:.3g}", (dist.high, y), xytext=(4, -3),
                        textcoords="offset points", fontsize=8)
        ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        if d.log:
            ax.set_xscale("log")
        ax.set_title(name + (" (log)" if d.log else ""), fontsize=9, loc="left")
        ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return png(fig)


def optimization_history(study: optuna.Study) -> bytes | None:
    if not _complete(study.get_trials(deepcopy=False)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_optimization_history(study, target_name="validation accuracy")
    fig = ax.figure
    fig.set_size_inches(8, 4)
    fig.tight_layout()
    return png(fig)


def param_importances(study: optuna.Study) -> tuple[bytes | None, str]:
    """The importances figure and a caveat to print under it (or ""), or None and why not."""
    done = _complete(study.get_trials(deepcopy=False))
    varied = {k for t in done for k in t.params if len({repr(u.params.get(k)) for u in done}) > 1}
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE or not varied:
        return None, f"too few completed trials ({len(done)}) or no varied parameter for importances"
    try:
        # The evaluator warns on stderr about thin data; the reader of the report should see that, not the user
        # at the terminal, so each warning becomes a sentence under the figure.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as e:  # a degenerate set of trials (e.g. one value everywhere)
        return None, f"importances could not be computed: {e}"
    caveat = " ".join(dict.fromkeys(importance_caveat(str(w.message)) for w in caught
                                    if issubclass(w.category, UserWarning)))
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.4 * len(importances)))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="C0")
    ax.set(xlabel="importance (optuna.importance default evaluator)", title="parameter importances")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return png(fig), caveat


def importance_caveat(message: str) -> str:
    """One of the importance evaluator's warnings as a sentence for the report's reader."""
    thin = re.match(r"Some regimes for parameter `(.+?)` have less than (\d+) trials", message)
    if thin:
        return (f"{thin[1]} is a conditional parameter and one of its cases (set or unset) has fewer than "
                f"{thin[2]} completed trials, so its importance is a rough estimate.")
    if "Target and region quantiles select the same set of trials" in message:
        return "Too few completed trials to tell the parameters apart: every importance is shown as equal."
    return f"Optuna's importance evaluator notes: {message.strip()}"


def lr_momentum(trials: Sequence[FrozenTrial]) -> bytes | None:
    """LR (log) against momentum, completed trials coloured by value, pruned ones as grey crosses."""
    both = [t for t in trials if "lr" in t.params and "momentum" in t.params]
    done = [t for t in both if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in both if t.state == TrialState.PRUNED]
    if not done and not pruned:
        return None
    fig, ax = plt.subplots(figsize=(7, 5))
    if pruned:
        ax.scatter([t.params["lr"] for t in pruned], [t.params["momentum"] for t in pruned], marker="x",
                   color="0.6", label="pruned")
    if done:
        points = ax.scatter([t.params["lr"] for t in done], [t.params["momentum"] for t in done],
                            c=[t.value for t in done], cmap="viridis", edgecolors="k", s=50, label="completed")
        fig.colorbar(points, ax=ax, label="validation accuracy")
    ax.set(xscale="log", xlabel="learning rate", ylabel="momentum", title="learning rate against momentum")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def best_curves(trials: Sequence[FrozenTrial], k: int = 3) -> bytes | None:
    """Train (dashed) and validation (solid) loss and accuracy of the k best completed trials, together."""
    recorded = [(t, TrialRecord.of(t).history) for t in _complete(trials)]
    best = sorted(((t, h) for t, h in recorded if h), key=lambda th: (-th[0].value, th[0].number))
    if not best:
        return None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for i, (t, history) in enumerate(best[:k]):
        epochs = [r.epoch for r in history]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(epochs, [getattr(r, f"train_{key}") for r in history], "--", color=f"C{i}")
            ax.plot(epochs, [getattr(r, f"val_{key}") for r in history], "-o", color=f"C{i}",
                    label=f"trial {t.number} ({t.value:.3f})")
    # Log scale: one exploding run (a too-large LR) would otherwise flatten every other curve.
    ax_loss.set(xlabel="epoch", ylabel="loss (log)", title="loss (dashed: train, solid: validation)", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def seed_spread(groups: dict[str, list[float]]) -> bytes | None:
    """Box and strip plot of the final stage's values per config over its seeds."""
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(groups)), 4))
    labels = list(groups)
    ax.boxplot([groups[k] for k in labels], widths=0.5)
    for i, k in enumerate(labels, start=1):
        n = len(groups[k])
        xs = [i + 0.12 * (j - (n - 1) / 2) / max(1, n - 1) for j in range(n)]
        ax.scatter(xs, groups[k], color="C1", zorder=3, s=20)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.set(ylabel="validation accuracy", title="final stage: spread over seeds")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return png(fig)


def _complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]


def stage_costs(costs: dict[str, tuple[float, float]], unit: str = "epoch-equivalents") -> bytes | None:
    """Bars per stage: the work run (in `unit`), and stacked on them in grey what pruning saved."""
    if not costs or not any(run + saved for run, saved in costs.values()):
        return None
    names = list(costs)
    run = [costs[n][0] for n in names]
    saved = [costs[n][1] for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.5))
    ax.bar(names, run, color="C0", label="run")
    ax.bar(names, saved, bottom=run, color="0.8", label="saved by pruning")
    label = "epoch-equivalents (full data, width 64)" if unit == "epoch-equivalents" else unit
    ax.set(ylabel=label, title="cost per stage")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def variant_intervals(results: Sequence[Any]) -> bytes | None:
    """Each variant's seeds as dots, its mean with its 95% interval as an error bar; the first in grey."""
    shown = [r for r in results if r.values]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(shown)), 3.8))
    for i, r in enumerate(shown):
        colour = "0.4" if i == 0 else "C0"
        if math.isfinite(r.low):
            ax.errorbar([i], [r.mean], yerr=[[r.mean - r.low], [r.high - r.mean]], fmt="o", color=colour,
                        capsize=6, lw=2)
        else:
            ax.plot([i], [r.mean], "o", color=colour)
        ax.scatter([i + 0.15] * len(r.values), r.values, color="C1", s=14, zorder=3)
    ax.set_xticks(range(len(shown)), [r.name + ("\n(reference)" if i == 0 else "") for i, r in enumerate(shown)],
                  fontsize=8)
    ax.set(ylabel="validation accuracy", title="mean and 95% interval (dots: seeds)")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return png(fig)

"""PNG figures: train and validation curves on shared axes, and the LR range test."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from hpsearch.objectives.result import EpochRecord

if TYPE_CHECKING:
    from hpsearch.objectives.lr_find import RangeTest


def plot_curves(histories: Sequence[Sequence[EpochRecord]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy, train and validation on the same axes, one line pair per seed; a history of a user's
    objective that records neither gets its own metrics per step instead."""
    if not any(r.val_acc is not None or r.train_loss is not None for h in histories for r in h):
        return _plot_metrics(histories, Path(path), title)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for i, history in enumerate(histories):
        epochs = [r.epoch for r in history]
        suffix = f" (seed {i})" if len(histories) > 1 else ""
        alpha = 1.0 if len(histories) == 1 else 0.7
        ax_loss.plot(epochs, [r.train_loss for r in history], "-o", color="C0", alpha=alpha, label="train" + suffix)
        ax_loss.plot(epochs, [r.val_loss for r in history], "-s", color="C1", alpha=alpha, label="validation" + suffix)
        ax_acc.plot(epochs, [r.train_acc for r in history], "-o", color="C0", alpha=alpha, label="train" + suffix)
        ax_acc.plot(epochs, [r.val_acc for r in history], "-s", color="C1", alpha=alpha, label="validation" + suffix)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_metrics(histories: Sequence[Sequence[EpochRecord]], path: Path, title: str) -> Path:
    """Each named metric against the reported step, one line per seed."""
    names = sorted({name for h in histories for r in h for name in r.metrics})
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, history in enumerate(histories):
        suffix = f" (seed {i})" if len(histories) > 1 else ""
        for j, name in enumerate(names):
            points = [(r.epoch, r.metrics[name]) for r in history if name in r.metrics]
            ax.plot([p[0] for p in points], [p[1] for p in points], "-o", color=f"C{j}", label=name + suffix)
    ax.set(xlabel="step", ylabel="reported value", title="reported values")
    ax.grid(alpha=0.3)
    if names:
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_range_test(test: RangeTest, path: str | Path) -> Path:
    """Smoothed loss against LR on a log axis, with the suggested [base_lr, max_lr] marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(test.lrs, test.losses, color="C0", alpha=0.25, label="loss")
    ax.plot(test.lrs, test.smoothed, color="C0", label="smoothed loss")
    ax.axvspan(test.base_lr, test.max_lr, color="C2", alpha=0.15, label="suggested LR range")
    ax.axvline(test.base_lr, color="C2", ls="--")
    ax.axvline(test.max_lr, color="C3", ls="--")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss",
           title=f"LR range test: base_lr {test.base_lr:.2g}, max_lr {test.max_lr:.2g}")
    finite = [v for v in test.smoothed if v == v and v != float("inf")]
    if finite:
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 3 * min(finite)) * 1.1)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

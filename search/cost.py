"""What trials cost, and the sums that stages and campaigns report; pure arithmetic, no storage.

The unit of work is the epoch-equivalent: one epoch over the full training split at width 64 (the standard
ResNet-18). A trial's work is `epochs it ran x data_fraction x (width / 64) ** 2`: the data fraction scales
the images per epoch and the width scales every convolution's FLOPs quadratically. A trial stopped early
(pruned, diverged, failed) counts the epochs it ran and no more; device seconds are the wall time it held
its device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REFERENCE_WIDTH = 64  # channels of the standard ResNet-18: one epoch-equivalent is one epoch at this width


def epoch_equivalents(epochs: float, data_fraction: float, width: int) -> float:
    """Full-data, width-64 epochs that `epochs` epochs at this data fraction and width amount to."""
    return epochs * data_fraction * (width / REFERENCE_WIDTH) ** 2


@dataclass(frozen=True)
class Cost:
    """What some trials consumed; `+` adds two, `total` adds many."""

    trials: int = 0
    epochs: int = 0  # epochs actually run, at whatever fidelity
    device_seconds: float = 0.0
    epoch_equivalents: float = 0.0
    saved: float = 0.0  # epoch-equivalents pruned trials did not run: their planned epochs minus those they ran

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.trials + other.trials, self.epochs + other.epochs,
                    self.device_seconds + other.device_seconds, self.epoch_equivalents + other.epoch_equivalents,
                    self.saved + other.saved)

    @property
    def device_hours(self) -> float:
        return self.device_seconds / 3600

    def to_dict(self) -> dict[str, Any]:
        """Plain, rounded numbers for exports and reports."""
        return {"trials": self.trials, "epochs": self.epochs, "device_seconds": round(self.device_seconds, 3),
                "device_hours": round(self.device_hours, 6),
                "epoch_equivalents": round(self.epoch_equivalents, 6),
                "saved_by_pruning": round(self.saved, 6)}


def total(costs: Iterable[Cost]) -> Cost:
    """The sum of some costs (an empty sum is zero)."""
    out = Cost()
    for c in costs:
        out = out + c
    return out


def trial_cost(config: Mapping[str, Any], epochs_run: int, device_seconds: float, *, pruned: bool = False) -> Cost:
    """One trial of this TrainConfig (as a dict) that ran `epochs_run` epochs; a pruned one saved the rest."""
    fraction, width = float(config.get("data_fraction", 1.0)), int(config.get("width", REFERENCE_WIDTH))
    left = max(0, int(config.get("epochs", epochs_run)) - epochs_run) if pruned else 0
    return Cost(1, epochs_run, device_seconds, epoch_equivalents(epochs_run, fraction, width),
                epoch_equivalents(left, fraction, width))


def recorded(cost: Cost) -> dict[str, Any]:
    """The `cost` attribute a trial records at its end: what it measured, not what can be derived."""
    return {"device_seconds": round(cost.device_seconds, 3), "epochs": cost.epochs,
            "epoch_equivalents": round(cost.epoch_equivalents, 6)}


def stored_cost(user_attrs: Mapping[str, Any], *, pruned: bool, wall_seconds: float | None) -> Cost:
    """A stored trial's cost: its recorded `cost`, else (its worker died, or it never trained) what its config,
    the history it wrote so far and its wall time from claim to end say."""
    config = user_attrs.get("config")
    if not isinstance(config, Mapping):  # failed before its config was built: nothing trained
        return Cost(1, 0, wall_seconds or 0.0)
    rec = user_attrs.get("cost")
    if isinstance(rec, Mapping):
        return trial_cost(config, int(rec["epochs"]), float(rec["device_seconds"]), pruned=pruned)
    history = user_attrs.get("history") or []
    seconds = sum(float(r.get("seconds", 0.0)) for r in history) if history else wall_seconds or 0.0
    return trial_cost(config, len(history), seconds, pruned=pruned)

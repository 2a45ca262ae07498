"""What trials cost, and the sums that stages and campaigns report; pure arithmetic, no storage.

Every trial counts the device seconds it held its device and its work in the objective's unit. For the built-in
objectives the unit is the epoch-equivalent: one epoch over the full training split at width 64 (the standard
ResNet-18). A trial's work is `epochs it ran x data_fraction x (width / 64) ** 2`: the data fraction scales
the images per epoch and the width scales every convolution's FLOPs quadratically. A user's objective gives its
own cost function of its params and the steps it reported, or counts the steps it reported. A trial stopped
early (pruned, diverged, failed) counts the epochs (steps) it ran and no more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EPOCH_EQUIVALENTS = "epoch-equivalents"
REFERENCE_WIDTH = 64  # channels of the standard ResNet-18: one epoch-equivalent is one epoch at this width


def epoch_equivalents(epochs: float, data_fraction: float, width: int) -> float:
    """Full-data, width-64 epochs that `epochs` epochs at this data fraction and width amount to."""
    return epochs * data_fraction * (width / REFERENCE_WIDTH) ** 2


@dataclass(frozen=True)
class Cost:
    """What some trials consumed; `+` adds two, `total` adds many."""

    trials: int = 0
    epochs: int = 0  # epochs (reported steps) actually run, at whatever fidelity
    device_seconds: float = 0.0
    work: float = 0.0  # in `unit`
    saved: float = 0.0  # work pruned trials did not do: their planned epochs minus those they ran (built-ins)
    unit: str = EPOCH_EQUIVALENTS

    def __add__(self, other: Cost) -> Cost:
        unit = self.unit if self.trials or not other.trials else other.unit  # a sum's unit: its trials'
        return Cost(self.trials + other.trials, self.epochs + other.epochs,
                    self.device_seconds + other.device_seconds, self.work + other.work, self.saved + other.saved,
                    unit)

    @property
    def epoch_equivalents(self) -> float:
        """The work, for the built-in objectives' unit."""
        return self.work

    @property
    def device_hours(self) -> float:
        return self.device_seconds / 3600

    def to_dict(self) -> dict[str, Any]:
        """Plain, rounded numbers for exports and reports."""
        out: dict[str, Any] = {"trials": self.trials, "epochs": self.epochs,
                               "device_seconds": round(self.device_seconds, 3),
                               "device_hours": round(self.device_hours, 6)}
        if self.unit == EPOCH_EQUIVALENTS:
            out["epoch_equivalents"] = round(self.work, 6)
        else:
            out["work"], out["work_unit"] = round(self.work, 6), self.unit
        out["saved_by_pruning"] = round(self.saved, 6)
        return out


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


def user_cost(steps: int, device_seconds: float, work: float, unit: str) -> Cost:
    """One trial of a user's objective: `steps` reported, `work` in its own `unit` (nothing saved is known)."""
    return Cost(1, steps, device_seconds, work, 0.0, unit)


def recorded(cost: Cost) -> dict[str, Any]:
    """The `cost` attribute a trial records at its end: what it measured, not what can be derived."""
    out = {"device_seconds": round(cost.device_seconds, 3), "epochs": cost.epochs}
    if cost.unit == EPOCH_EQUIVALENTS:
        out["epoch_equivalents"] = round(cost.work, 6)
    else:
        out["work"], out["unit"] = round(cost.work, 6), cost.unit
    return out


def stored_cost(user_attrs: Mapping[str, Any], *, pruned: bool, wall_seconds: float | None,
                unit: str = EPOCH_EQUIVALENTS) -> Cost:
    """A stored trial's cost: its recorded `cost`, else (its worker died, or it never trained) what its config,
    the history it wrote so far and its wall time from claim to end say. `unit`: the campaign's (a trial of a
    user's objective that recorded no cost counts its steps)."""
    config = user_attrs.get("config")
    if not isinstance(config, Mapping):  # failed before its config was built: nothing trained
        return Cost(1, 0, wall_seconds or 0.0, unit=unit)
    rec = user_attrs.get("cost")
    if isinstance(rec, Mapping) and "work" in rec:
        return user_cost(int(rec["epochs"]), float(rec["device_seconds"]), float(rec["work"]), str(rec["unit"]))
    if isinstance(rec, Mapping):
        return trial_cost(config, int(rec["epochs"]), float(rec["device_seconds"]), pruned=pruned)
    history = user_attrs.get("history") or []
    seconds = sum(float(r.get("seconds", 0.0)) for r in history) if history else wall_seconds or 0.0
    if unit != EPOCH_EQUIVALENTS:
        return user_cost(len(history), seconds, float(len(history)) if unit == "steps" else 0.0, unit)
    return trial_cost(config, len(history), seconds, pruned=pruned)

"""What one training run returns, and how a callback stops it; importable without torch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpsearch.objectives.config import TrainConfig


class StopTraining(Exception):
    """Raised by an `on_epoch` callback to end the run early (pruning); the reason is recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EpochRecord:
    """One epoch (or one reported step) of a run. The built-in objectives fill every field; a user's objective
    may leave the ones it does not measure as None and put its own metrics in `metrics`."""

    epoch: int  # 1-based (a simple objective's reported step)
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    val_bacc: float | None = None  # balanced accuracy: mean per-class recall
    lr: float | None = None  # at the end of the epoch
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # any other named values of the epoch

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the fields that are set (`metrics` only when it holds any)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        """Read the stored form back; KeyError / TypeError when it is not one."""
        return cls(**data)

    def value(self, name: str) -> float | None:
        """The metric `name`: one of `metrics`, else the field of that name; None when the epoch has none."""
        if name in self.metrics:
            return self.metrics[name]
        value = getattr(self, name, None) if name in _RECORD_FIELDS else None
        return value if isinstance(value, int | float) else None


@dataclass
class TrainResult:
    config: Any  # the objective's config: a TrainConfig for the built-in objectives
    history: list[EpochRecord] = field(default_factory=list)
    status: str = "completed"  # completed | stopped | diverged
    reason: str | None = None
    test_acc: float | None = None
    test_bacc: float | None = None
    seconds: float = 0.0
    device: str = "cpu"
    num_params: int = 0
    resumed_from_epoch: int | None = None  # epochs restored from a checkpoint (None: the run started afresh)
    checkpoint_ignored: str | None = None  # why a checkpoint that was there was not used

    @property
    def final_val_acc(self) -> float:
        """Validation accuracy of the last epoch: not the best one, which would be a lucky draw."""
        return self.history[-1].val_acc if self.history else 0.0

    def end_epoch(self, record: EpochRecord, on_epoch: EpochCallback | None, diverged: str | None) -> bool:
        """Record an epoch; True when the run must stop: it diverged, or the callback raised StopTraining."""
        self.history.append(record)
        if diverged:
            self.status, self.reason = "diverged", f"diverged at epoch {record.epoch}: {diverged}"
            return True
        if on_epoch is not None:
            try:
                on_epoch(record)
            except StopTraining as stop:
                self.status, self.reason = "stopped", stop.reason
                return True
        return False

    def final_value(self, metric: str) -> float | None:
        """The metric's value at the last epoch (not its best, a lucky draw); None without one."""
        return self.history[-1].value(metric) if self.history else None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = self.config.to_dict() if isinstance(self.config, TrainConfig) else out["config"]
        return out


_RECORD_FIELDS = frozenset(f.name for f in dataclasses.fields(EpochRecord)) - {"metrics", "epoch"}
EpochCallback = Callable[[EpochRecord], None]
StepCallback = Callable[[int, int], None]  # (batch index within the epoch, batches per epoch)

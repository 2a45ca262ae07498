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
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    val_bacc: float  # balanced accuracy: mean per-class recall
    lr: float  # at the end of the epoch
    seconds: float


@dataclass
class TrainResult:
    config: TrainConfig
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

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = self.config.to_dict()
        return out


EpochCallback = Callable[[EpochRecord], None]
StepCallback = Callable[[int, int], None]  # (batch index within the epoch, batches per epoch)

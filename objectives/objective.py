"""What trains one TrainConfig: the registered objectives by name, or a user's `module:attribute`.

Optuna-free. A user's attribute is either a training function with `train`'s signature, which needs nothing
from hpsearch (no CIFAR-10 folder, no LR range test), or an `Objective` that declares what it needs and
provides:

    from hpsearch.objectives.objective import Objective
    objective = Objective(train=my_train, lr_range=my_range_test, needs_data=True)   # plan: "mymodule:objective"

`needs_data` makes the worker check the CIFAR-10 folder before it claims a trial and hand its path to
`train(config, data_dir=...)`; `lr_range(config, data_dir) -> (low, high)` serves a plan's `lr_range_test`
stage, which a plan with an objective that has none is refused. A `train` that takes `checkpoint=` (the
contract in `objectives/checkpoint.py`) is checkpointed and resumed by the worker.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ObjectiveError
from hpsearch.objectives.result import TrainResult
from hpsearch.objectives.synthetic import divergence_lr, synthetic_train

TrainFn = Callable[..., TrainResult]  # train(config, *, data_dir, on_epoch, on_step[, checkpoint, ...])
RangeFn = Callable[[TrainConfig, Path | None], tuple[float, float]]


class ObjectiveNotFound(ObjectiveError):
    """A plan names an objective that is not registered or cannot be imported."""


@dataclass(frozen=True)
class Objective:
    """A training function and what it needs: the data folder, and (for an LR range test stage) a range test."""

    train: TrainFn
    lr_range: RangeFn | None = None
    needs_data: bool = False

    @property
    def checkpoints(self) -> bool:
        """`train` takes `checkpoint=` and `checkpoint_interval=`, so a preempted trial can resume."""
        try:
            return "checkpoint" in inspect.signature(self.train).parameters
        except (TypeError, ValueError):  # no signature to read: call it without the hook
            return False


def _cifar_train(config: TrainConfig, *, checkpoint: object = None, **kwargs: object) -> TrainResult:
    from hpsearch.objectives.train import train  # torch is imported only by processes that train for real

    return train(config, checkpoint=checkpoint, **kwargs)


def _cifar_lr_range(config: TrainConfig, data_dir: Path | None) -> tuple[float, float]:
    from hpsearch.objectives.lr_find import lr_range_test

    result = lr_range_test(config, data_dir=data_dir)
    return result.base_lr, result.max_lr


def _synthetic_lr_range(config: TrainConfig, data_dir: Path | None) -> tuple[float, float]:
    top = divergence_lr(config) / 2  # the loss turns up well before the blow-up, as in a real sweep
    return float(f"{top / 100:.3g}"), float(f"{top:.3g}") if math.isfinite(top) else 1.0


OBJECTIVES: dict[str, Objective] = {
    "cifar10-resnet18": Objective(_cifar_train, _cifar_lr_range, needs_data=True),
    "synthetic": Objective(synthetic_train, _synthetic_lr_range),
}


def get_objective(spec: str) -> Objective:
    """A registered name, or `module:attribute` naming a training function or an `Objective`."""
    if spec in OBJECTIVES:
        return OBJECTIVES[spec]
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ObjectiveNotFound(f"unknown objective {spec!r}; choose from {sorted(OBJECTIVES)} or give "
                                "module:function")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ObjectiveNotFound(f"objective {spec!r} cannot be imported ({e}); check the module path") from None
    if isinstance(found, Objective):
        return found
    if not callable(found):
        raise ObjectiveNotFound(f"objective {spec!r} is a {type(found).__name__}, not a training function or an "
                                "Objective; point it at one")
    return Objective(found)

"""The objective registry: a name (or `module:function`) -> what trains one TrainConfig."""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import TrainResult
from hpsearch.search.errors import PlanError
from hpsearch.search.synthetic import divergence_lr, synthetic_train

TrainFn = Callable[..., TrainResult]  # train(config, *, data_dir, on_epoch, on_step) -> TrainResult
RangeFn = Callable[[TrainConfig, Path | None], tuple[float, float]]


@dataclass(frozen=True)
class Objective:
    train: TrainFn
    lr_range: RangeFn
    needs_data: bool = True
    checkpoints: bool = True  # `train` takes `checkpoint=` and `checkpoint_interval=` (objectives/checkpoint.py)


def _cifar_train(config: TrainConfig, **kwargs: object) -> TrainResult:
    from hpsearch.objectives.train import train  # torch is imported only by workers that train for real

    return train(config, **kwargs)


def _cifar_lr_range(config: TrainConfig, data_dir: Path | None) -> tuple[float, float]:
    from hpsearch.objectives.lr_find import lr_range_test

    result = lr_range_test(config, data_dir=data_dir)
    return result.base_lr, result.max_lr


def _synthetic_lr_range(config: TrainConfig, data_dir: Path | None) -> tuple[float, float]:
    top = divergence_lr(config) / 2  # the loss turns up well before the blow-up, as in a real sweep
    return float(f"{top / 100:.3g}"), float(f"{top:.3g}") if math.isfinite(top) else 1.0


OBJECTIVES: dict[str, Objective] = {
    "cifar10-resnet18": Objective(_cifar_train, _cifar_lr_range),
    "synthetic": Objective(synthetic_train, _synthetic_lr_range, needs_data=False),
}


def get_objective(spec: str) -> Objective:
    """A registered name, or `module:function` naming a function with `train`'s signature."""
    if spec in OBJECTIVES:
        return OBJECTIVES[spec]
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise PlanError(f"unknown objective {spec!r}; choose from {sorted(OBJECTIVES)} or give module:function")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise PlanError(f"objective {spec!r} cannot be imported ({e}); check the module path") from None
    try:
        takes = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or an object without a signature: call it without the hook
        takes = {}
    return Objective(fn, _cifar_lr_range, checkpoints="checkpoint" in takes)

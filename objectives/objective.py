"""What a campaign trains: the registered objectives by name, or a user's `module:attribute`, in one of two forms.

Optuna-free. A user's attribute is one of:

- a **simple objective**, `def objective(params: dict) -> float` or `def objective(params: dict, report) -> float`:
  `params` holds the plan's base, the stage's overrides and the sampled values (and the seed where a stage sets
  one), under any names; `report(value, step)` reports an intermediate value as `optuna.Trial.report` does, and
  raises `Pruned` (which the function need not catch) when the pruner stops the trial;
- a **full objective**, a training function with `train`'s signature, `train(config, *, data_dir, on_epoch,
  on_step[, checkpoint, checkpoint_interval]) -> TrainResult`, whose config is its own frozen dataclass (the type
  of its first parameter, or `Objective(config=...)`; `TrainConfig` when it declares none) and which gets
  histories, curves and checkpoints;
- an `Objective` that wraps either and declares what else it has: the metric it reports, the CIFAR-10 folder it
  needs, an LR range test, and a cost function:

    objective = Objective(train=my_train, metric=Metric("val_loss", "minimize"), cost=my_cost, cost_unit="GPU-s")
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import sys
import traceback
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ObjectiveError
from hpsearch.objectives.params import TRAIN_CONFIG, DataclassSchema, OpenSchema, ParamSchema
from hpsearch.objectives.result import StopTraining, TrainResult
from hpsearch.objectives.synthetic import divergence_lr, synthetic_train

TrainFn = Callable[..., Any]  # full: train(config, *, data_dir, on_epoch, on_step, ...); simple: f(params[, report])
RangeFn = Callable[[Any, Path | None], tuple[float, float]]
CostFn = Callable[[Mapping[str, Any], int], float]  # cost(params, steps reported) of one trial
DIRECTIONS = ("maximize", "minimize")
REFERENCE_WIDTH = 64  # an epoch-equivalent is one full-data epoch of the width-64 ResNet-18


class ObjectiveNotFound(ObjectiveError):
    """A plan names an objective that is not registered or cannot be imported."""


class Pruned(StopTraining):
    """Raised by a simple objective's `report` when the pruner stops the trial; the function need not catch it."""


@dataclass(frozen=True)
class Metric:
    """What the search optimizes: a name (an `EpochRecord` field, a key of its `metrics`, or a simple objective's
    returned value) and a direction."""

    name: str
    direction: str = "maximize"

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"

    @property
    def label(self) -> str:
        """How people say it: "validation accuracy" for val_acc, the name itself for a metric of one's own."""
        return _LABELS.get(self.name, self.name)

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is strictly better than `b`."""
        return a < b if self.minimize else a > b


VAL_ACC = Metric("val_acc", "maximize")
_LABELS = {"val_acc": "validation accuracy", "val_loss": "validation loss", "val_bacc": "balanced validation accuracy",
           "train_loss": "training loss", "train_acc": "training accuracy"}


def epoch_equivalents(params: Mapping[str, Any], steps: int) -> float:
    """The built-in objectives' cost: epochs run x data fraction x (width / 64)^2, full-data width-64 epochs."""
    fraction, width = float(params.get("data_fraction", 1.0)), int(params.get("width", REFERENCE_WIDTH))
    return steps * fraction * (width / REFERENCE_WIDTH) ** 2


@dataclass(frozen=True)
class Objective:
    """A training function and what it declares: its config type, metric, data, range test and cost."""

    train: TrainFn
    lr_range: RangeFn | None = None
    needs_data: bool = False
    config: type | None = None  # a full objective's config dataclass (default: its first parameter's annotation)
    metric: Metric | None = None  # the metric it reports (default: val_acc for a full objective, none for simple)
    cost: CostFn | None = None  # cost(params, steps) of one trial (default: the steps it reported)
    cost_unit: str | None = None  # what `cost` counts, e.g. "GPU-seconds" (default: "steps")

    @property
    def simple(self) -> bool:
        """Takes a params dict (and maybe `report`) and returns a float, rather than `train`'s keywords."""
        params = _parameters(self.train)
        if params is None:
            return False
        full = "on_epoch" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
        return not full

    @property
    def reports(self) -> bool:
        """A simple objective that takes `report` as its second argument."""
        params = _parameters(self.train) or {}
        positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return self.simple and (len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params.values()))

    @property
    def schema(self) -> ParamSchema:
        """The parameters it takes: its config dataclass, or any names for a simple objective."""
        if self.simple:
            return OpenSchema()
        cls = self.config or _first_annotation(self.train) or TrainConfig
        return TRAIN_CONFIG if cls is TrainConfig else DataclassSchema(cls)

    @property
    def default_metric(self) -> Metric | None:
        """The metric a plan gets when it names none: a full objective's validation accuracy; none for a simple
        one, whose plan must say whether its number is maximized or minimized."""
        return self.metric or (None if self.simple else VAL_ACC)

    @property
    def unit(self) -> str:
        """The unit its cost is counted in."""
        return self.cost_unit or ("epoch-equivalents" if self.cost is epoch_equivalents else "steps")

    def trial_cost(self, params: Mapping[str, Any], steps: int) -> float:
        """What one trial of `params` that reported `steps` steps cost, in `unit`."""
        return float(self.cost(params, steps)) if self.cost is not None else float(steps)

    @property
    def folder(self) -> str | None:
        """The folder of a user's module that defines `train` (None for the built-ins): where a worker or
        `hpsearch train` on this machine finds it again."""
        module = sys.modules.get(getattr(self.train, "__module__", "") or "")
        path = getattr(module, "__file__", None)
        if path is None or (module is not None and module.__name__.startswith("hpsearch.")):
            return None
        return str(Path(path).resolve().parent)

    @property
    def checkpoints(self) -> bool:
        """`train` takes `checkpoint=` and `checkpoint_interval=`, so a preempted trial can resume."""
        params = _parameters(self.train)
        return params is not None and "checkpoint" in params


def _parameters(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter] | None:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): call it as a full objective
        return None


def _first_annotation(fn: Callable[..., Any]) -> type | None:
    """The dataclass a full objective's first parameter is annotated with, if any."""
    params = list((_parameters(fn) or {}).values())
    if not params:
        return None
    try:
        hint = typing.get_type_hints(fn).get(params[0].name)
    except Exception:  # an annotation that does not resolve declares nothing usable
        return None
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


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
    "cifar10-resnet18": Objective(_cifar_train, _cifar_lr_range, needs_data=True, config=TrainConfig,
                                  metric=VAL_ACC, cost=epoch_equivalents),
    "synthetic": Objective(synthetic_train, _synthetic_lr_range, config=TrainConfig, metric=VAL_ACC,
                           cost=epoch_equivalents),
}


def get_objective(spec: str, search_path: Iterable[str | Path] = ()) -> Objective:
    """A registered name, or `module:attribute` naming an objective function or an `Objective`; the module is
    looked for on `sys.path` (PYTHONPATH, the installed packages), then in `search_path` (the plan file's folder,
    say), then in the working directory."""
    if spec in OBJECTIVES:
        return OBJECTIVES[spec]
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ObjectiveNotFound(f"unknown objective {spec!r}; choose from {sorted(OBJECTIVES)} or give "
                                "module:function")
    module = import_objective_module(module_name, spec, search_path)
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise ObjectiveNotFound(f"objective {spec!r}: module {module_name!r} ({module.__file__}) has no "
                                f"{attr!r}; check the name after the colon") from None
    if isinstance(found, Objective):
        objective = found
    elif callable(found):
        objective = Objective(found)
    else:
        raise ObjectiveNotFound(f"objective {spec!r} is a {type(found).__name__}, not a training function or an "
                                "Objective; point it at one")
    if objective.cost is None and not objective.simple and objective.schema is TRAIN_CONFIG:
        objective = dataclasses.replace(objective, cost=epoch_equivalents)  # a TrainConfig trial costs epochs
    return objective


def import_objective_module(module_name: str, spec: str, search_path: Iterable[str | Path] = ()) -> Any:
    """Import the module of a `module:attribute` objective; any failure is one ObjectiveNotFound line naming the
    module, the exception and where it was raised."""
    for folder in [*map(str, search_path), str(Path.cwd())]:
        if folder not in sys.path:  # after the installed packages: a user's yaml.py must not shadow PyYAML
            sys.path.append(folder)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise ObjectiveNotFound(f"objective {spec!r}: no module {module_name!r} in the plan's folder, the "
                                    "working directory or PYTHONPATH; put it there or add its folder to "
                                    "PYTHONPATH") from None
        raise ObjectiveNotFound(f"objective {spec!r}: importing {module_name!r} raised {_where(e)}; fix the "
                                "module or install what it imports") from None
    except Exception as e:  # the user's module raised at import: one line, not their traceback
        raise ObjectiveNotFound(f"objective {spec!r}: importing {module_name!r} raised {_where(e)}; "
                                "fix the module") from None


def describe_failure(e: BaseException, objective: Objective | None = None) -> dict[str, str]:
    """`{"type", "message", "where"}` of an exception a trial raised; `where` is the deepest frame in the
    objective's own file (else the innermost frame), as `file:line`."""
    frames = traceback.extract_tb(e.__traceback__)
    own: str | None = None
    if objective is not None:
        try:
            own = inspect.getsourcefile(objective.train)
        except TypeError:
            own = None
    mine = [f for f in frames if own is not None and Path(f.filename) == Path(own)]
    frame = (mine or frames or [None])[-1]
    where = f"{frame.filename}:{frame.lineno}" if frame is not None else "?"
    return {"type": type(e).__name__, "message": " ".join(str(e).split()), "where": where}


def _where(e: BaseException) -> str:
    """`Type: message (file:line)` of the innermost frame that raised `e`."""
    frames = traceback.extract_tb(e.__traceback__)
    at = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(e).split())
    return f"{type(e).__name__}: {message}{at}" if message else f"{type(e).__name__}{at}"

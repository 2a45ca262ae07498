"""`TrainConfig`: every knob of one training run, as one frozen, typed record."""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.textfile import MAX_TEXT_BYTES, read_small_text
from hpsearch.objectives.yamlfile import BoundedLoader

OPTIMIZER_NAMES = ("sgd", "adamw", "nadam")
SCHEDULER_NAMES = ("constant", "step", "cosine", "plateau", "onecycle", "cyclic")
CLASS_WEIGHT_NAMES = ("none", "inverse", "effective", "inverse_power")
PRECISIONS = ("bf16", "fp32")
SAMPLING_NAMES = ("uniform", "class_balanced", "sqrt")
PLATEAU_MODES = ("max", "min")
COMPILE_MODES = ("auto", "off", "on", "cudagraphs")
# Schedule knobs that may be given in epochs or as a fraction of the run (of `epochs`), never both.
FRACTION_KNOBS = {"warmup_fraction": "warmup_epochs", "step_fraction": "step_epochs",
                  "cycle_fraction": "cycle_epochs", "plateau_patience_fraction": "plateau_patience"}
MAX_CONFIG_BYTES = MAX_TEXT_BYTES  # a config (or an export of one) is a page of YAML


@dataclass(frozen=True)
class TrainConfig:
    """One training run of ResNet-18 on CIFAR-10; `asdict` of it is stored with every trial."""

    # data
    data_fraction: float = 1.0  # fraction of the training split used (stratified), 0 < f <= 1
    classes: tuple[int, ...] | None = None  # class subset, relabelled 0..k-1; None = all ten
    imbalance_ratio: float = 1.0  # long tail: largest / smallest class count (exponential profile); 1 = balanced
    val_fraction: float = 0.1  # of the balanced training set, per class, held out for validation
    split_seed: int = 0  # fixes the validation split and the subsets, independently of `seed`
    sampling: str = "uniform"  # uniform | class_balanced (each class equally often) | sqrt (sqrt of class counts)
    # model
    width: int = 64  # channels of the first stage; 64 is the standard 11M-parameter ResNet-18
    # optimizer
    optimizer: str = "sgd"  # key in OPTIMIZERS
    lr: float = 0.1  # peak learning rate (after warmup; one-cycle / cyclic maximum)
    momentum: float = 0.9  # SGD only; Adam-family optimizers use betas (0.9, 0.999)
    nesterov: bool = True  # SGD only
    weight_decay: float = 5e-4  # L2 coupled for SGD, decoupled for AdamW
    decay_norm_and_bias: bool = False  # False: no weight decay on BatchNorm and bias parameters
    batch_size: int = 128
    epochs: int = 30
    # schedule (see objectives/schedules.py)
    scheduler: str = "cosine"  # key in SCHEDULERS
    warmup_epochs: float = 0.0  # linear warmup from ~0 to lr, applied before any schedule
    min_lr_ratio: float = 0.01  # floor as a fraction of lr: cosine end, plateau min_lr, cyclic base_lr
    step_epochs: int = 10  # step: multiply the LR by step_gamma every step_epochs
    step_gamma: float = 0.1
    plateau_patience: int = 3  # plateau: epochs without validation-accuracy gain before a cut
    plateau_factor: float = 0.5  # plateau: LR multiplier at each cut
    cycle_epochs: float = 4.0  # cyclic: length of one full triangle (up and down)
    onecycle_pct: float = 0.3  # one-cycle: fraction of the run spent rising
    plateau_mode: str = "max"  # on validation accuracy: max cuts when it stops rising; min when it stops falling
    # The same knobs as fractions of the run (x epochs), so a value tuned at 8 epochs means the same at 30;
    # None = use the epoch form above. Setting both forms of one knob is an error.
    warmup_fraction: float | None = None
    step_fraction: float | None = None
    cycle_fraction: float | None = None
    plateau_patience_fraction: float | None = None
    # loss
    class_weights: str = "none"  # key in CLASS_WEIGHTS, computed from the training split's counts
    class_weight_beta: float = 0.999  # "effective": effective number of samples (Cui et al. 2019)
    class_weight_power: float = 0.5  # "inverse_power": (1 / count) ** power
    label_smoothing: float = 0.0
    # augmentation
    crop: bool = True  # random 32x32 crop after 4-pixel reflect padding
    flip: bool = True  # random horizontal flip
    cutout: int = 0  # side of a zeroed square at a random centre; 0 = off
    # execution
    precision: str = "bf16"  # bf16 autocast on CUDA; the CPU always runs fp32
    channels_last: bool = True
    seed: int = 0  # weights, batch order and augmentation
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: `cudagraphs` for CUDA, `off` on the CPU; on: torch.compile (once per process and shape);
    # cudagraphs: compiled, and the whole training step captured in a CUDA graph. Never changes the math.
    compile: str = "auto"
    divergence_factor: float = 4.0  # stop as diverged when the epoch's mean loss exceeds this x the first loss

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (tuples as lists), ready for JSON or YAML."""
        out = dataclasses.asdict(self)
        if out["classes"] is not None:
            out["classes"] = list(out["classes"])
        return out

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "config") -> TrainConfig:
        """Build from a plain mapping; unknown keys and wrong types fail with a message naming the key."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of TrainConfig keys, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; valid keys are {', '.join(sorted(known))}"
            )
        hints = type_hints(cls)
        values = {name: coerce_field(name, value, hints[name], where) for name, value in data.items()}
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed, validated like `from_dict`."""
        return TrainConfig.from_dict({**self.to_dict(), **changes}, where="override")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml_file(cls, path: str | Path) -> TrainConfig:
        """Read a YAML file: either a TrainConfig mapping or an export with a `config:` section."""
        path = Path(path)
        text = read_small_text(path, "config file", ConfigError, MAX_CONFIG_BYTES)
        try:
            data = yaml.load(text, Loader=BoundedLoader)  # a SafeLoader: no arbitrary objects
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"config file {str(path)!r} is not valid YAML{at}; fix the syntax") from None
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            data = data["config"]
        return cls.from_dict(data, where=str(path))


def coerce_field(name: str, value: Any, hint: Any, where: str) -> Any:
    """Check one value against its field type; ints are accepted for floats, lists for tuples. A type other
    than bool, int, float, str, a tuple of ints or one of those or None is taken as it comes."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    expected = _type_name(hint)
    if origin is tuple and typing.get_args(hint)[:1] == (int,):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where}: {name} must be a list of integers, got {value!r}")
        return tuple(value)
    if hint not in (bool, int, float, str):
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        raise ConfigError(f"{where}: {name} must be {expected}, got {value!r} ({type(value).__name__})")
    return float(value) if hint is float else value


def _type_name(hint: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _validate(c: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    for name in ("lr", "data_fraction", "val_fraction", "min_lr_ratio", "step_gamma", "plateau_factor",
                 "cycle_epochs", "onecycle_pct", "class_weight_beta", "divergence_factor",
                 "imbalance_ratio", "weight_decay", "momentum", "warmup_epochs", "label_smoothing",
                 "class_weight_power"):
        value = getattr(c, name)
        need(isinstance(value, (int, float)) and math.isfinite(value), f"{name} must be a finite number, got {value!r}")
    need(c.lr > 0, f"lr must be > 0, got {c.lr}; a typical SGD range is 1e-3 to 1")
    need(0 < c.data_fraction <= 1, f"data_fraction must be in (0, 1], got {c.data_fraction}")
    need(0 < c.val_fraction < 1, f"val_fraction must be in (0, 1), got {c.val_fraction}")
    need(c.imbalance_ratio >= 1, f"imbalance_ratio must be >= 1 (1 = balanced), got {c.imbalance_ratio}")
    if c.classes is not None:
        need(len(c.classes) >= 2, f"classes must name at least 2 classes, got {list(c.classes)}")
        need(all(0 <= k <= 9 for k in c.classes), f"classes must be CIFAR-10 indices 0..9, got {list(c.classes)}")
        need(len(set(c.classes)) == len(c.classes), f"classes must not repeat, got {list(c.classes)}")
    need(c.width >= 1, f"width must be >= 1 (64 is the standard ResNet-18), got {c.width}")
    need(c.optimizer in OPTIMIZER_NAMES, f"unknown optimizer {c.optimizer!r}; choose from {list(OPTIMIZER_NAMES)}")
    need(0 <= c.momentum < 1, f"momentum must be in [0, 1), got {c.momentum}")
    need(c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay}")
    need(c.batch_size >= 2, f"batch_size must be >= 2 (BatchNorm needs two samples), got {c.batch_size}")
    need(c.epochs >= 1, f"epochs must be >= 1, got {c.epochs}")
    need(c.scheduler in SCHEDULER_NAMES, f"unknown scheduler {c.scheduler!r}; choose from {list(SCHEDULER_NAMES)}")
    need(c.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {c.warmup_epochs}")
    need(0 < c.min_lr_ratio <= 1, f"min_lr_ratio must be in (0, 1], got {c.min_lr_ratio}")
    need(c.step_epochs >= 1, f"step_epochs must be >= 1, got {c.step_epochs}")
    need(0 < c.step_gamma <= 1, f"step_gamma must be in (0, 1], got {c.step_gamma}")
    need(c.plateau_patience >= 0, f"plateau_patience must be >= 0, got {c.plateau_patience}")
    need(0 < c.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {c.plateau_factor}")
    need(c.cycle_epochs > 0, f"cycle_epochs must be > 0, got {c.cycle_epochs}")
    need(0 < c.onecycle_pct < 1, f"onecycle_pct must be in (0, 1), got {c.onecycle_pct}")
    need(c.class_weights in CLASS_WEIGHT_NAMES,
         f"unknown class_weights {c.class_weights!r}; choose from {list(CLASS_WEIGHT_NAMES)}")
    need(0 < c.class_weight_beta < 1, f"class_weight_beta must be in (0, 1), got {c.class_weight_beta}")
    need(c.class_weight_power >= 0, f"class_weight_power must be >= 0, got {c.class_weight_power}")
    need(0 <= c.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {c.label_smoothing}")
    need(0 <= c.cutout <= 32, f"cutout must be in [0, 32] pixels, got {c.cutout}")
    need(c.precision in PRECISIONS, f"unknown precision {c.precision!r}; choose from {list(PRECISIONS)}")
    need(c.divergence_factor > 1, f"divergence_factor must be > 1, got {c.divergence_factor}")
    need(_valid_device(c.device), f"device must be auto, cpu, cuda or cuda:N, got {c.device!r}")
    need(c.sampling in SAMPLING_NAMES, f"unknown sampling {c.sampling!r}; choose from {list(SAMPLING_NAMES)}")
    need(c.plateau_mode in PLATEAU_MODES, f"unknown plateau_mode {c.plateau_mode!r}; choose from {list(PLATEAU_MODES)}")
    need(c.compile in COMPILE_MODES, f"unknown compile {c.compile!r}; choose from {list(COMPILE_MODES)}")
    need(not (c.compile == "cudagraphs" and c.device == "cpu"),
         "compile: cudagraphs needs a CUDA device; use compile: on or off on the CPU")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for fraction, epochs in FRACTION_KNOBS.items():
        value = getattr(c, fraction)
        if value is None:
            continue
        need(math.isfinite(value), f"{fraction} must be a finite number, got {value!r}")
        closed = fraction in ("warmup_fraction", "plateau_patience_fraction")  # 0 = no warmup / no patience
        need((value >= 0 if closed else value > 0) and value <= 1,
             f"{fraction} must be a fraction of the run in {'[0' if closed else '(0'}, 1], got {value}")
        need(getattr(c, epochs) == defaults[epochs],
             f"both {epochs} and {fraction} are set; give the knob in epochs or as a fraction of the run, not both")


def _valid_device(device: str) -> bool:
    if device in ("auto", "cpu", "cuda"):
        return True
    head, _, index = device.partition(":")
    return head == "cuda" and index.isdigit()


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The fields' resolved types: resolving them costs far more than building a config from a dict."""
    return typing.get_type_hints(cls)

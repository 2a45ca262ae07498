"""Landscapes for the search-quality benchmark: families of objectives with a noiseless truth to score a search by.

Each family builds one landscape per seed (`build(family, seed)`). A landscape is a training function with the
contract of `objectives.train.train` (an accuracy-like value per epoch, higher is better, a stoppable callback),
its truth (the noiseless value at full fidelity of a config, which no search sees) and, where it is not the
example plan's, its own search space. Fidelity is the planned work of a run, f = data_fraction x epochs (30 at
the example plan's final stage): g = log(f) / log(30), clipped to [0, 1], is 0 for one epoch-equivalent and 1 at
full fidelity.

Families over the example plan's space (`examples/cifar10-resnet18.yaml`), built on `objectives/synthetic.py`:
- `synthetic`: the project's synthetic objective itself;
- `shift-lr`, `shift-wd`, `shift-both`: the optimum in log LR, log weight decay or both sits S x (1 - g) decades
  away from the full-fidelity one, S drawn per seed from [-1, 1] (either direction, none to a decade): short,
  small runs favour other values, so ranks cross between the coarse and the full fidelity;
- `narrow-optimizer`: AdamW has a narrow extra peak in LR (0.15 decade wide, within 0.3 decade of AdamW's broad
  optimum, placed by the seed) above every other optimum;
- `late-categorical`: one categorical choice (label smoothing 0.1 or NAdam, by seed) is worth 0.01 to 0.02 at full
  fidelity and costs 0.008 at the lowest;
- `ridge`: LR and weight decay matter through lr x wd (or lr / wd, by seed), steeply across that ridge and little
  along it, with its centre moved by the seed.
Public benchmark functions (`bench/mf_hartmann.py`): `mfh3-good`, `mfh3-bad`, `mfh3-terrible`, `mfh6-good`,
`mfh6-bad`, `mfh6-terrible`, MF-Hartmann with mf-prior-bench's presets, over a space of 3 or 6 float knobs each
mapped linearly onto [0, 1]; the value is -H, z = 100 f / 30 (at least 3), and the seed is mf-prior-bench's noise
seed.

The split was fixed before any tuning: `TUNING` chooses the narrowing defaults and the example plans' shapes,
`HELD_OUT` is only reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import EpochRecord, TrainResult
from hpsearch.objectives.synthetic import BEST_LOG_LR, ceiling, divergence_lr, synthetic_train, true_value

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts

import mf_hartmann as mfh

FULL_WORK = 30.0  # data_fraction x epochs of the example plan's final stage
NOISE = 0.005  # one run's evaluation noise, as the synthetic objective's
# The synthetic ceiling's maximum at full fidelity: 0.93, plus 0.02 for a cosine, plateau or one-cycle schedule
# with its default floor (bench/search_quality.py's dense optimisation finds the same).
SYNTHETIC_BEST = 0.95
TUNING = ("synthetic", "shift-lr", "narrow-optimizer", "mfh3-good", "mfh6-terrible")
HELD_OUT = ("shift-wd", "shift-both", "late-categorical", "ridge", "mfh3-bad", "mfh3-terrible", "mfh6-good",
            "mfh6-bad")
HARTMANN_KEYS = (("momentum", 0.0, 0.9), ("label_smoothing", 0.0, 0.5), ("onecycle_pct", 0.1, 0.9),
                 ("plateau_factor", 0.1, 0.9), ("step_gamma", 0.1, 0.9), ("class_weight_power", 0.0, 1.0))


@dataclass(frozen=True)
class Landscape:
    """One member of a family: what a search runs, and the truth it is scored by."""

    name: str  # family-seed
    train: Callable[..., TrainResult]  # train(config, *, data_dir, on_epoch, on_step, ...)
    truth: Callable[[dict[str, Any]], float]  # noiseless full-fidelity value of a config (TrainConfig dict)
    space: dict[str, Any] | None = None  # plan-file space; None: the example plan's
    best: float | None = None  # the known optimum of `truth`, where it is known in closed form
    top: Callable[[TrainConfig], float] | None = None  # noiseless converged value at the config's own fidelity


def fidelity(c: TrainConfig) -> float:
    """g in [0, 1]: the log of the run's planned work relative to full fidelity."""
    return min(1.0, max(0.0, math.log(max(1.0, c.data_fraction * c.epochs)) / math.log(FULL_WORK)))


def curve_train(top: Callable[[TrainConfig], float]) -> Callable[..., TrainResult]:
    """A training function whose run approaches `top(config)` as the synthetic objective's does (same learning
    curve, noise and divergence), so pruners and rankings meet what they meet there."""

    def train(config: TrainConfig, *, data_dir: Any = None, on_epoch: Any = None, on_step: Any = None,
              evaluate_test: bool = False) -> TrainResult:
        del data_dir, on_step, evaluate_test
        started = time.perf_counter()
        rng = np.random.default_rng(_noise_seed(config))
        ceil = top(config)
        tau = 1.0 + 3.0 * max(0.0, -math.log10(config.lr) - 1)
        blows_up = config.lr > divergence_lr(config)
        result = TrainResult(config=config, device="synthetic", num_params=0)
        for epoch in range(1, config.epochs + 1):
            val = float(np.clip(0.1 + (ceil - 0.1) * (1 - math.exp(-epoch / tau)) + rng.normal(0, NOISE), 0, 1))
            loss = float("nan") if blows_up else 2.3 * (1 - val) + 0.05
            record = EpochRecord(epoch, loss, val, 2.3 * (1 - val) + 0.1, val, val, config.lr, 0.0)
            diverged = "the training loss is not finite (the learning rate is too large)" if blows_up else None
            if result.end_epoch(record, on_epoch, diverged):
                break
        result.seconds = time.perf_counter() - started
        return result

    return train


def _noise_seed(config: TrainConfig) -> int:
    """Noise depends on every knob, so a repeat of the same config repeats exactly."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def full(config: dict[str, Any]) -> TrainConfig:
    """The config at full fidelity: all the data, width 64, the final stage's epochs."""
    return dataclasses.replace(TrainConfig.from_dict(config), data_fraction=1.0, width=64, epochs=int(FULL_WORK))


def scored(top: Callable[[TrainConfig], float]) -> Callable[[dict[str, Any]], float]:
    """The truth of a landscape whose converged value is `top`: at full fidelity, chance when the LR diverges."""
    def truth(config: dict[str, Any]) -> float:
        c = full(config)
        return 0.1 if c.lr > divergence_lr(c) else top(c)
    return truth


def shifted(lr_shift: float, wd_shift: float) -> Callable[[TrainConfig], float]:
    """The synthetic ceiling with its optimum moved by (1 - g) x the shifts, in decades of LR and weight decay."""
    def top(c: TrainConfig) -> float:
        away = 1 - fidelity(c)
        return ceiling(dataclasses.replace(c, lr=c.lr * 10 ** (-lr_shift * away),
                                           weight_decay=c.weight_decay * 10 ** (-wd_shift * away)))
    return top


def narrow_peak(centre: float, height: float = 0.02, width: float = 0.075) -> Callable[[TrainConfig], float]:
    """The synthetic ceiling plus a Gaussian peak in log LR (sd `width` decades) for AdamW only."""
    def top(c: TrainConfig) -> float:
        bonus = height * math.exp(-0.5 * ((math.log10(c.lr) - centre) / width) ** 2) if c.optimizer == "adamw" else 0
        return min(0.99, ceiling(c) + bonus)
    return top


def late_choice(key: str, value: Any, gain: float, cost: float = 0.008) -> Callable[[TrainConfig], float]:
    """The synthetic ceiling, plus `gain` x g - `cost` x (1 - g) when `key` is `value`."""
    def top(c: TrainConfig) -> float:
        g = fidelity(c)
        return ceiling(c) + (gain * g - cost * (1 - g) if getattr(c, key) == value else 0.0)
    return top


def ridge(centre: float, sign: int, along: float = 0.3, across: float = 2.5) -> Callable[[TrainConfig], float]:
    """The synthetic ceiling seen through rotated axes: log lr + sign x log wd (steep) and log lr - sign x log wd
    (flat), with the optimum's LR moved by `centre` decades."""
    def top(c: TrainConfig) -> float:
        best_lr = BEST_LOG_LR[c.optimizer]
        x, y = math.log10(c.lr) - best_lr - centre, sign * (math.log10(max(c.weight_decay, 1e-8)) + 3.3)
        a, b = across * (x + y) / math.sqrt(2), along * (x - y) / math.sqrt(2)
        return ceiling(dataclasses.replace(c, lr=10 ** (best_lr + a), weight_decay=10 ** (-3.3 + b)))
    return top


def hartmann_landscape(name: str, dims: int, preset: str, seed: int) -> Landscape:
    """MF-Hartmann over `dims` float knobs, each mapped linearly onto [0, 1]; the value is -H."""
    bias, noise = mfh.PRESETS[preset]
    keys = HARTMANN_KEYS[:dims]

    def point(c: TrainConfig | dict[str, Any]) -> tuple[float, ...]:
        get = c.get if isinstance(c, dict) else lambda k: getattr(c, k)
        return tuple(min(1.0, max(0.0, (get(k) - lo) / (hi - lo))) for k, lo, hi in keys)

    def train(config: TrainConfig, *, data_dir: Any = None, on_epoch: Any = None, on_step: Any = None,
              evaluate_test: bool = False) -> TrainResult:
        del data_dir, on_step, evaluate_test
        result = TrainResult(config=config, device="synthetic", num_params=0)
        x = point(config)
        for epoch in range(1, config.epochs + 1):
            z = int(min(mfh.Z_MAX, max(3, round(mfh.Z_MAX * config.data_fraction * epoch / FULL_WORK))))
            value = -mfh.mf_hartmann(x, z, bias=bias, noise=noise, seed=seed + 1)
            record = EpochRecord(epoch, -value, value, -value, value, value, config.lr, 0.0)
            if result.end_epoch(record, on_epoch, None):
                break
        return result

    space = {k: {"type": "float", "low": lo, "high": hi} for k, lo, hi in keys}
    return Landscape(name, train, lambda config: -mfh.hartmann(point(config)), space, -mfh.MINIMUM[dims])


def build(family: str, seed: int) -> Landscape:
    """The member `seed` of `family`."""
    name = f"{family}-{seed}"
    rng = np.random.default_rng([sum(map(ord, family)), seed])
    if family == "synthetic":
        return Landscape(name, synthetic_train, lambda config: true_value(TrainConfig.from_dict(config)),
                         best=SYNTHETIC_BEST, top=ceiling)
    if family.startswith("shift-"):
        lr, wd = rng.uniform(-1, 1, 2)
        shifts = {"shift-lr": (lr, 0.0), "shift-wd": (0.0, wd), "shift-both": (lr, wd)}[family]
        top = shifted(*shifts)
        return Landscape(name, curve_train(top), scored(top), best=SYNTHETIC_BEST, top=top)
    best = SYNTHETIC_BEST  # the ridge keeps the synthetic optimum's value, at a moved LR
    if family == "narrow-optimizer":
        centre = -2.7 + rng.uniform(-0.3, 0.3)
        top = narrow_peak(centre)
        grid = np.linspace(-3, 0, 30_001)  # AdamW's best: the synthetic LR term plus the peak, in one dimension
        best = max(best, float(np.max(np.minimum(
            0.99, SYNTHETIC_BEST - 0.06 * (grid + 2.7) ** 2 + 0.02 * np.exp(-0.5 * ((grid - centre) / 0.075) ** 2)))))
    elif family == "late-categorical":
        key, value = [("label_smoothing", 0.1), ("optimizer", "nadam")][int(rng.integers(2))]
        gain = rng.uniform(0.01, 0.02)
        top, best = late_choice(key, value, gain), SYNTHETIC_BEST + gain
    elif family == "ridge":
        top = ridge(rng.uniform(-0.5, 0.5), int(rng.choice([-1, 1])))
    elif family.startswith("mfh"):
        dims, preset = family[3:].split("-")
        return hartmann_landscape(name, int(dims), preset, seed)
    else:
        raise KeyError(f"unknown landscape family {family!r}; choose from {list(FAMILIES)}")
    return Landscape(name, curve_train(top), scored(top), best=best, top=top)


FAMILIES = (*TUNING, *HELD_OUT)

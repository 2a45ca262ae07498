"""LR schedules, one registry entry each, with a linear warmup in front of any of them.

Closed-form schedules are factors of the peak LR as pure functions of the optimizer step, driven by
torch's `LambdaLR`; the plateau schedule is torch's `ReduceLROnPlateau` on validation accuracy (mode max by
default). Warmup, step interval, cycle length and plateau patience may be given as fractions of the run; the
`*_epochs_of` helpers turn either form into epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.registry import registrar

# factor(step, config, steps_per_epoch) -> multiplier of config.lr, for steps counted after warmup
Factor = Callable[[int, TrainConfig, int], float]
SCHEDULERS: dict[str, Factor] = {}


register_scheduler = registrar(SCHEDULERS, "scheduler")


def warmup_epochs_of(c: TrainConfig) -> float:
    return c.warmup_epochs if c.warmup_fraction is None else c.warmup_fraction * c.epochs


def step_epochs_of(c: TrainConfig) -> float:
    return c.step_epochs if c.step_fraction is None else c.step_fraction * c.epochs


def cycle_epochs_of(c: TrainConfig) -> float:
    return c.cycle_epochs if c.cycle_fraction is None else c.cycle_fraction * c.epochs


def plateau_patience_of(c: TrainConfig) -> int:
    """Whole epochs: ReduceLROnPlateau counts epochs without gain."""
    if c.plateau_patience_fraction is None:
        return c.plateau_patience
    return round(c.plateau_patience_fraction * c.epochs)


@register_scheduler("constant")
def constant(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    return 1.0


@register_scheduler("plateau")
def _plateau(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    return 1.0  # the cuts come from ReduceLROnPlateau at epoch ends


@register_scheduler("step")
def step_decay(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    return c.step_gamma ** (step // max(1, round(step_epochs_of(c) * steps_per_epoch)))


@register_scheduler("cosine")
def cosine(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    """Half a cosine from 1 down to the floor `min_lr_ratio`, reached on the last step."""
    total = max(1, _main_steps(c, steps_per_epoch) - 1)
    progress = min(1.0, step / total)
    return c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@register_scheduler("onecycle")
def one_cycle(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    """Linear rise from the floor to the peak over `onecycle_pct` of the run, then cosine down to floor/100."""
    total = max(2, _main_steps(c, steps_per_epoch))
    rise = max(1, round(c.onecycle_pct * total))
    low, end = c.min_lr_ratio, c.min_lr_ratio / 100
    if step < rise:
        return low + (1 - low) * step / rise
    progress = min(1.0, (step - rise) / max(1, total - 1 - rise))
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))


@register_scheduler("cyclic")
def cyclic(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    """Triangular cycles between base_lr = lr * min_lr_ratio and max_lr = lr (Smith's CLR)."""
    half = max(1, round(cycle_epochs_of(c) * steps_per_epoch / 2))
    phase = (step % (2 * half)) / half  # 0 -> 1 rising, 1 -> 2 falling
    height = phase if phase <= 1 else 2 - phase
    return c.min_lr_ratio + (1 - c.min_lr_ratio) * height


def get_scheduler(name: str) -> Factor:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise ConfigError(f"unknown scheduler {name!r}; choose from {sorted(SCHEDULERS)}") from None


def warmup_steps(c: TrainConfig, steps_per_epoch: int) -> int:
    return round(warmup_epochs_of(c) * steps_per_epoch)


def _main_steps(c: TrainConfig, steps_per_epoch: int) -> int:
    return max(1, c.epochs * steps_per_epoch - warmup_steps(c, steps_per_epoch))


def lr_factor(step: int, c: TrainConfig, steps_per_epoch: int) -> float:
    """The multiplier of `c.lr` for optimizer step `step` (0-based): warmup, then the schedule."""
    warm = warmup_steps(c, steps_per_epoch)
    if step < warm:
        return (step + 1) / (warm + 1)
    return get_scheduler(c.scheduler)(step - warm, c, steps_per_epoch)


class LRSchedule:
    """Steps the LR once per optimizer step and, for `plateau`, once per epoch on validation accuracy."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> None:
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.step_count = 0
        self.optimizer = optimizer
        self._warm = warmup_steps(config, steps_per_epoch)
        # A device-tensor LR (CUDA-graph steps) is set in place each step: no host read, no recapture.
        self._tensor_lr = isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
        self._lambda = None
        if self._tensor_lr:
            self._set_tensor_lr(0)
        else:
            self._lambda = LambdaLR(optimizer, lambda s: lr_factor(s, config, steps_per_epoch))
        self._plateau = None
        if config.scheduler == "plateau":
            self._plateau = ReduceLROnPlateau(
                optimizer,
                # On accuracy, max is the right mode; min treats accuracy like a loss (cuts when it stops falling).
                mode=config.plateau_mode,
                factor=config.plateau_factor,
                patience=plateau_patience_of(config),
                min_lr=config.lr * config.min_lr_ratio,
            )

    def after_step(self) -> None:
        self.step_count += 1
        # Under plateau, LambdaLR only drives the warmup: past it the LR belongs to ReduceLROnPlateau.
        if self._plateau is None or self.step_count <= self._warm:
            if self._lambda is None:
                self._set_tensor_lr(self.step_count)
            else:
                self._lambda.step()

    def _set_tensor_lr(self, step: int) -> None:
        value = self.config.lr * lr_factor(step, self.config, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"].fill_(value)

    def after_epoch(self, val_accuracy: float) -> None:
        if self._plateau is not None and self.step_count >= self._warm:
            self._plateau.step(val_accuracy)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        """The step count and both torch schedulers' states; restore the optimizer's state beside it."""
        lam = self._lambda.state_dict() if self._lambda is not None else None  # a tensor LR follows step_count
        return {"step_count": self.step_count, "lambda": lam,
                "plateau": self._plateau.state_dict() if self._plateau is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        if self._lambda is not None and state["lambda"] is not None:
            self._lambda.load_state_dict(state["lambda"])
        if self._plateau is not None:
            self._plateau.load_state_dict(state["plateau"])

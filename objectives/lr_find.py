"""The LR range test (Smith, arXiv 1506.01186): raise the LR exponentially and watch the loss."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import make_splits, resolve_data_dir
from hpsearch.objectives.device import channels_last_on
from hpsearch.objectives.loader import Augmentation, DeviceLoader
from hpsearch.objectives.losses import build_loss
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.result import StepCallback
from hpsearch.objectives.train import _autocast, resolve_device


@dataclass(frozen=True)
class RangeTest:
    lrs: list[float]
    losses: list[float]  # raw, per iteration
    smoothed: list[float]  # bias-corrected exponential moving average
    base_lr: float  # where the loss starts to fall
    max_lr: float  # where the loss stops falling and starts to rise

    def suggestion(self) -> dict[str, float | bool]:
        """The bounds as a search-space entry for `lr`."""
        return {"type": "float", "low": float(f"{self.base_lr:.3g}"), "high": float(f"{self.max_lr:.3g}"), "log": True}


def lr_range_test(
    config: TrainConfig,
    *,
    data_dir: str | Path | None = None,
    start_lr: float = 1e-5,
    end_lr: float = 10.0,
    iterations: int = 200,
    blowup: float = 4.0,
    smoothing: float = 0.05,
    on_step: StepCallback | None = None,
) -> RangeTest:
    """Sweep the LR from start_lr to end_lr over `iterations` steps; stop once the loss passes blowup x its best.
    `on_step(step, iterations)` is called after each step (a progress display)."""
    device = resolve_device(config.device)
    splits = make_splits(config, resolve_data_dir(data_dir))
    torch.manual_seed(config.seed)
    channels_last = channels_last_on(config.channels_last, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = CifarResNet18(splits.num_classes, config.width).to(device, memory_format=memory_format)
    loader = DeviceLoader(
        splits.train, config.batch_size, device, augmentation=Augmentation(config.crop, config.flip, config.cutout),
        shuffle=True, drop_last=True, channels_last=channels_last, seed=config.seed,
    )
    optimizer = build_optimizer(model, config)
    loss_fn = build_loss(splits.train.class_counts(splits.num_classes), config, device)
    autocast = _autocast(device, config.precision)
    ratio = (end_lr / start_lr) ** (1 / max(1, iterations - 1))
    lrs, losses, smoothed = [], [], []
    avg, best = 0.0, math.inf
    model.train()
    step = 0
    while step < iterations:
        for x, y in loader:
            lr = start_lr * ratio**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()  # a sync per step is inherent: the sweep stops on what it sees
            step += 1
            avg = (1 - smoothing) * avg + smoothing * value
            smooth = avg / (1 - (1 - smoothing) ** step)
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            best = min(best, smooth)
            if on_step is not None:
                on_step(step, iterations)
            if not math.isfinite(value) or smooth > blowup * best or step >= iterations:
                break
        else:
            continue
        break
    base_lr, max_lr = suggest_bounds(lrs, smoothed)
    return RangeTest(lrs, losses, smoothed, base_lr, max_lr)


def suggest_bounds(lrs: list[float], smoothed: list[float]) -> tuple[float, float]:
    """max_lr: where the smoothed loss is lowest; base_lr: where it has made a tenth of its fall.

    base_lr is kept within two decades of max_lr: a wider bracket only spends trials on LRs that crawl.
    """
    values = np.asarray(smoothed, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        return lrs[0], lrs[0] * 10
    lowest = int(np.nanargmin(np.where(finite, values, np.nan)))
    start = values[: max(1, lowest // 10 + 1)].mean()  # the plateau before the loss moves
    target = start - 0.1 * (start - values[lowest])
    below = np.flatnonzero(values[: lowest + 1] <= target)
    base = lrs[int(below[0])] if len(below) else lrs[0]
    top = lrs[lowest]
    if base >= top:
        base = top / 10
    return max(base, top / 100), top

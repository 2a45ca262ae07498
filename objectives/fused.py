"""Fused trials: K trials of one shape trained as one stacked model, so small trials fill a large GPU.

Each slot is one trial with everything `train()` gives it: its initial weights from its seed, its own data
order and augmentation (its own `DeviceLoader`, seeded like `train()`'s), its own loss, LR schedule (its own
`LRSchedule`, warmup and plateau included), momentum and weight decay, its own BatchNorm statistics, epoch
records and divergence check. Trials fuse when they share what fixes the step's shape; `why_not_fused` says
why one does not, and the caller runs that one separately. When a slot's trial ends (finished, stopped by its
callback, diverged), `refill` gives the slot its next trial at the next epoch boundary, so the step's shape
never changes. Each slot's `EpochRecord.seconds` is its share of the fused epoch: wall time / trials in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from hpsearch.objectives.compiled import build_model, resolve_compile
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import CifarSplits, make_splits, resolve_data_dir
from hpsearch.objectives.device import channels_last_on
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.fused_step import (
    FUSED_OPTIMIZERS,
    FusedOptimizer,
    FusedStep,
    StackedLoss,
    StackedModel,
    evaluate_stacked,
    stack_batches,
)
from hpsearch.objectives.loader import Augmentation, DeviceLoader
from hpsearch.objectives.result import EpochRecord, StepCallback, TrainResult
from hpsearch.objectives.schedules import LRSchedule
from hpsearch.objectives.train import EVAL_BATCH, _autocast, _divergence, resolve_device

# What fixes the fused step's shape or its kernels: trials that differ in one of these cannot share a model.
SHAPE_FIELDS = ("width", "batch_size", "classes", "data_fraction", "imbalance_ratio", "val_fraction",
                "split_seed", "device", "precision", "optimizer")

SlotEpoch = Callable[[int, EpochRecord], None]  # (slot, record); may raise StopTraining for that slot's trial
SlotEnd = Callable[[int, TrainResult], None]
Refill = Callable[[int], "TrainConfig | None"]  # the slot's next trial (it must fuse), or None to leave it idle


def why_not_fused(config: TrainConfig, group: TrainConfig | None = None) -> str | None:
    """Why `config` cannot train fused (with `group`, a trial of the fused step), or None when it can."""
    if config.optimizer not in FUSED_OPTIMIZERS:
        return f"optimizer {config.optimizer!r} is not covered by the fused step ({', '.join(FUSED_OPTIMIZERS)} are)"
    if group is not None:
        for name in SHAPE_FIELDS:
            mine, theirs = getattr(config, name), getattr(group, name)
            if mine != theirs:
                return f"its {name} {mine!r} differs from the fused trials' {theirs!r}"
    return None


def fusable_groups(configs: Sequence[TrainConfig]) -> tuple[list[list[int]], dict[int, str]]:
    """Indices of `configs` grouped by what fuses, in order, and why each of the others cannot fuse."""
    groups: list[list[int]] = []
    alone: dict[int, str] = {}
    for i, config in enumerate(configs):
        reason = why_not_fused(config)
        if reason is not None:
            alone[i] = reason
            continue
        home = next((g for g in groups if why_not_fused(config, configs[g[0]]) is None), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    return groups, alone


@dataclass
class _Slot:
    config: TrainConfig
    loader: DeviceLoader
    schedule: LRSchedule
    result: TrainResult
    epoch: int = 1


def train_fused(configs: Sequence[TrainConfig], *, data_dir: str | Path | None = None,
                splits: CifarSplits | None = None, slots: int | None = None, on_epoch: SlotEpoch | None = None,
                on_step: StepCallback | None = None, on_end: SlotEnd | None = None,
                refill: Refill | None = None) -> list[TrainResult]:
    """Train `configs` fused, one per slot (`slots`, default len(configs)); results in the order trials ended.

    Raises ConfigError when a config does not fuse with the first (see `why_not_fused`); an exception from
    `on_step` (a stop) or from `on_epoch` other than StopTraining ends every slot's run.
    """
    first = configs[0]
    slots = slots or len(configs)
    if len(configs) > slots:
        raise ConfigError(f"{len(configs)} trials do not fit in {slots} fused slots")
    device = resolve_device(first.device)
    root = resolve_data_dir(data_dir)
    splits = splits if splits is not None else make_splits(first, root)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    mode = resolve_compile(first.compile, device)
    autocast = _autocast(device, first.precision, cache=mode != "cudagraphs")
    channels_last = channels_last_on(first.channels_last, device)  # the first trial's, as its own run would
    model = StackedModel(splits.num_classes, first.width, slots, device, channels_last)
    optimizer = FusedOptimizer(model.params, first.optimizer, slots, device)
    loss_fn = StackedLoss(slots, splits.num_classes, device)
    counts = splits.train.class_counts(splits.num_classes)
    val_loader = DeviceLoader(splits.val, EVAL_BATCH, device, channels_last=channels_last)
    num_params = sum(p[0].numel() for p in model.params.values())
    running: list[_Slot | None] = [None] * slots
    ended: list[TrainResult] = []

    def start(slot: int, config: TrainConfig) -> int:
        """Put `config`'s trial in `slot`, from its start; returns its steps per epoch."""
        reason = why_not_fused(config, first)
        if reason is not None:
            raise ConfigError(f"a trial cannot join the fused step: {reason}")
        model.load_slot(slot, build_model(splits.num_classes, config.width, config.seed))
        optimizer.set_slot(slot, config)
        loss_fn.set_slot(slot, counts, config)
        loader = DeviceLoader(splits.train, config.batch_size, device,
                              augmentation=Augmentation(config.crop, config.flip, config.cutout),
                              shuffle=True, drop_last=True, seed=config.seed, sampling=config.sampling,
                              channels_last=channels_last)
        # The schedule drives an LR holder, exactly as it drives a trial's own optimizer in `train()`.
        holder = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
        schedule = LRSchedule(holder, config, len(loader))
        holder.step()  # a no-op (no gradient) that tells torch's schedulers the optimizer steps
        result = TrainResult(config=config, device=str(device), num_params=num_params)
        running[slot] = _Slot(config, loader, schedule, result)
        if step is not None:
            step.fresh.add(slot)
        return len(loader)

    step: FusedStep | None = None
    # One count: fused trials share the training split and the batch size.
    (steps_per_epoch,) = {start(slot, config) for slot, config in enumerate(configs)}
    while any(running):
        active = [(k, s) for k, s in enumerate(running) if s is not None]
        epoch_start = time.perf_counter()
        iterators = {k: iter(s.loader) for k, s in active}
        for b in range(steps_per_epoch):
            batches = {k: next(it) for k, it in iterators.items()}
            x0, y0 = next(iter(batches.values()))
            # An idle slot (no trial left to fill it) trains on a copy of another's batch at LR 0.
            x = stack_batches([batches[k][0] if k in batches else x0 for k in range(slots)], channels_last)
            y = torch.stack([batches[k][1] if k in batches else y0 for k in range(slots)])
            lrs = [s.schedule.lr if s is not None else 0.0 for s in running]
            optimizer.lr.copy_(torch.tensor(lrs), non_blocking=True)
            if step is None:
                step = FusedStep(model, optimizer, loss_fn, autocast, device,
                                 (x, y) if mode == "cudagraphs" else None)
            if b == 0:
                step.start_epoch()
            step(x, y)
            for _, s in active:
                s.schedule.after_step()
            if on_step is not None:
                on_step(b, steps_per_epoch)
        assert step is not None
        val = evaluate_stacked(model, val_loader, splits.num_classes, autocast, device)
        # The one host sync of the epoch, for every slot at once.
        stats = torch.cat([(step.loss_sum / step.seen).unsqueeze(1), (step.correct.float() / step.seen).unsqueeze(1),
                           step.first_loss.unsqueeze(1), val], dim=1).tolist()
        share = (time.perf_counter() - epoch_start) / len(active)
        for k, s in active:
            train_loss, train_acc, first_loss, val_loss, val_acc, val_bacc = stats[k]
            s.schedule.after_epoch(val_acc)
            record = EpochRecord(s.epoch, train_loss, train_acc, val_loss, val_acc, val_bacc, s.schedule.lr, share)
            callback = None if on_epoch is None else (lambda r, k=k: on_epoch(k, r))
            diverged = _divergence(train_loss, first_loss, s.config.divergence_factor)
            if not s.result.end_epoch(record, callback, diverged) and s.epoch < s.config.epochs:
                s.epoch += 1
                continue
            s.result.seconds = sum(r.seconds for r in s.result.history)  # its share of the device
            running[k] = None
            ended.append(s.result)
            if on_end is not None:
                on_end(k, s.result)
            following = refill(k) if refill is not None else None
            if following is not None:
                start(k, following)
    return ended

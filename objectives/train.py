"""`train(config, on_epoch=...)`: one run of ResNet-18 on CIFAR-10, usable with or without a search around it."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hpsearch.objectives.checkpoint import DEFAULT_INTERVAL, Checkpointer, TrainingCheckpoint
from hpsearch.objectives.compiled import ModelKey, model_for, resolve_compile
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import NUM_CLASSES, CifarSplits, load_test_split, make_splits, resolve_data_dir
from hpsearch.objectives.device import channels_last_on
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.loader import Augmentation, DeviceLoader
from hpsearch.objectives.losses import build_loss
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.result import EpochCallback, EpochRecord, StepCallback, StopTraining, TrainResult
from hpsearch.objectives.schedules import LRSchedule
from hpsearch.objectives.step import GraphStep, TrainStep

# The result types live in a torch-free module; they are part of this module's API too.
__all__ = ["EpochCallback", "EpochRecord", "StepCallback", "StopTraining", "TrainResult", "evaluate_weights",
           "resolve_device", "train"]

EVAL_BATCH = 1024


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when there is one; asking for a GPU that is not there is bad input."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} is not available: no CUDA GPU here; use device: cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} is not available: {torch.cuda.device_count()} GPU(s) here; use cuda:0 or auto"
            )
    return device


def train(
    config: TrainConfig,
    *,
    data_dir: str | Path | None = None,
    splits: CifarSplits | None = None,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    evaluate_test: bool = False,
    checkpoint: Checkpointer | None = None,
    checkpoint_interval: float = DEFAULT_INTERVAL,
) -> TrainResult:
    """Train, validating every epoch; stops on divergence or when `on_epoch` raises StopTraining.

    With `checkpoint`, resumes from its state and saves as `objectives/checkpoint.py` describes.
    """
    started = time.perf_counter()
    device = resolve_device(config.device)
    root = resolve_data_dir(data_dir)
    if splits is None:
        splits = make_splits(config, root)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    mode = resolve_compile(config.compile, device)
    channels_last = channels_last_on(config.channels_last, device)
    key = ModelKey(splits.num_classes, config.width, config.batch_size, mode, str(device), channels_last)
    cached = model_for(key, config.seed)
    model = cached.model
    train_loader = DeviceLoader(
        splits.train, config.batch_size, device,
        augmentation=Augmentation(config.crop, config.flip, config.cutout),
        shuffle=True, drop_last=True, channels_last=channels_last, seed=config.seed,
        sampling=config.sampling,
    )
    val_loader = DeviceLoader(splits.val, EVAL_BATCH, device, channels_last=channels_last)
    optimizer = build_optimizer(model, config, capturable=mode == "cudagraphs")
    schedule = LRSchedule(optimizer, config, len(train_loader))
    loss_fn = build_loss(splits.train.class_counts(splits.num_classes), config, device)
    # Autocast's weight-cast cache would hold tensors from the capture; a graph needs the casts inside it.
    autocast = _autocast(device, config.precision, cache=mode != "cudagraphs")
    result = TrainResult(config=config, device=str(device), num_params=sum(p.numel() for p in model.parameters()))
    # checkpoint: restore a saved state (replaying its epochs to on_epoch) before any graph is captured, since
    # restoring replaces the optimizer's state tensors; the uncompiled module holds the weights.
    ckpt = TrainingCheckpoint(checkpoint, config, checkpoint_interval, model=model, optimizer=optimizer,
                              schedule=schedule, loader=train_loader, result=result)
    resumed = ckpt.restore(on_epoch)
    if mode == "cudagraphs":  # a restored optimizer holds the saved LR; a captured step needs it on the device
        for group in optimizer.param_groups:
            group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32, device=device).clone()
    step: TrainStep | None = None

    for epoch in range(resumed.next_epoch, config.epochs + 1):
        loss_sum, correct, seen, seconds_before = ckpt.epoch_totals()  # zeros unless resumed mid-epoch
        epoch_start = time.perf_counter() - seconds_before
        begun = False  # this epoch's first batch has run
        for b, (x, y) in enumerate(train_loader, start=train_loader.next_batch):
            if step is None:
                step = (GraphStep(model, cached.forward, optimizer, loss_fn, autocast, device, (x, y))
                        if mode == "cudagraphs" and len(y) == config.batch_size
                        else TrainStep(model, cached.forward, optimizer, loss_fn, autocast, device))
                step.first_loss = resumed.first_loss
            if not begun:
                step.start_epoch(loss_sum, correct, seen)
                begun = True
            step(x, y)
            schedule.after_step()
            if on_step is not None:
                try:
                    on_step(b, len(train_loader))
                except BaseException:  # the caller stops the run: keep this batch's state, then stop
                    ckpt.stopped(epoch - 1, step.first_loss, {"loss_sum": step.loss_sum, "correct": step.correct,
                                                              "seen": step.seen,
                                                              "seconds": time.perf_counter() - epoch_start})
                    raise
        if not begun:  # resumed at the very end of an epoch: no batch of it is left to run
            step = step or TrainStep(model, cached.forward, optimizer, loss_fn, autocast, device)
            step.first_loss = step.first_loss if step.first_loss is not None else resumed.first_loss
            step.start_epoch(loss_sum, correct, seen)
        assert step.first_loss is not None  # drop_last never drops the only batch
        loss_sum, correct, first_loss, seen = step.loss_sum, step.correct, step.first_loss, step.seen
        val = _evaluate(cached.forward, model, val_loader, splits.num_classes, autocast, mode != "off")
        # The one host sync of the epoch: training and validation statistics in a single transfer.
        stats = torch.cat([torch.stack([loss_sum / seen, correct.float() / seen, first_loss]), val]).tolist()
        train_loss, train_acc, first, val_loss, val_acc, val_bacc = stats
        schedule.after_epoch(val_acc)
        record = EpochRecord(epoch, train_loss, train_acc, val_loss, val_acc, val_bacc, schedule.lr,
                             time.perf_counter() - epoch_start)
        try:
            ended = result.end_epoch(record, on_epoch, _divergence(train_loss, first, config.divergence_factor))
        except BaseException:  # the caller stops the run at this epoch's end: keep it, then stop
            ckpt.stopped(epoch, first_loss)
            raise
        if ended:
            break
        ckpt.epoch_end(epoch, first_loss)  # when the interval has passed, and after the last epoch

    if evaluate_test and result.status != "diverged":
        test_set = load_test_split(config, root)
        test_loader = DeviceLoader(test_set, EVAL_BATCH, device, channels_last=channels_last)
        _, result.test_acc, result.test_bacc = _evaluate(cached.forward, model, test_loader, splits.num_classes,
                                                         autocast, mode != "off").tolist()
    result.seconds = time.perf_counter() - started
    return result


def evaluate_weights(config: TrainConfig, weights: dict[str, Any], *, data_dir: str | Path | None = None,
                     test: bool = False) -> dict[str, float]:
    """Loss, accuracy and balanced accuracy of trained `weights` (a `state_dict` of `CifarResNet18`, such as
    `hpsearch export --weights` writes) on `config`'s validation split, or on the test set with `test`."""
    device = resolve_device(config.device)
    root = resolve_data_dir(data_dir)
    split = load_test_split(config, root) if test else make_splits(config, root).val
    num_classes = len(config.classes) if config.classes is not None else NUM_CLASSES
    model = CifarResNet18(num_classes, config.width)
    model.load_state_dict(weights)
    channels_last = channels_last_on(config.channels_last, device)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    loader = DeviceLoader(split, EVAL_BATCH, device, channels_last=channels_last)
    autocast = _autocast(device, config.precision)
    loss, acc, bacc = _evaluate(model, model, loader, num_classes, autocast, pad=False).tolist()
    return {"loss": loss, "acc": acc, "bacc": bacc}


def _divergence(mean_loss: float, first_loss: float, factor: float) -> str | None:
    if not math.isfinite(mean_loss):
        return "the training loss is not finite (the learning rate is too large)"
    if mean_loss > factor * first_loss:
        return (f"mean training loss {mean_loss:.3g} exceeds {factor:g}x the first loss {first_loss:.3g} "
                "(the learning rate is too large)")
    return None


@torch.no_grad()
def _evaluate(forward: Any, model: nn.Module, loader: DeviceLoader, num_classes: int, autocast: Any,
              pad: bool) -> torch.Tensor:
    """[loss, accuracy, balanced accuracy] as a device tensor: the caller decides when to sync.

    With `pad`, every batch has the loader's batch size (the last is padded and its padding weighted 0), so a
    compiled model sees one shape whatever the split's size.
    """
    model.eval()
    device = loader.device
    loss_sum = torch.zeros((), device=device)
    hits = torch.zeros(num_classes, device=device)
    totals = torch.zeros(num_classes, device=device)
    for x, y in loader:
        weight = torch.ones(len(y), device=device)
        short = loader.batch_size - len(y)
        if pad and short > 0:
            x = torch.cat([x, x.new_zeros((short, *x.shape[1:]))]).contiguous(memory_format=loader.memory_format)
            y = torch.cat([y, y.new_zeros(short)])
            weight = torch.cat([weight, weight.new_zeros(short)])
        with autocast:
            logits = forward(x)
        loss_sum += (nn.functional.cross_entropy(logits.float(), y, reduction="none") * weight).sum()
        # index_add_, not bincount or boolean masks: on CUDA both of those wait for the host.
        totals.index_add_(0, y, weight)
        hits.index_add_(0, y, (logits.argmax(1) == y).to(hits.dtype) * weight)
    n = totals.sum()
    recall = hits / totals.clamp(min=1)
    present = (totals > 0).float()
    return torch.stack([loss_sum / n, hits.sum() / n, (recall * present).sum() / present.sum()])


def _autocast(device: torch.device, precision: str, cache: bool = True) -> Any:
    """bf16 autocast on CUDA; the CPU always trains in fp32 (CPU bf16 is slow and not what a GPU run does)."""
    enabled = device.type == "cuda" and precision == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled, cache_enabled=cache)


"""A full objective: its own config dataclass, a history of epochs, and checkpoints a retried trial resumes.

    def train(config: MLPConfig, *, data_dir, on_epoch, on_step, checkpoint=None, checkpoint_interval=120)
        -> TrainResult

The plan's base, overrides and space are checked against `MLPConfig`'s fields (a typo is one line at
`hpsearch init`). Each epoch's `EpochRecord` gives the curves in the dashboard and the report; the plan's
metric (validation accuracy by default) is read from it. A worker stopped mid-trial writes a checkpoint,
and the trial's retry carries on from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from blobs import blobs, evaluate, mlp, one_epoch

from hpsearch.objectives import checkpoint as ckpt
from hpsearch.objectives.result import EpochRecord, TrainResult


@dataclass(frozen=True)
class MLPConfig:
    lr: float = 3e-3
    weight_decay: float = 1e-3
    width: int = 64
    dropout: float = 0.1
    epochs: int = 12
    data_fraction: float = 1.0  # of the training points
    batch_size: int = 64
    seed: int = 0


def train(config: MLPConfig, *, data_dir=None, on_epoch=None, on_step=None, checkpoint=None,
          checkpoint_interval: float = ckpt.DEFAULT_INTERVAL) -> TrainResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    x, y, x_val, y_val = blobs()
    n = int(len(x) * config.data_fraction)
    model = mlp(config.width, config.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    result = TrainResult(config=config, device="cpu")
    state, ignored = ckpt.usable_state(checkpoint, config, "mlp", ("model", "optimizer", "generator"))
    ckpt.note_ignored(result, ignored)
    start = 1
    if state is not None:  # a retry: restore, replay the epochs done to the pruner, carry on
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        start = config.epochs + 1 if ckpt.replay(state, result, on_epoch) else state["epoch"] + 1
    clock = ckpt.SaveClock(checkpoint_interval)

    def save(epoch: int) -> None:
        if checkpoint is not None:
            ckpt.save_quietly(checkpoint, lambda: {**ckpt.base_state(config, "mlp", result, epoch),
                                                   "model": model.state_dict(), "optimizer": opt.state_dict(),
                                                   "generator": gen.get_state()}, clock)

    for epoch in range(start, config.epochs + 1):
        began = time.perf_counter()
        train_loss, train_acc = one_epoch(model, opt, x[:n], y[:n], config.batch_size, gen)
        val_loss, val_acc = evaluate(model, x_val, y_val)
        record = EpochRecord(epoch, train_loss, train_acc, val_loss, val_acc, val_acc, config.lr,
                             time.perf_counter() - began)
        try:
            ended = result.end_epoch(record, on_epoch, None if train_loss == train_loss else "the loss is NaN")
        except BaseException:  # the worker was stopped: keep this epoch for the retry, then stop
            save(epoch)
            raise
        if ended:
            break
        if clock.due(epoch == config.epochs):
            save(epoch)
    result.seconds = time.perf_counter() - started
    return result

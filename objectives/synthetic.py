"""A cheap stand-in for training over the same space: a noisy analytic function with a learning curve.

It behaves like the real thing where the search machinery can notice: too large an LR diverges (sooner with
little momentum), the LR optimum depends on the optimizer, weight decay has a sweet spot and drowns learning
when huge, a floor on cosine / plateau schedules helps the last epochs, class weights matter only on a long
tail, and more data, epochs or width raise the ceiling. Milliseconds per trial, plus an optional sleep per
epoch (`HPSEARCH_SYNTHETIC_SLEEP`, seconds) for coordination tests that need trials to overlap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from hpsearch.objectives import checkpoint as ckpt
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import EpochCallback, EpochRecord, StepCallback, TrainResult

BEST_LOG_LR = {"sgd": -1.0, "adamw": -2.7, "nadam": -2.7}
CLASS_WEIGHT_EFFECT = {"none": 0.0, "inverse": 0.8, "effective": 1.0, "inverse_power": 0.9}


def ceiling(c: TrainConfig) -> float:
    """The accuracy a config converges to (before noise): the landscape the search explores."""
    acc = 0.93
    acc -= 0.06 * (math.log10(c.lr) - BEST_LOG_LR[c.optimizer]) ** 2
    if c.optimizer == "sgd":
        acc -= 0.5 * (0.9 - c.momentum) ** 2 * (1 + 4 * max(0.0, math.log10(c.lr) + 1))
    acc -= 0.02 * (math.log10(max(c.weight_decay, 1e-8)) + 3.3) ** 2
    if c.scheduler in ("cosine", "plateau", "onecycle"):
        acc += 0.02 - 0.01 * abs(math.log10(c.min_lr_ratio) + 2)
    if c.imbalance_ratio > 1:
        acc -= 0.08 * math.log10(c.imbalance_ratio) * (1 - CLASS_WEIGHT_EFFECT[c.class_weights])
    acc *= 0.6 + 0.4 * c.data_fraction**0.3
    acc *= 0.85 + 0.15 * min(1.0, c.width / 64) ** 0.5
    if c.weight_decay > 0.05:  # the model learns nothing
        acc = 0.1
    return float(min(0.97, max(0.1, acc)))


def true_value(config: TrainConfig) -> float:
    """What `config` is really worth: its noiseless converged accuracy at full fidelity (all the data, width 64),
    or chance when its LR diverges. Benchmarks score a search's chosen config by it; no search ever sees it."""
    full = dataclasses.replace(config, data_fraction=1.0, width=64)
    return 0.1 if full.lr > divergence_lr(full) else ceiling(full)


def divergence_lr(c: TrainConfig) -> float:
    """Above this LR the run blows up; momentum steadies large LRs, Adam-family optimizers need small ones."""
    if c.optimizer == "sgd":
        return 0.8 + 3.0 * c.momentum**4
    return 0.05


def synthetic_train(
    config: TrainConfig,
    *,
    data_dir: str | Path | None = None,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    evaluate_test: bool = False,
    checkpoint: ckpt.Checkpointer | None = None,
    checkpoint_interval: float = ckpt.DEFAULT_INTERVAL,
) -> TrainResult:
    """Same contract as `objectives.train.train`: a history per epoch, divergence, a stoppable callback and
    checkpoints (the noise generator's state and the history)."""
    del data_dir, on_step
    started = time.perf_counter()
    sleep = float(os.environ.get("HPSEARCH_SYNTHETIC_SLEEP", "0") or 0)
    rng = np.random.default_rng(_seed(config))
    top = ceiling(config)
    tau = 1.0 + 3.0 * max(0.0, -math.log10(config.lr) - 1)  # small LRs converge slowly
    result = TrainResult(config=config, device="synthetic", num_params=0)
    blows_up = config.lr > divergence_lr(config)
    state, ignored = ckpt.usable_state(checkpoint, config, "synthetic", ("epoch", "history", "rng"))
    ckpt.note_ignored(result, ignored)
    start = 1
    if state is not None:
        rng.bit_generator.state = state["rng"]
        start = config.epochs + 1 if ckpt.replay(state, result, on_epoch) else state["epoch"] + 1
    clock = ckpt.SaveClock(checkpoint_interval)

    def save(epoch: int) -> None:
        if checkpoint is not None:
            ckpt.save_quietly(checkpoint, lambda: {**ckpt.base_state(config, "synthetic", result, epoch),
                                                   "rng": rng.bit_generator.state}, clock)

    for epoch in range(start, config.epochs + 1):
        if sleep:
            time.sleep(sleep)
        progress = 1 - math.exp(-epoch / tau)
        val = float(np.clip(0.1 + (top - 0.1) * progress + rng.normal(0, 0.005), 0.0, 1.0))
        train_acc = min(1.0, val + 0.02 * epoch / config.epochs)
        loss = float("nan") if blows_up else 2.3 * (1 - train_acc) + 0.05
        record = EpochRecord(epoch, loss, train_acc, 2.3 * (1 - val) + 0.1, val, val - 0.01, config.lr, 0.0)
        diverged = "the training loss is not finite (the learning rate is too large)" if blows_up else None
        try:
            ended = result.end_epoch(record, on_epoch, diverged)
        except BaseException:  # the caller stops the run: keep this epoch, then stop
            save(epoch)
            raise
        if ended:
            break
        if clock.due(epoch == config.epochs):
            save(epoch)
    if evaluate_test and result.status == "completed":
        result.test_acc = result.final_val_acc - 0.005
        result.test_bacc = result.test_acc - 0.01
    result.seconds = time.perf_counter() - started
    return result


def _seed(config: TrainConfig) -> int:
    """Noise depends on every knob and the seed, so a repeat of the same config repeats exactly."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

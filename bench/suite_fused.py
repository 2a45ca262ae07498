"""Fused trials for bench/gpu_suite.py: K trials trained as one model (objectives/fused.py), trials per hour
against the same trials trained one after another, at the coarse fidelity and width 64.

Each figure is trials finished in a wall-clock window after a warm-up (compilation, cuDNN autotuning): K = 1
separate is `train()` back to back, the way a worker runs trials (`compile: auto`, so CUDA graphs on a GPU);
fused K keeps K slots busy, refilling each ended slot with the next trial, as `hpsearch worker --fuse K` does.
A trial cut by the window's end counts the fraction of its epochs done. A fused K whose CUDA-graph step fails
is recorded as failed and measured again with the eager fused step.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import make_splits
from hpsearch.objectives.fused import train_fused
from hpsearch.objectives.result import StopTraining
from hpsearch.objectives.train import train


class WindowClosed(Exception):
    """Raised from a step callback when the window's time is up."""


def _lr(seed: int, base: float) -> float:
    return base * (0.5, 1.0, 2.0, 0.25)[seed % 4]  # trials differ, as a stage's do


def separate_trials(config: TrainConfig, splits: Any, window: float) -> float:
    """Trials `train()` finishes back to back in `window` seconds (the partly run last one pro rata)."""
    end_at = time.perf_counter() + window
    done = 0.0

    def on_epoch(record: Any) -> None:
        if time.perf_counter() >= end_at:
            raise StopTraining("window closed")

    for seed in itertools.count(1):
        result = train(config.replace(seed=seed, lr=_lr(seed, config.lr)), splits=splits, on_epoch=on_epoch)
        epochs = float(len(result.history))
        if result.status == "stopped":
            last = result.history[-1].seconds
            epochs -= min(1.0, (time.perf_counter() - end_at) / max(last, 1e-9))
            done += epochs / config.epochs
            break
        done += epochs / config.epochs
    return done


def fused_trials(config: TrainConfig, splits: Any, k: int, window: float) -> tuple[float, float]:
    """(trials finished in `window` seconds with K fused slots refilled as they end, seconds to the first step
    of the window's group: model stacking and, on CUDA, the graph capture)."""
    seeds = itertools.count(1)
    started = time.perf_counter()
    end_at: float | None = None
    epochs_done = 0
    partial = 0.0
    first_step = 0.0

    def next_config(slot: int | None = None) -> TrainConfig:
        seed = next(seeds)
        return config.replace(seed=seed, lr=_lr(seed, config.lr))

    def on_step(batch: int, total: int) -> None:
        nonlocal end_at, partial, first_step
        now = time.perf_counter()
        if end_at is None:  # the window opens once the group is built and its first step ran
            first_step = now - started
            end_at = now + window
        if now >= end_at:
            partial = k * (batch + 1) / total
            raise WindowClosed

    def on_epoch(slot: int, record: Any) -> None:
        nonlocal epochs_done
        epochs_done += 1

    with contextlib.suppress(WindowClosed):
        train_fused([next_config() for _ in range(k)], splits=splits, on_epoch=on_epoch, on_step=on_step,
                    refill=next_config)
    return (epochs_done + partial) / config.epochs, first_step


def measure_fused(smoke: bool, config: TrainConfig, data_dir: Path, out: Callable[[dict[str, Any]], None],
                  guarded: Callable[[Callable[[dict[str, Any]], None], str, Callable[[], None]], bool]) -> None:
    """Emit trials/hour for K = 1 separate and fused K = 1, 4, 8 (smoke: 1, 2)."""
    ks = (1, 2) if smoke else (1, 4, 8)
    window = 1.0 if smoke else 15.0
    if smoke:  # a few steps per epoch: the code paths in seconds
        config = config.replace(device="cpu", compile="off", data_fraction=0.3, epochs=2, width=4, batch_size=16)
    splits = make_splits(config, data_dir)
    fidelity = f"width {config.width}, data {config.data_fraction:g}, {config.epochs} epochs"
    if not smoke:  # compiles the separate path (the fused one is not compiled; its capture is timed below)
        warm = time.perf_counter()
        train(config.replace(epochs=1), splits=splits)
        out({"measure": "warm-up: a 1-epoch separate trial", "value": time.perf_counter() - warm, "unit": "s",
             "note": f"compile: {config.compile}"})
    base = separate_trials(config, splits, window) / window * 3600
    out({"measure": f"trials/hour, K=1 separate ({fidelity})", "value": base, "unit": "trials/h",
         "note": f"{base * window / 3600:.2f} trials in {window:.0f} s; train() back to back"})
    mode = config.compile
    for k in ks:
        def one(k: int = k, step: str = mode) -> None:
            trials, first = fused_trials(config.replace(compile=step), splits, k, window)
            per_hour = trials / window * 3600
            target = {4: "; target >= 2x at K=4 (MPS or fused)", 8: "; target >= 2.5x at K=8"}.get(k, "")
            out({"measure": f"trials/hour, fused K={k} ({fidelity})", "value": per_hour, "unit": "trials/h",
                 "note": f"{trials:.2f} trials in {window:.0f} s; {per_hour / base:.2f}x K=1 separate; "
                         f"group built in {first:.1f} s; step: {step}{target}"})
        if not guarded(out, f"trials/hour, fused K={k}, step {mode}", one) and mode != "off":
            mode = "off"  # the captured fused step failed: measure the eager one from here on
            guarded(out, f"trials/hour, fused K={k}, step off", lambda k=k: one(k, "off"))

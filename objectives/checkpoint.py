"""Checkpoints: how a training function hands its state to a keeper, and a file that keeps it whole.

The contract is plain Python (no Optuna). A training function that supports checkpoints accepts two
keyword arguments, `checkpoint=` (a `Checkpointer`) and `checkpoint_interval=` (seconds, default 120):

- `checkpoint.load() -> dict | None`: the last state saved, or None when there is none or it cannot be used
  (a keeper that knows why sets its `reason` attribute); `checkpoint.save(state: dict) -> None`: keep this
  state in place of the previous one, written whole or not at all. The state is a dict of tensors and
  builtins that is only valid during the call: serialise (or copy) it before returning.
- At the start the function calls `load()` once. A state whose `config_hash` is not this config's, or that
  is not one of its own, is ignored with a logged reason (`TrainResult.checkpoint_ignored`) and the run
  starts afresh. Otherwise it restores the state, passes the epochs already done to `on_epoch` again, in
  order (a pruner sees the whole curve), sets `TrainResult.resumed_from_epoch` and carries on.
- It saves at the end of an epoch when `checkpoint_interval` seconds have passed since the start or the last
  save, always after the last epoch (the state then holds the trained weights), and always when a callback
  stops it by raising anything other than `StopTraining` (the exception is re-raised after the save). A
  run that diverges or is stopped by `StopTraining` has ended: nothing more is saved.

`train` (the CIFAR objective) and `synthetic_train` follow it; a user's `module:function` objective may too.
The CIFAR state (`TrainingCheckpoint`) holds the model weights, the optimizer state, the LR schedule
(LambdaLR and ReduceLROnPlateau), the training loader's generator, the torch RNG states (CPU and the run's
CUDA device), the epochs done with their history, the first loss (the divergence reference) and, when a
callback stops the run mid-epoch, the epoch's order, next batch and running totals: a resume on the same
kind of device continues at the next batch and is exact on the CPU (same thread count). The config hash
covers every `TrainConfig` field but those in `EXECUTION_ONLY` (`device`: a retry may run elsewhere).
A user's objective can build on `config_hash`, `usable_state`, `base_state`, `replay` and `SaveClock`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import EpochCallback, EpochRecord, TrainResult

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what a state holds changes shape: older checkpoints are then ignored, not misread
DEFAULT_INTERVAL = 120.0  # seconds between epoch-end saves
# Knobs that say where a run executes, not what it computes: a retry may land on another device.
EXECUTION_ONLY = frozenset({"device"})


@runtime_checkable
class Checkpointer(Protocol):
    """Keeps one training state: `load()` the last one saved (or None), `save(state)` a new one whole."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


def config_hash(config: TrainConfig | Any) -> str:
    """A short digest of every field that changes the result (all but `EXECUTION_ONLY`); any dataclass config."""
    data = config.to_dict() if isinstance(config, TrainConfig) else dataclasses.asdict(config)
    fields = {k: v for k, v in data.items() if k not in EXECUTION_ONLY}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


class FileCheckpoint:
    """A checkpoint in one file: written to a temporary file beside it, fsynced, then renamed over it.

    `load()` returns None when the file is absent, or (with the reason in `reason`) when it cannot be read;
    `resume=False` never reads it, so a fresh run replaces what is there.
    """

    def __init__(self, path: str | Path, *, resume: bool = True) -> None:
        self.path = Path(path)
        self.resume = resume
        self.reason: str | None = None

    def load(self) -> dict[str, Any] | None:
        self.reason = None
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # left by a writer killed mid-write
            stale.unlink(missing_ok=True)
        if not self.resume or not self.path.exists():
            return None
        import torch

        try:
            # weights_only: a checkpoint is data, never code, even from a shared store.
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
            text = str(e).strip()
            detail = text.splitlines()[0].split(". ")[0][:160] if text else type(e).__name__
            self.reason = f"checkpoint {self.path} cannot be read (truncated or corrupt: {detail})"
            return None
        if not isinstance(state, dict):
            self.reason = f"checkpoint {self.path} holds a {type(state).__name__}, not a training state"
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            torch.save(state, tmp)
            _fsync(tmp)
            os.replace(tmp, self.path)  # atomic: a reader sees the old file or the new one, never half of one
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync(self.path.parent)  # make the rename itself durable


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def usable_state(hook: Checkpointer | None, config: TrainConfig | Any, kind: str,
                 required: tuple[str, ...]) -> tuple[dict[str, Any] | None, str | None]:
    """`hook.load()` checked against this run: (state, None), (None, None) when there is none, or (None, reason)."""
    if hook is None:
        return None, None
    state = hook.load()
    if state is None:
        return None, getattr(hook, "reason", None)
    if (not isinstance(state, dict) or state.get("format") != FORMAT or state.get("kind") != kind
            or any(k not in state for k in required)):
        return None, f"the checkpoint is not a {kind} training state of format {FORMAT}"
    if state.get("config_hash") != config_hash(config):
        return None, (f"the checkpoint is from another config (hash {state.get('config_hash')}, "
                      f"this run's is {config_hash(config)})")
    history = state.get("history")
    fields = {f.name for f in dataclasses.fields(EpochRecord)}
    if (not isinstance(history, list) or len(history) != state.get("epoch")
            or any(not isinstance(r, dict) or "epoch" not in r or not set(r) <= fields for r in history)):
        return None, "the checkpoint's history does not match its epoch count or the epoch record's fields"
    return state, None


def base_state(config: TrainConfig | Any, kind: str, result: TrainResult, epoch: int) -> dict[str, Any]:
    """The fields every objective's state carries: format, kind, config hash, epochs done and their history."""
    history = [dataclasses.asdict(r) for r in result.history[:epoch]]
    return {"format": FORMAT, "kind": kind, "config_hash": config_hash(config), "epoch": epoch, "history": history}


def replay(state: dict[str, Any], result: TrainResult, on_epoch: EpochCallback | None) -> bool:
    """Pass the restored epochs to `on_epoch` again, in order; True when a StopTraining there ended the run."""
    result.resumed_from_epoch = state["epoch"]
    return any(result.end_epoch(EpochRecord(**r), on_epoch, None) for r in state["history"])


class SaveClock:
    """Epoch-end saves no more often than every `interval` seconds; after the last epoch, always."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = time.monotonic()

    def due(self, last_epoch: bool) -> bool:
        return last_epoch or time.monotonic() - self._last >= self.interval

    def saved(self) -> None:
        self._last = time.monotonic()


def save_quietly(hook: Checkpointer, make_state: Callable[[], dict[str, Any]], clock: SaveClock) -> None:
    """Save; a failed write is logged, not raised: losing a checkpoint must not lose the run."""
    try:
        hook.save(make_state())
    except OSError as e:
        log.warning("could not write a checkpoint (training goes on without it): %s", e)
        return
    clock.saved()


def note_ignored(result: TrainResult, reason: str | None) -> None:
    """Record and log why a checkpoint was not used; the run starts from scratch."""
    if reason is not None:
        result.checkpoint_ignored = reason
        log.warning("%s; starting from scratch", reason)


CIFAR_KIND = "cifar10-resnet18"
CIFAR_KEYS = ("epoch", "history", "model", "optimizer", "schedule", "loader", "rng", "first_loss", "partial")


@dataclasses.dataclass
class Resumed:
    """Where `train` carries on: the next epoch (past the last one when the replay ended the run)."""

    next_epoch: int = 1
    first_loss: Any = None  # the first batch's loss, a device tensor: the divergence reference
    partial: dict[str, Any] | None = None  # running totals of an epoch stopped mid-way


class TrainingCheckpoint:
    """What `train` saves and restores through a `Checkpointer`; with no hook every method does nothing."""

    def __init__(self, hook: Checkpointer | None, config: TrainConfig, interval: float, *, model: Any,
                 optimizer: Any, schedule: Any, loader: Any, result: TrainResult) -> None:
        self.hook, self.config, self.result = hook, config, result
        self.model, self.optimizer, self.schedule, self.loader = model, optimizer, schedule, loader
        self.device = loader.device
        self.clock = SaveClock(interval)
        self._partial: dict[str, Any] | None = None

    def restore(self, on_epoch: EpochCallback | None) -> Resumed:
        """Load and restore a usable state, replaying its epochs to `on_epoch`; a fresh start otherwise."""
        import torch

        state, reason = usable_state(self.hook, self.config, CIFAR_KIND, CIFAR_KEYS)
        if state is not None and _shapes(state["model"]) != _shapes(self.model.state_dict()):
            state, reason = None, "the checkpoint's weights do not fit this model"
        note_ignored(self.result, reason)
        if state is None:
            return Resumed()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        rng = state["rng"]
        if rng["device_type"] == self.device.type:
            self.loader.load_state_dict(state["loader"])
            torch.set_rng_state(rng["cpu"])
            if self.device.type == "cuda" and rng["cuda"] is not None:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:
            # Generator states do not carry across device types: a deterministic, but different, batch order.
            log.warning("checkpoint written on %s, resumed on %s: the batch order differs from an uninterrupted "
                        "run from here on", rng["device_type"], self.device.type)
            self.loader.generator.manual_seed(self.config.seed * 1_000_003 + state["epoch"])
            loader_state = {**state["loader"], "generator": self.loader.generator.get_state()}
            self.loader.load_state_dict(loader_state)
        first = state["first_loss"]
        partial = state["partial"]
        if partial is not None:
            partial = {**partial, "loss_sum": partial["loss_sum"].to(self.device),
                       "correct": partial["correct"].to(self.device)}
        self._partial = partial
        log.info("resuming from epoch %d%s", state["epoch"],
                 f", batch {self.loader.next_batch}" if partial is not None else "")
        ended = replay(state, self.result, on_epoch)
        next_epoch = self.config.epochs + 1 if ended else state["epoch"] + 1
        return Resumed(next_epoch, first.to(self.device) if first is not None else None, partial)

    def epoch_totals(self) -> tuple[Any, Any, int, float]:
        """(loss sum, correct, seen, seconds) so far in this epoch: zeros, or those of a restored one."""
        import torch

        partial, self._partial = self._partial, None
        if partial is not None:
            return partial["loss_sum"], partial["correct"], partial["seen"], partial["seconds"]
        return (torch.zeros((), device=self.device), torch.zeros((), device=self.device, dtype=torch.long), 0, 0.0)

    def epoch_end(self, epoch: int, first_loss: Any) -> None:
        """Save after epoch `epoch` when the interval has passed, and always after the last epoch."""
        if self.hook is not None and self.clock.due(epoch == self.config.epochs):
            save_quietly(self.hook, lambda: self.state(epoch, first_loss, None), self.clock)

    def stopped(self, epochs_done: int, first_loss: Any, partial: dict[str, Any] | None = None) -> None:
        """Save now: a callback stopped the run, at an epoch end or (with the running totals) mid-epoch."""
        if self.hook is not None:
            save_quietly(self.hook, lambda: self.state(epochs_done, first_loss, partial), self.clock)

    def state(self, epoch: int, first_loss: Any, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        """The state as saved after `epoch` epochs (with `partial`: stopped mid-way through the next)."""
        import torch

        cuda = self.device.type == "cuda"
        rng = {"device_type": self.device.type, "cpu": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(self.device) if cuda else None}
        return {**base_state(self.config, CIFAR_KIND, self.result, epoch),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "loader": self.loader.state_dict(), "rng": rng,
                "first_loss": first_loss, "partial": partial}


def _shapes(weights: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in weights.items()}

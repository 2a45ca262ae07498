"""Checkpoints of the CIFAR objective: a stopped run resumes exactly, and bad checkpoints never stop a run."""

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from hpsearch.objectives.checkpoint import FileCheckpoint, config_hash
from hpsearch.objectives.config import SCHEDULER_NAMES, TrainConfig
from hpsearch.objectives.result import EpochRecord, StopTraining, TrainResult
from hpsearch.objectives.schedules import LRSchedule
from hpsearch.objectives.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # bit-exactness holds for a given thread count


class Preempted(Exception):
    """What a caller raises from a callback to stop the run (as the worker does on SIGTERM)."""


class MemoryCheckpoint:
    """A keeper in memory: a deep copy of each state saved, as the contract asks."""

    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def load(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.saved[-1]) if self.saved else None

    def save(self, state: dict[str, Any]) -> None:
        self.saved.append(copy.deepcopy(state))


def curve(result: TrainResult) -> list[dict[str, Any]]:
    """The history without the wall-clock seconds: what must be bit-identical after a resume."""
    return [{k: v for k, v in dataclasses.asdict(r).items() if k != "seconds"} for r in result.history]


def stop_after_epoch(n: int):
    def on_epoch(record: EpochRecord) -> None:
        if record.epoch == n:
            raise Preempted

    return on_epoch


@pytest.fixture(scope="module")
def four_epochs(cifar_dir: Path) -> tuple[TrainConfig, TrainResult]:
    config = TrainConfig(width=4, epochs=4, batch_size=32, val_fraction=0.25, device="cpu", lr=0.05,
                         scheduler="cosine", warmup_epochs=0.5, channels_last=False, cutout=8)
    return config, train(config, data_dir=cifar_dir)


@pytest.mark.slow
def test_a_run_stopped_at_epoch_2_of_4_resumes_to_the_same_history(
        cifar_dir: Path, four_epochs: tuple[TrainConfig, TrainResult], tmp_path: Path) -> None:
    config, full = four_epochs
    with pytest.raises(Preempted):
        train(config, data_dir=cifar_dir, on_epoch=stop_after_epoch(2), checkpoint=FileCheckpoint(tmp_path / "c.pt"))
    reported: list[int] = []
    resumed = train(config, data_dir=cifar_dir, on_epoch=lambda r: reported.append(r.epoch),
                    checkpoint=FileCheckpoint(tmp_path / "c.pt"))
    assert resumed.resumed_from_epoch == 2 and resumed.status == "completed"
    assert reported == [1, 2, 3, 4]  # the pruner sees the whole curve: no gap, no repeat
    assert curve(resumed) == curve(full)


@pytest.mark.slow
def test_a_run_stopped_mid_epoch_resumes_at_the_next_batch(
        cifar_dir: Path, four_epochs: tuple[TrainConfig, TrainResult], tmp_path: Path) -> None:
    config, full = four_epochs
    steps: list[tuple[int, int]] = []

    def on_step(batch: int, total: int) -> None:
        steps.append((batch, total))
        if len(steps) == 2 * total + 4:  # the fourth batch of epoch 3
            raise Preempted

    with pytest.raises(Preempted):
        train(config, data_dir=cifar_dir, on_step=on_step, checkpoint=FileCheckpoint(tmp_path / "c.pt"))
    batches: list[int] = []
    resumed = train(config, data_dir=cifar_dir, on_step=lambda b, n: batches.append(b),
                    checkpoint=FileCheckpoint(tmp_path / "c.pt"))
    total = steps[0][1]
    assert resumed.resumed_from_epoch == 2 and batches[:2] == [4, 5]
    assert len(batches) == 2 * total - 4  # the rest of epoch 3, then epoch 4: no batch trained twice
    assert curve(resumed) == curve(full)


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_every_schedule_resumes_its_lr_trajectory_exactly(scheduler: str) -> None:
    config = TrainConfig(scheduler=scheduler, epochs=6, warmup_epochs=1, step_epochs=2, cycle_epochs=2,
                         plateau_patience=0, device="cpu")
    accuracies = [0.3, 0.5, 0.5, 0.4, 0.6, 0.6]  # flat and falling epochs make the plateau schedule cut

    def run(stop_at: int | None, state: dict[str, Any] | None = None) -> tuple[list[float], dict[str, Any]]:
        model = torch.nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        schedule = LRSchedule(optimizer, config, steps_per_epoch=5)
        start = 0
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            start = state["epoch"]
        lrs = []
        for epoch in range(start, config.epochs):
            for _ in range(5):
                optimizer.step()
                schedule.after_step()
                lrs.append(schedule.lr)
            schedule.after_epoch(accuracies[epoch])
            lrs.append(schedule.lr)
            if epoch + 1 == stop_at:
                saved = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch + 1}
                return lrs, copy.deepcopy(saved)
        return lrs, {}

    full, _ = run(None)
    head, state = run(3)
    tail, _ = run(None, state)
    assert head + tail == full
    assert len(set(full)) > 2  # the schedule does move


@pytest.mark.slow
@pytest.mark.parametrize(("scheduler", "changes"), [("plateau", {"plateau_patience": 0}),
                                                    ("onecycle", {}), ("step", {"step_epochs": 1})])
def test_other_schedules_resume_training_exactly(cifar_dir: Path, scheduler: str, changes: dict[str, Any]) -> None:
    config = TrainConfig(width=4, epochs=3, batch_size=32, val_fraction=0.25, device="cpu", lr=0.05,
                         scheduler=scheduler, channels_last=False, **changes)
    full = train(config, data_dir=cifar_dir)
    keeper = MemoryCheckpoint()
    with pytest.raises(Preempted):
        train(config, data_dir=cifar_dir, on_epoch=stop_after_epoch(1), checkpoint=keeper)
    assert curve(train(config, data_dir=cifar_dir, checkpoint=keeper)) == curve(full)


@pytest.mark.slow
def test_saves_wait_for_the_interval_but_never_skip_the_last_epoch(
        cifar_dir: Path, four_epochs: tuple[TrainConfig, TrainResult]) -> None:
    config, full = four_epochs
    rare, every = MemoryCheckpoint(), MemoryCheckpoint()
    train(config, data_dir=cifar_dir, checkpoint=rare, checkpoint_interval=3600)
    train(config, data_dir=cifar_dir, checkpoint=every, checkpoint_interval=0)
    assert [s["epoch"] for s in rare.saved] == [4] and [s["epoch"] for s in every.saved] == [1, 2, 3, 4]
    # A finished run's checkpoint holds its trained weights: resuming it trains nothing and repeats the result.
    again = train(config, data_dir=cifar_dir, checkpoint=rare, evaluate_test=True)
    assert again.resumed_from_epoch == 4 and curve(again) == curve(full) and again.test_acc is not None


def test_a_pruned_or_diverged_run_saves_nothing_more(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    def prune(record: EpochRecord) -> None:
        raise StopTraining("pruned")

    keeper = MemoryCheckpoint()
    assert train(tiny_config, data_dir=cifar_dir, on_epoch=prune, checkpoint=keeper).status == "stopped"
    diverging = tiny_config.replace(lr=50.0, epochs=3, warmup_epochs=0)
    assert train(diverging, data_dir=cifar_dir, checkpoint=keeper, checkpoint_interval=3600).status == "diverged"
    assert keeper.saved == []


@pytest.mark.slow
def test_a_pruner_that_stops_during_the_replay_ends_the_run_there(
        cifar_dir: Path, four_epochs: tuple[TrainConfig, TrainResult]) -> None:
    config, _ = four_epochs
    keeper = MemoryCheckpoint()
    with pytest.raises(Preempted):
        train(config, data_dir=cifar_dir, on_epoch=stop_after_epoch(3), checkpoint=keeper)

    def prune_at_2(record: EpochRecord) -> None:
        if record.epoch == 2:
            raise StopTraining("pruned at epoch 2")

    result = train(config, data_dir=cifar_dir, on_epoch=prune_at_2, checkpoint=keeper)
    assert result.status == "stopped" and [r.epoch for r in result.history] == [1, 2]


@pytest.mark.slow
def test_a_truncated_checkpoint_restarts_from_scratch_with_the_reason(
        cifar_dir: Path, four_epochs: tuple[TrainConfig, TrainResult], tmp_path: Path) -> None:
    config, full = four_epochs
    path = tmp_path / "c.pt"
    with pytest.raises(Preempted):
        train(config, data_dir=cifar_dir, on_epoch=stop_after_epoch(2), checkpoint=FileCheckpoint(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = train(config, data_dir=cifar_dir, checkpoint=FileCheckpoint(path))
    assert result.resumed_from_epoch is None and "cannot be read" in result.checkpoint_ignored
    assert curve(result) == curve(full)


@pytest.mark.slow
def test_a_checkpoint_of_another_config_restarts_from_scratch_with_the_reason(
        cifar_dir: Path, four_epochs: tuple[TrainConfig, TrainResult], tmp_path: Path) -> None:
    config, full = four_epochs
    path = tmp_path / "c.pt"
    with pytest.raises(Preempted):
        train(config.replace(lr=0.04), data_dir=cifar_dir, on_epoch=stop_after_epoch(2),
              checkpoint=FileCheckpoint(path))
    result = train(config, data_dir=cifar_dir, checkpoint=FileCheckpoint(path))
    assert result.resumed_from_epoch is None and "another config" in result.checkpoint_ignored
    assert curve(result) == curve(full)


def test_the_config_hash_ignores_only_where_the_run_executes() -> None:
    base = TrainConfig()
    assert config_hash(base) == config_hash(base.replace(device="cpu"))
    assert config_hash(base) != config_hash(base.replace(lr=0.2))
    assert config_hash(base) != config_hash(base.replace(seed=1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_run_resumes_within_floating_point_noise(cifar_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(width=8, epochs=4, batch_size=32, val_fraction=0.25, device="cuda", lr=0.05,
                         scheduler="cosine", warmup_epochs=0.5)
    full = train(config, data_dir=cifar_dir)
    with pytest.raises(Preempted):
        train(config, data_dir=cifar_dir, on_epoch=stop_after_epoch(2), checkpoint=FileCheckpoint(tmp_path / "c.pt"))
    resumed = train(config, data_dir=cifar_dir, checkpoint=FileCheckpoint(tmp_path / "c.pt"))
    assert resumed.resumed_from_epoch == 2 and [r.lr for r in resumed.history] == [r.lr for r in full.history]
    losses = {"resumed": [round(r.train_loss, 4) for r in resumed.history],
              "full": [round(r.train_loss, 4) for r in full.history]}
    for a, b in zip(resumed.history, full.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=0.05), losses

"""`FileCheckpoint`: written whole or not at all; what cannot be read is reported, never raised."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hpsearch.objectives.checkpoint import FileCheckpoint
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import EpochRecord
from hpsearch.objectives.synthetic import synthetic_train


def test_a_state_round_trips_with_its_tensors(tmp_path: Path) -> None:
    keeper = FileCheckpoint(tmp_path / "sub" / "c.pt")
    keeper.save({"epoch": 3, "w": torch.arange(5.0), "history": [{"epoch": 1}], "big": 2**100})
    state = keeper.load()
    assert state["epoch"] == 3 and torch.equal(state["w"], torch.arange(5.0)) and state["big"] == 2**100
    assert keeper.reason is None and os.listdir(tmp_path / "sub") == ["c.pt"]


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = FileCheckpoint(tmp_path / "c.pt")
    keeper.save({"epoch": 1})

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the fault: the new file never reaches the disk
    with pytest.raises(OSError):
        keeper.save({"epoch": 2})
    monkeypatch.undo()
    assert keeper.load()["epoch"] == 1 and os.listdir(tmp_path) == ["c.pt"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not a dict"])
def test_an_unreadable_checkpoint_loads_as_none_with_a_reason(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    FileCheckpoint(path).save({"epoch": 1, "w": torch.zeros(1000)})
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "garbage":
        path.write_bytes(b"\x00junk" * 50)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save([1, 2, 3], path)
    keeper = FileCheckpoint(path)
    assert keeper.load() is None and str(path) in keeper.reason


def test_no_file_is_no_checkpoint_and_no_complaint(tmp_path: Path) -> None:
    keeper = FileCheckpoint(tmp_path / "absent.pt")
    assert keeper.load() is None and keeper.reason is None
    FileCheckpoint(tmp_path / "c.pt").save({"epoch": 1})
    assert FileCheckpoint(tmp_path / "c.pt", resume=False).load() is None


WRITER = """
import sys, torch
from hpsearch.objectives.checkpoint import FileCheckpoint
keeper = FileCheckpoint(sys.argv[1])
for i in range(1_000_000):
    # 16 MB: a write long enough to be killed in the middle of one
    keeper.save({"n": i, "w": torch.full((4_000_000,), float(i))})
    print(i, flush=True)
"""


@pytest.mark.slow
def test_a_writer_killed_at_any_moment_leaves_a_readable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    for delay in (0.0, 0.05, 0.13):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            proc.stdout.readline()  # one checkpoint is complete
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
        state = FileCheckpoint(path).load()
        assert state is not None and len(state["w"]) == 4_000_000 and bool((state["w"] == state["n"]).all())
        assert os.listdir(tmp_path) == ["c.pt"]  # a killed writer's temporary file is cleared on the next load


def test_the_synthetic_objective_resumes_exactly(tmp_path: Path) -> None:
    config = TrainConfig(epochs=6, lr=0.05)
    full = synthetic_train(config)

    def preempt_at_3(record: EpochRecord) -> None:
        if record.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthetic_train(config, on_epoch=preempt_at_3, checkpoint=FileCheckpoint(tmp_path / "s.pt"))
    reported: list[int] = []
    resumed = synthetic_train(config, on_epoch=lambda r: reported.append(r.epoch),
                              checkpoint=FileCheckpoint(tmp_path / "s.pt"))
    assert resumed.history == full.history and resumed.resumed_from_epoch == 3 and reported == [1, 2, 3, 4, 5, 6]
    other = synthetic_train(config.replace(lr=0.06), checkpoint=FileCheckpoint(tmp_path / "s.pt"))
    assert other.resumed_from_epoch is None and "another config" in other.checkpoint_ignored

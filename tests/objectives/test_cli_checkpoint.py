"""`hpsearch train --out DIR` checkpoints into DIR; `--resume` carries an interrupted run on to the same result."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from hpsearch.objectives.checkpoint import FileCheckpoint
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import TrainResult
from hpsearch.search.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")  # bit-exactness holds for a given thread count


def histories(out: Path) -> list[list[dict[str, Any]]]:
    """Per seed, the history in metrics.json without the wall-clock seconds."""
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    return [[{k: v for k, v in r.items() if k != "seconds"} for r in run["history"]] for run in runs]


def run_info(out: Path, key: str) -> list[Any]:
    return [run[key] for run in json.loads((out / "metrics.json").read_text())["runs"]]


@pytest.fixture(scope="module")
def setup(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 4-epoch config file, and the output of its uninterrupted run."""
    folder = tmp_path_factory.mktemp("cli-checkpoint")
    config = TrainConfig(width=4, epochs=4, batch_size=32, val_fraction=0.25, device="cpu", lr=0.05,
                         scheduler="cosine", warmup_epochs=0.5, channels_last=False)
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    full = folder / "full"
    assert main(["train", "--config", str(path), "--data-dir", str(cifar_dir), "--out", str(full)]) == 0
    return path, full, cifar_dir


def train_args(config: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(config), "--data-dir", str(data), "--out", str(out), *extra]


@pytest.mark.slow
def test_train_interrupted_at_epoch_2_of_4_resumes_to_the_same_history(
        setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, full, data = setup
    end_epoch = TrainResult.end_epoch

    def interrupted_after_epoch_2(self: TrainResult, record: Any, *args: Any) -> bool:
        ended = end_epoch(self, record, *args)
        if record.epoch == 2:
            raise KeyboardInterrupt  # the fault: Ctrl-C right after epoch 2
        return ended

    monkeypatch.setattr(TrainResult, "end_epoch", interrupted_after_epoch_2)
    out = tmp_path / "out"
    assert main(train_args(config, data, out)) == 130
    monkeypatch.undo()
    assert FileCheckpoint(out / "checkpoint-seed0.pt").load()["epoch"] == 2 and not (out / "metrics.json").exists()
    assert main(train_args(config, data, out, "--resume")) == 0
    assert histories(out) == histories(full) and run_info(out, "resumed_from_epoch") == [2]
    assert FileCheckpoint(out / "checkpoint-seed0.pt").load()["epoch"] == 4  # the finished run's weights


@pytest.mark.slow
def test_without_resume_an_existing_checkpoint_is_replaced(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    config, full, data = setup
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint-seed0.pt").write_bytes(b"an old checkpoint")
    assert main(train_args(config, data, out)) == 0
    assert histories(out) == histories(full) and run_info(out, "resumed_from_epoch") == [None]
    assert FileCheckpoint(out / "checkpoint-seed0.pt").load()["epoch"] == 4


@pytest.mark.slow
def test_a_truncated_checkpoint_restarts_from_scratch_and_says_why(
        setup: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config, full, data = setup
    out = tmp_path / "out"
    out.mkdir()
    whole = (full / "checkpoint-seed0.pt").read_bytes()
    (out / "checkpoint-seed0.pt").write_bytes(whole[: len(whole) // 3])
    assert main(train_args(config, data, out, "--resume")) == 0
    assert histories(out) == histories(full) and run_info(out, "resumed_from_epoch") == [None]
    assert "cannot be read" in run_info(out, "checkpoint_ignored")[0]
    assert "cannot be read" in caplog.text


@pytest.mark.slow
def test_a_checkpoint_of_another_config_restarts_from_scratch_and_says_why(
        setup: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config, full, data = setup
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "epochs": 1, "lr": 0.02}))
    out = tmp_path / "out"
    assert main(train_args(other, data, out)) == 0
    assert main(train_args(config, data, out, "--resume")) == 0
    assert histories(out) == histories(full)
    assert "another config" in run_info(out, "checkpoint_ignored")[0]
    assert "another config" in caplog.text


@pytest.mark.slow
def test_sigterm_stops_train_after_a_batch_and_resume_finishes_it_exactly(cifar_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(width=4, epochs=6, batch_size=32, val_fraction=0.25, device="cpu", lr=0.05,
                         scheduler="onecycle", channels_last=False)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    full, out = tmp_path / "full", tmp_path / "out"
    checkpoint = out / "checkpoint-seed0.pt"
    proc = subprocess.Popen([sys.executable, "-m", "hpsearch.search", *train_args(path, cifar_dir, out),
                             "--checkpoint-interval", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # the thread count of this process
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err
    assert f"saved a checkpoint in {checkpoint}" in " ".join(err.split()) and "--resume" in err, err
    stopped = torch.load(checkpoint, weights_only=True)
    assert 1 <= stopped["epoch"] < config.epochs
    assert main(train_args(path, cifar_dir, full)) == 0
    assert main(train_args(path, cifar_dir, out, "--resume")) == 0
    assert histories(out) == histories(full) and run_info(out, "resumed_from_epoch") == [stopped["epoch"]]

"""`hpsearch worker --fuse K` on tiny CIFAR-format files: a fused worker ends the stage with its exact budget,
every trial reported, pruned and told on its own, refilled slots, and trials that cannot fuse run alone."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from hpsearch.objectives import fused_step
from hpsearch.search.cli import main
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.campaign import SLOT
from hpsearch.search.run.fused_runner import device_warning
from hpsearch.search.run.worker import WorkerOptions, work
from tests.campaign.faults import all_trials, running_trial_of
from tests.campaign.helpers import PLAN, start_workers, wait_all, write_plan
from tests.cifar_files import write_cifar

BASE = {"width": 4, "batch_size": 16, "val_fraction": 0.25, "data_fraction": 0.5, "device": "cpu",
        "channels_last": False}
N_TRIALS = 7
pytestmark = pytest.mark.slow
SPACE = {"lr": {"type": "float", "low": 1.0e-3, "high": 3.0, "log": True},
         "momentum": {"type": "float", "low": 0.5, "high": 0.99},
         "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-1, "log": True}}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One thread: on a busy machine, torch's spinning thread pool makes a tiny network's steps crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fused_campaign(tmp_path: Path, n_trials: int, epochs: int, **base: object) -> tuple[str, Path]:
    journal = str(tmp_path / "c.journal")
    stages = [{**PLAN["stages"][0], "n_trials": n_trials, "overrides": {"epochs": epochs},
               "sampler": "qmc", "pruner": {"name": "median", "n_startup_trials": 2}}]
    plan = write_plan(tmp_path / "plan.yaml", objective="cifar10-resnet18", base={**BASE, **base}, stages=stages,
                      space=SPACE)
    assert main(["init", str(plan), "--storage", journal]) == 0
    return journal, write_cifar(tmp_path / "cifar")


def test_a_fused_worker_runs_the_stage_with_exact_budgets(tmp_path: Path) -> None:
    journal, cifar = fused_campaign(tmp_path, N_TRIALS, 3)
    ran = work("syn", WorkerOptions(storage=journal, data_dir=cifar, fuse=3), threading.Event())
    trials = all_trials(journal)
    assert ran == N_TRIALS and len(trials) == N_TRIALS  # one trial per slot: none lost, none twice
    assert sorted(t.system_attrs[SLOT] for t in trials) == list(range(N_TRIALS))
    states = {t.state for t in trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED} and TrialState.PRUNED in states
    for t in trials:  # each trial reported, pruned and told through its own Optuna trial
        rec = TrialRecord.of(t)
        assert rec.worker["fused"] == 3  # more trials than slots: ended slots took the next ones
        assert t.intermediate_values == {r.epoch: pytest.approx(r.val_acc) for r in rec.history}
        assert rec.cost is not None and rec.cost["epochs"] == len(rec.history)
        if t.state == TrialState.COMPLETE:
            assert rec.status == "completed" and len(rec.history) == 3 and t.value == rec.history[-1].val_acc
        else:
            assert rec.status in ("stopped", "diverged") and rec.pruned_reason


def test_trials_that_cannot_fuse_run_alone_and_say_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal, cifar = fused_campaign(tmp_path, 2, 1, optimizer="nadam")
    with caplog.at_level(logging.INFO, logger="hpsearch.search.run.fused_runner"):
        assert work("syn", WorkerOptions(storage=journal, data_dir=cifar, fuse=3), threading.Event()) == 2
    trials = all_trials(journal)
    assert all(t.state.is_finished() and "fused" not in TrialRecord.of(t).worker for t in trials)
    said = sorted(r.getMessage() for r in caplog.records if "not fused" in r.getMessage())
    assert said == [f"trial {t.number} of coarse runs alone, not fused: optimizer 'nadam' is not covered by the "
                    "fused step (sgd, adamw are)" for t in sorted(trials, key=lambda t: t.number)]


def test_fuse_says_once_why_a_synthetic_stage_runs_one_at_a_time(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    journal = str(tmp_path / "c.journal")
    stages = [{**PLAN["stages"][0], "n_trials": 4, "overrides": {"epochs": 2}}]
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=stages)), "--storage", journal]) == 0
    with caplog.at_level(logging.INFO, logger="hpsearch.search.run.fused_runner"):
        assert work("syn", WorkerOptions(storage=journal, fuse=4), threading.Event()) == 4
    said = [r.getMessage() for r in caplog.records if "--fuse" in r.getMessage()]
    assert said == ["--fuse: objective 'synthetic' has no fused trainer (only cifar10-resnet18 does); its trials "
                    "run one at a time"]


def test_a_terminated_fused_worker_hands_every_fused_trial_back(tmp_path: Path) -> None:
    journal, cifar = fused_campaign(tmp_path, 3, 40)
    (worker,) = start_workers(1, journal, extra=("--fuse", "3", "--data-dir", str(cifar), "--no-artifacts"))
    running_trial_of(journal, worker.pid)
    deadline = time.monotonic() + 120
    while sum(bool(t.intermediate_values) for t in all_trials(journal)) < 3:  # the three train fused
        assert time.monotonic() < deadline, "the fused trials never reported an epoch"
        time.sleep(0.1)
    os.killpg(worker.pid, signal.SIGTERM)
    assert wait_all([worker]) == [128 + signal.SIGTERM]
    trials = all_trials(journal)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(failed) == 3 and all("SIGTERM" in t.user_attrs["fail_reason"] for t in failed)
    # Each handed back through its own retry, in its own slot: the stage's budget stays exact.
    assert sorted(t.system_attrs[SLOT] for t in waiting) == sorted(t.system_attrs[SLOT] for t in failed) == [0, 1, 2]


def test_a_crashed_fused_group_hands_its_trials_back_and_the_worker_goes_on(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    journal, cifar = fused_campaign(tmp_path, 3, 1)
    step = fused_step.FusedStep.__call__
    crashes = [RuntimeError("CUDA out of memory (injected)")]

    def crash_once(self: fused_step.FusedStep, x: torch.Tensor, y: torch.Tensor) -> None:
        if crashes:
            raise crashes.pop()
        step(self, x, y)

    monkeypatch.setattr(fused_step.FusedStep, "__call__", crash_once)
    work("syn", WorkerOptions(storage=journal, data_dir=cifar, fuse=3), threading.Event())
    trials = all_trials(journal)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 3 and all("out of memory (injected)" in t.user_attrs["fail_reason"] for t in failed)
    done = [t for t in trials if t.state.is_finished() and t.state != TrialState.FAIL]
    assert sorted(t.system_attrs[SLOT] for t in done) == [0, 1, 2]  # each retried once, fused again


def test_fusing_on_a_cuda_device_warns_that_packing_is_faster_there() -> None:
    assert "--per-device K with NVIDIA MPS" in (device_warning("cuda:1") or "")
    assert device_warning("cpu") is None

"""Preempted trials resume from their checkpoint: SIGKILL and SIGTERM on real worker processes, PostgreSQL and
the journal file; broken checkpoints are ignored with the reason recorded; the final stage's weights export."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import optuna
import optuna_dashboard
import pytest
import torch
import yaml
from optuna.trial import TrialState

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.train import evaluate_weights
from hpsearch.search.cli import main
from hpsearch.search.run.campaign import DUPLICATE, SLOT, Campaign
from hpsearch.search.run.checkpoints import POINTER
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from tests.campaign.faults import SMALL_STAGES, all_trials, duplicates, pause_in_trial, study_of
from tests.campaign.helpers import PLAN, start_workers, wait_all, write_plan
from tests.campaign.test_workers import STEADY_SPACE
from tests.cifar_files import write_cifar
from tests.storage.test_storage_proxy import proxy_url  # noqa: F401  (the fixture, for the proxy backend)

pytestmark = pytest.mark.slow

EPOCHS = 6
# Long trials in the first stage, a pruner that never prunes them: the killed trial's retry runs to the end.
# One stage: what happens after a trial's retry is the other campaign tests' business.
STAGES = [{**SMALL_STAGES[0], "n_trials": 5, "overrides": {"epochs": EPOCHS},
           "pruner": {"name": "median", "n_startup_trials": 100}}]


def _url(backend: str, pg_url: str, tmp_path: Path, request: pytest.FixtureRequest | None = None) -> str:
    if backend == "proxy":
        assert request is not None
        return request.getfixturevalue("proxy_url")
    return pg_url if backend == "postgresql" else str(tmp_path / "c.journal")


def _checkpointed(url: str, trial_id: int, epoch: int, timeout: float = 60) -> dict:
    """The trial's checkpoint pointer once it has passed `epoch`."""
    storage = open_storage(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pointer = storage.get_trial(trial_id).system_attrs.get(POINTER)
        if pointer and pointer["epoch"] >= epoch:
            return pointer
        time.sleep(0.05)
    raise AssertionError(f"trial id {trial_id} never checkpointed epoch {epoch}")


def _past(epoch: int):
    """Whether a trial's checkpoint has passed `epoch` (for `pause_in_trial`)."""
    return lambda t: (t.system_attrs.get(POINTER) or {}).get("epoch", 0) >= epoch


def _start(url: str, tmp_path: Path, n: int, *extra: str) -> list:
    plan = write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE, stages=STAGES)
    assert main(["init", str(plan), "--storage", url]) == 0
    return start_workers(n, url, sleep=0.25, log_dir=tmp_path,
                         extra=("--artifacts", str(tmp_path / "artifacts"), *extra))


def _exact_budget(url: str) -> None:
    """Every slot of the stage finished exactly once; nothing left waiting or running."""
    storage = open_storage(url)
    view = Campaign.load(storage, "syn").stage(0)
    assert view is not None
    live = [t for t in view.trials if DUPLICATE not in t.system_attrs]
    finished = [t for t in live if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(t.system_attrs[SLOT] for t in finished) == list(range(view.stage.n_trials))
    assert not [t for t in live if t.state in (TrialState.WAITING, TrialState.RUNNING)]


def _retry_of(url: str, trial_id: int):
    stage = study_of(url, trial_id)
    failed = next(t for t in stage if internals.trial_id(t) == trial_id)
    [retry] = [t for t in stage if t.user_attrs.get("retry_of", {}).get("trial") == failed.number]
    return failed, retry


def _whole_curve(trial) -> None:
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == list(range(1, EPOCHS + 1))  # no gap, no repeat
    assert [r["epoch"] for r in trial.user_attrs["history"]] == list(range(1, EPOCHS + 1))


@pytest.mark.parametrize("backend", ["postgresql", "journal", "proxy"])
def test_a_killed_workers_trial_resumes_from_its_checkpoint(backend: str, pg_url: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    url = _url(backend, pg_url, tmp_path, request)
    procs = _start(url, tmp_path, 2, "--checkpoint-interval", "0")
    victim = procs[0]
    trial_id = pause_in_trial(url, victim.pid, _past(2))  # stopped, then killed: its trial cannot end between
    os.killpg(victim.pid, signal.SIGKILL)
    assert wait_all(procs[1:]) == [0]
    _exact_budget(url)
    assert duplicates(url) == []
    failed, retry = _retry_of(url, trial_id)
    saved = failed.system_attrs[POINTER]["epoch"]
    assert saved >= 2 and retry.user_attrs["resumed_from_epoch"] == saved
    _whole_curve(retry)
    assert retry.intermediate_values[saved] == failed.intermediate_values[saved]  # the same run, carried on
    # A finished trial's checkpoint is removed. The kill may leave one file behind: one being written, or the
    # one before it when the kill fell between recording the new checkpoint and removing the old.
    assert len(list((tmp_path / "artifacts").glob("checkpoint-*"))) <= 1


def test_a_stale_trial_with_no_retry_left_loses_its_checkpoint(tmp_path: Path) -> None:
    url = str(tmp_path / "c.journal")
    procs = _start(url, tmp_path, 2, "--checkpoint-interval", "0", "--max-retry", "0")
    victim = procs[0]
    trial_id = pause_in_trial(url, victim.pid, _past(2))
    pointer = _checkpointed(url, trial_id, 2)
    os.killpg(victim.pid, signal.SIGKILL)
    assert wait_all(procs[1:]) == [0]
    [failed] = [t for t in study_of(url, trial_id) if internals.trial_id(t) == trial_id]
    assert failed.state == TrialState.FAIL and not any("retry_of" in t.user_attrs for t in study_of(url, trial_id))
    # The worker that failed it as stale removed what only a retry would have read.
    last = failed.system_attrs[POINTER]["artifact_id"]
    assert pointer["epoch"] <= failed.system_attrs[POINTER]["epoch"]
    assert not (tmp_path / "artifacts" / last).exists()


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_a_terminated_worker_checkpoints_hands_back_and_exits_143(backend: str, pg_url: str, tmp_path: Path) -> None:
    url = _url(backend, pg_url, tmp_path)
    procs = _start(url, tmp_path, 2)  # the default interval: only the stop writes a checkpoint
    victim = procs[0]
    trial_id = pause_in_trial(url, victim.pid, lambda t: bool(t.intermediate_values))
    storage = open_storage(url)
    assert POINTER not in storage.get_trial(trial_id).system_attrs
    os.killpg(victim.pid, signal.SIGTERM)  # handled once the worker resumes
    os.killpg(victim.pid, signal.SIGCONT)
    assert wait_all(procs) == [128 + signal.SIGTERM, 0]
    _exact_budget(url)
    failed, retry = _retry_of(url, trial_id)
    assert failed.state == TrialState.FAIL and "SIGTERM" in failed.user_attrs["fail_reason"]
    saved = failed.system_attrs[POINTER]["epoch"]
    assert saved >= 1 and retry.user_attrs["resumed_from_epoch"] == saved
    _whole_curve(retry)
    stage = next(s for s in storage.get_all_studies()
                 if any(internals.trial_id(t) == trial_id for t in storage.get_all_trials(internals.study_id(s))))
    study = optuna.load_study(study_name=stage.study_name, storage=storage)
    note = optuna_dashboard.get_note(optuna.trial.Trial(study, internals.trial_id(retry)))
    assert f"from epoch {saved} after the worker was stopped (SIGTERM)" in note


def test_a_terminated_trial_with_no_retry_left_loses_its_checkpoint(tmp_path: Path) -> None:
    url = str(tmp_path / "c.journal")
    procs = _start(url, tmp_path, 2, "--max-retry", "0")
    victim = procs[0]
    trial_id = pause_in_trial(url, victim.pid, lambda t: bool(t.intermediate_values))
    storage = open_storage(url)
    os.killpg(victim.pid, signal.SIGTERM)  # handled once the worker resumes
    os.killpg(victim.pid, signal.SIGCONT)
    assert wait_all(procs) == [128 + signal.SIGTERM, 0]
    failed = storage.get_trial(trial_id)
    assert failed.state == TrialState.FAIL and "SIGTERM" in failed.user_attrs["fail_reason"]
    # The stop wrote a checkpoint; with no retry to resume it, its worker removed it on failing the trial.
    assert not (tmp_path / "artifacts" / failed.system_attrs[POINTER]["artifact_id"]).exists()


@pytest.mark.parametrize("damage", ["truncated", "another config"])
def test_a_broken_checkpoint_is_ignored_with_its_reason(damage: str, tmp_path: Path) -> None:
    url = str(tmp_path / "c.journal")
    procs = _start(url, tmp_path, 2, "--checkpoint-interval", "0")
    victim = procs[0]
    trial_id = pause_in_trial(url, victim.pid, _past(2))
    os.killpg(victim.pid, signal.SIGKILL)
    pointer = open_storage(url).get_trial(trial_id).system_attrs[POINTER]
    path = tmp_path / "artifacts" / pointer["artifact_id"]  # the grace period leaves time to damage it
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    else:
        state = torch.load(path, weights_only=True)
        torch.save({**state, "config_hash": "0123456789abcdef"}, path)
    assert wait_all(procs[1:]) == [0]
    _exact_budget(url)
    _, retry = _retry_of(url, trial_id)
    assert "resumed_from_epoch" not in retry.user_attrs
    reason = retry.user_attrs["checkpoint_ignored"]
    assert ("cannot be read" if damage == "truncated" else "another config") in reason
    _whole_curve(retry)


def test_export_weights_reproduce_the_final_stages_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    journal, art, out = str(tmp_path / "c.journal"), tmp_path / "ckpt", tmp_path / "export"
    cifar = write_cifar(tmp_path / "cifar")
    base = {"width": 4, "batch_size": 32, "val_fraction": 0.25, "device": "cpu", "channels_last": False}
    stages = [{**PLAN["stages"][0], "n_trials": 3, "overrides": {"epochs": 1}},
              {"name": "final", "kind": "final", "top": 1, "seeds": 2, "overrides": {"epochs": 2}}]
    plan = write_plan(tmp_path / "plan.yaml", objective="cifar10-resnet18", base=base, stages=stages)
    assert main(["init", str(plan), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal, data_dir=cifar, checkpoints=art), threading.Event())
    assert main(["export", "syn", "--storage", journal, "--out", str(out), "--weights",
                 "--checkpoints", str(art)]) == 0
    exported = yaml.safe_load((out / "rank-1.yaml").read_text())
    config = TrainConfig.from_yaml_file(out / "rank-1.yaml")
    seeds, values = exported["provenance"]["seeds"], exported["result"]["values"]
    assert sorted(p.name for p in out.glob("*.pt")) == sorted(f"rank-1.seed-{s}.pt" for s in seeds)
    for seed, value in zip(seeds, values, strict=True):
        weights = torch.load(out / f"rank-1.seed-{seed}.pt", weights_only=True)
        CifarResNet18(10, config.width).load_state_dict(weights)  # the model objectives/model.py builds
        run = TrainConfig.from_dict({**config.to_dict(), "seed": seed})
        assert evaluate_weights(run, weights, data_dir=cifar)["acc"] == pytest.approx(value, abs=1e-6)
    assert not list(art.glob("checkpoint-*"))  # only the weights stay
    capsys.readouterr()
    assert main(["export", "syn", "--storage", journal, "--out", str(out), "--weights",
                 "--checkpoints", str(tmp_path / "elsewhere")]) == 2
    assert "--checkpoints" in capsys.readouterr().err
    assert [t for t in all_trials(journal) if t.state == TrialState.COMPLETE]  # nothing lost

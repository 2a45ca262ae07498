"""Build synthetic campaigns, run real worker processes against them, and check what the storage holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from optuna.trial import TrialState

from hpsearch.search.plan.narrow import narrow
from hpsearch.search.plan.space import space_to_json
from hpsearch.search.run.campaign import DUPLICATE, SLOT, Campaign, load_stored_plan, rank
from hpsearch.storage import open_storage

PLAN = {
    "name": "syn",
    "objective": "synthetic",
    "seed": 0,
    "base": {"width": 16, "data_fraction": 0.2, "batch_size": 32, "val_fraction": 0.25, "device": "cpu"},
    "space": {
        "lr": {"type": "float", "low": 1.0e-3, "high": 3.0, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
        "momentum": {"type": "float", "low": 0.5, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
        "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-1, "log": True},
    },
    "stages": [
        {"name": "coarse", "n_trials": 12, "overrides": {"epochs": 3}, "sampler": "random",
         "pruner": {"name": "median", "n_startup_trials": 3}},
        {"name": "fine", "n_trials": 8, "overrides": {"epochs": 4}, "sampler": {"name": "tpe", "n_startup_trials": 3},
         "narrow": {"top_k": 4, "margin": 0.2, "min_width": 0.05}, "carry": 2},
        {"name": "final", "kind": "final", "top": 2, "seeds": 2, "overrides": {"epochs": 5}},
    ],
}


def write_plan(path: Path, **changes: object) -> Path:
    path.write_text(yaml.safe_dump({**PLAN, **changes}, sort_keys=False))
    return path


def worker_env(sleep: float) -> dict[str, str]:
    return {**os.environ, "HPSEARCH_SYNTHETIC_SLEEP": str(sleep), "PYTHONUNBUFFERED": "1"}


def start_workers(n: int, storage: str, sleep: float = 0.02, campaign: str = "syn", log_dir: Path | None = None,
                  extra: tuple[str, ...] = (), curves: bool = False) -> list[subprocess.Popen]:
    """n independent `hpsearch worker` commands, each in its own process group (like separate machines).

    Without curve images unless `curves`: drawing one costs a worker about a quarter of a second of CPU per
    trial (and a second to import matplotlib), several times what a synthetic trial costs, and these tests
    read the storage, not the images (the dashboard and note tests draw them)."""
    if not curves and "--no-artifacts" not in extra:
        extra = (*extra, "--no-artifacts")
    procs = []
    for i in range(n):
        out = open(log_dir / f"worker-{i}.log", "w") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "hpsearch.search", "worker", campaign, "--storage", storage, "--devices", "cpu",
             "--heartbeat-interval", "1", "--grace-period", "4", *extra],
            env=worker_env(sleep), stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float = 240) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise
    return codes


def finished_count(storage_url: str, stage_index: int) -> int:
    storage = open_storage(storage_url)
    plan = load_stored_plan(storage, "syn")
    view = Campaign(storage, plan).stage(stage_index)
    return 0 if view is None else sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in view.trials)


def check_campaign(storage_url: str, campaign: str = "syn") -> None:
    """Exact budgets per stage, each next space = narrow() of the stage before, carried configs re-measured."""
    storage = open_storage(storage_url)
    plan = load_stored_plan(storage, campaign)
    views = [Campaign(storage, plan).stage(i) for i in range(len(plan.stages))]
    for view in views:
        assert view is not None, "a stage was never opened"
        live = [t for t in view.trials if DUPLICATE not in t.system_attrs]
        finished = [t for t in live if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == view.stage.n_trials, f"{view.stage.name}: {len(finished)} finished"
        assert sorted(t.system_attrs[SLOT] for t in finished) == list(range(view.stage.n_trials))
        assert not [t for t in view.trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    coarse, fine, final = views
    ranked = rank(coarse.trials)
    expected = narrow(coarse.space, [t.params for t in ranked], plan.stages[1].narrow, keep=plan.stages[1].carry)
    assert space_to_json(fine.space) == space_to_json(expected)
    carried = {fine_trial.system_attrs[SLOT]: fine_trial.params for fine_trial in fine.trials
               if fine_trial.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert [carried[0], carried[1]] == [t.params for t in ranked[:2]]
    top_fine = [t.params for t in rank(fine.trials)[:2]]
    for t in final.trials:
        if t.state == TrialState.COMPLETE:
            assert t.params == top_fine[t.system_attrs[SLOT] // 2]

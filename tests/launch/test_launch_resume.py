"""A worker container that is killed mid-trial and replaced by a fresh one: the launcher's worker command runs
here with the image's environment and working directory, each container with a working directory of its own
and the volumes shared, against a real PostgreSQL. The retry in the new container resumes the checkpoint the
killed one left on the shared artifacts volume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from container import ContainerDirs, image_env, image_workdir
from worker_argv import COMPOSE_FILE, compose_worker_argv, k8s_worker_argv

from hpsearch.search.cli import main
from hpsearch.search.run.checkpoints import POINTER
from hpsearch.storage import optuna_internals as internals
from tests.campaign.faults import pause_in_trial, study_of
from tests.campaign.helpers import PLAN, wait_all
from tests.campaign.test_checkpoints import _past, _whole_curve
from tests.campaign.test_workers import STEADY_SPACE

pytestmark = pytest.mark.slow

EPOCHS = 6
STAGES = [{**PLAN["stages"][0], "n_trials": 3, "overrides": {"epochs": EPOCHS},
           "pruner": {"name": "median", "n_startup_trials": 100}}]
# Short heartbeats so that the killed container's trial is retried in seconds, and a checkpoint every epoch.
FAST = ("--heartbeat-interval", "1", "--grace-period", "4", "--checkpoint-interval", "0")


def _launcher_env(launcher: str) -> dict[str, str]:
    """The worker's own environment in the launch file: literal values only (the storage comes from the test)."""
    if launcher == "compose":
        env = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["worker"].get("environment", {})
        return {k: str(v) for k, v in env.items() if "${" not in str(v)}
    job = yaml.safe_load((COMPOSE_FILE.parent / "docker" / "k8s" / "base" / "worker-job.yaml").read_text())
    [worker] = [c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    return {e["name"]: e["value"] for e in worker.get("env", []) if "value" in e}


def _start_container(launcher: str, dirs: ContainerDirs, pg_url: str) -> subprocess.Popen:
    argv = compose_worker_argv() if launcher == "compose" else k8s_worker_argv()
    workdir = Path(dirs.host(image_workdir()))
    workdir.mkdir(parents=True)
    env = dirs.env(image_env(), _launcher_env(launcher),
                   {"HPSEARCH_STORAGE": pg_url, "HPSEARCH_SYNTHETIC_SLEEP": "0.25"})
    log = open(dirs.root / "worker.log", "w")  # noqa: SIM115  (the process holds it)
    # `hpsearch` is the image's entrypoint: the same arguments through this interpreter's hpsearch.
    return subprocess.Popen([sys.executable, "-m", "hpsearch.search", *(dirs.translate(a) for a in argv[1:]), *FAST],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.parametrize("launcher", ["compose", "k8s"])
def test_a_replaced_worker_container_resumes_the_killed_ones_trial(launcher: str, pg_url: str,
                                                                    tmp_path: Path) -> None:
    volumes = {"/artifacts": tmp_path / "volumes" / "artifacts", "/data": tmp_path / "volumes" / "data"}
    for folder in volumes.values():
        folder.mkdir(parents=True)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, "name": "cifar10-resnet18", "space": STEADY_SPACE, "stages": STAGES}))
    assert main(["init", str(plan), "--storage", pg_url]) == 0

    first = ContainerDirs(tmp_path, "container-1", volumes)
    killed = _start_container(launcher, first, pg_url)
    try:
        trial_id = pause_in_trial(pg_url, killed.pid, _past(2))  # stopped, then killed: the trial cannot end between
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the node is lost: no hand-back, the container is gone
    killed.wait()

    replacement = _start_container(launcher, ContainerDirs(tmp_path, "container-2", volumes), pg_url)
    assert wait_all([replacement]) == [0], (tmp_path / "container-2" / "worker.log").read_text()[-2000:]
    failed = next(t for t in study_of(pg_url, trial_id) if internals.trial_id(t) == trial_id)
    [retry] = [t for t in study_of(pg_url, trial_id) if t.user_attrs.get("retry_of", {}).get("trial") == failed.number]
    saved = failed.system_attrs[POINTER]["epoch"]
    assert saved >= 2 and retry.user_attrs.get("resumed_from_epoch") == saved, "the retry started over"
    _whole_curve(retry)
    # Nothing went to the container's own working directory.
    assert not list((tmp_path / "container-1").rglob("checkpoint-*"))

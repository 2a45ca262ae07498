"""Faults a fleet meets: a worker paused past the grace period, a worker killed mid-trial; no twins left."""

import os
import signal
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from tests.campaign.faults import SMALL_STAGES, duplicates, running_trial_of, study_of, wait_state
from tests.campaign.helpers import check_campaign, start_workers, wait_all, write_plan
from tests.campaign.test_workers import STEADY_SPACE

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_a_paused_worker_drops_its_taken_trial_and_exits_0(backend: str, pg_url: str, tmp_path: Path) -> None:
    url = pg_url if backend == "postgresql" else str(tmp_path / "c.journal")
    plan = write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE, stages=SMALL_STAGES)
    assert main(["init", str(plan), "--storage", url]) == 0
    procs = start_workers(3, url, sleep=0.3, log_dir=tmp_path)
    victim = procs[0]
    trial_id = running_trial_of(url, victim.pid)
    os.killpg(victim.pid, signal.SIGSTOP)  # a long GC pause, a network partition: alive, silent
    try:
        wait_state(url, trial_id, (TrialState.FAIL,), timeout=60)  # the others found it stale
    finally:
        os.killpg(victim.pid, signal.SIGCONT)
    assert wait_all(procs) == [0, 0, 0]
    check_campaign(url)
    assert duplicates(url) == []
    log = (tmp_path / "worker-0.log").read_text()
    assert "dropped it" in log and "Traceback" not in log
    stage = study_of(url, trial_id)
    number = next(t.number for t in stage if t._trial_id == trial_id)
    [retry] = [t for t in stage if t.user_attrs.get("retry_of", {}).get("trial") == number]
    assert "heartbeat" in retry.user_attrs["retry_of"]["reason"] and "fail_reason" not in retry.user_attrs

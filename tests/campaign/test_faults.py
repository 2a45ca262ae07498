"""Faults a fleet meets: a worker paused past the grace period, a worker killed mid-trial; no twins left."""

import os
import signal
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.storage import optuna_internals as internals
from tests.campaign.faults import (
    SMALL_STAGES,
    all_trials,
    duplicates,
    pause_in_trial,
    running_trial_of,
    study_of,
    wait_state,
)
from tests.campaign.helpers import check_campaign, start_workers, wait_all, write_plan
from tests.campaign.test_workers import STEADY_SPACE
from tests.lock_holder import paused_holder

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_a_paused_worker_drops_its_taken_trial_and_exits_0(backend: str, pg_url: str, tmp_path: Path) -> None:
    url = pg_url if backend == "postgresql" else str(tmp_path / "c.journal")
    plan = write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE, stages=SMALL_STAGES)
    assert main(["init", str(plan), "--storage", url]) == 0
    procs = start_workers(3, url, sleep=0.3, log_dir=tmp_path)
    victim = procs[0]
    # A long GC pause, a network partition: alive, silent; paused between two writes (inside one: the test below).
    trial_id = pause_in_trial(url, victim.pid)
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
    number = next(t.number for t in stage if internals.trial_id(t) == trial_id)
    [retry] = [t for t in stage if t.user_attrs.get("retry_of", {}).get("trial") == number]
    assert "heartbeat" in retry.user_attrs["retry_of"]["reason"] and "fail_reason" not in retry.user_attrs


def test_a_writer_paused_inside_a_journal_write_stalls_the_fleet_and_fails_nothing(tmp_path: Path) -> None:
    """Nobody takes the append lock from a paused holder (Optuna's own lock is taken after 30 s, and a release
    then fails); the workers wait for it, go on when it resumes, and do not take the stall, longer than the
    grace period, for each other's silence."""
    url = str(tmp_path / "c.journal")
    plan = write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE, stages=SMALL_STAGES)
    assert main(["init", str(plan), "--storage", url]) == 0
    procs = start_workers(3, url, sleep=0.3, log_dir=tmp_path)
    running_trial_of(url, procs[0].pid)
    holder = paused_holder(url, append=True)
    try:
        size = os.path.getsize(url)
        time.sleep(6)  # past the grace period (4 s): the running trials look stale, but nobody can write
        assert os.path.getsize(url) == size, "a process wrote to the journal while another held its lock"
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.wait()
    assert wait_all(procs) == [0, 0, 0]
    check_campaign(url)
    assert duplicates(url) == []
    assert [t.number for t in all_trials(url) if t.state == TrialState.FAIL] == []
    for i in range(3):
        assert "Traceback" not in (tmp_path / f"worker-{i}.log").read_text()

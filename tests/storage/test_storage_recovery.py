"""A worker process killed with SIGKILL mid-trial: its trial is failed and retried with its attributes."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.storage import HEARTBEAT_ATTR, fail_stale_trials, open_storage
from hpsearch.storage import optuna_internals as internals
from tests.lock_holder import paused_holder

CHILD = Path(__file__).with_name("heartbeat_child.py")
GRACE = 1.5  # seconds
SLOT_ATTR = "hpsearch:slot"


def _start_worker(url: str, study_name: str) -> tuple[subprocess.Popen[str], int]:
    # The URL travels in the environment, as in production, rather than on a command line `ps` shows.
    env = {**os.environ, "HPSEARCH_STORAGE": url}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), study_name, "0.25"], stdout=subprocess.PIPE, text=True, env=env
    )
    ready, _, _ = select.select([child.stdout], [], [], 60)
    line = child.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line:
        child.kill()
        child.stdout.close()  # type: ignore[union-attr]
        raise AssertionError(f"the worker did not claim a trial (exit code {child.wait()})")
    return child, int(line)


@pytest.mark.slow
def test_killed_worker_trial_is_retried_with_its_system_attrs(storage_url: str) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="stage", storage=storage, direction="maximize")
    study.enqueue_trial({"lr": 0.3})
    storage.set_trial_system_attr(internals.trial_id(study.trials[0]), SLOT_ATTR, 7)

    child, trial_id = _start_worker(storage_url, "stage")
    try:
        time.sleep(GRACE + 0.3)
        # Alive past the grace period: its heartbeat, written from another process, counts.
        assert fail_stale_trials(storage, "stage", grace_period=GRACE, max_retry=3) == []
        assert storage.get_trial(trial_id).system_attrs[HEARTBEAT_ATTR]["pid"] == child.pid
    finally:
        child.kill()  # SIGKILL: no cleanup, no goodbye
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    time.sleep(GRACE + 0.3)
    assert fail_stale_trials(storage, "stage", grace_period=GRACE, max_retry=3) == [trial_id]

    assert storage.get_trial(trial_id).state == TrialState.FAIL
    [retry] = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    # `enqueue_trial` keeps the fixed params in a system attribute until the trial suggests them.
    assert retry.system_attrs["fixed_params"] == {"lr": 0.3} and retry.system_attrs[SLOT_ATTR] == 7
    # The next worker claims the retry. The dead worker's heartbeat came along with the system
    # attributes; it must not make the fresh claim look stale.
    assert storage.set_trial_state_values(internals.trial_id(retry), TrialState.RUNNING)
    assert fail_stale_trials(storage, "stage", grace_period=GRACE, max_retry=3) == []


@pytest.mark.slow
def test_a_stall_of_the_journal_is_not_a_workers_silence(tmp_path: Path) -> None:
    """While a paused process holds the journal's append lock, no worker can beat. A stale check made then
    waits for the stall to end and does not count it against anyone, though the checker itself had nothing
    to write; a dead worker is still found."""
    journal = str(tmp_path / "hpsearch.journal")
    storage = open_storage(journal)
    study = optuna.create_study(study_name="stage", storage=storage, direction="maximize")
    study.enqueue_trial({"lr": 0.3})
    child, trial_id = _start_worker(journal, "stage")
    try:
        holder = paused_holder(journal, append=True)
        threading.Timer(2 * GRACE, holder.send_signal, (signal.SIGCONT,)).start()
        checker = open_storage(journal)  # another worker's, idle: it wrote nothing during the stall
        assert fail_stale_trials(checker, "stage", grace_period=GRACE, max_retry=3) == []
        assert holder.wait() == 0
        assert fail_stale_trials(checker, "stage", grace_period=GRACE, max_retry=3) == []
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    time.sleep(GRACE + 0.3)
    assert fail_stale_trials(storage, "stage", grace_period=GRACE, max_retry=3) == [trial_id]

"""Helpers for fault tests: find a worker's running trial, count the twins a fault left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.run.campaign import DUPLICATE
from hpsearch.storage import HEARTBEAT_ATTR, open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.journal_lock import flocked
from hpsearch.storage.urls import parse_storage_string
from tests.campaign.helpers import PLAN

# The helpers' campaign with smaller stages: fault tests wait for grace periods, not for trials.
SMALL_STAGES = [{**PLAN["stages"][0], "n_trials": 8}, {**PLAN["stages"][1], "n_trials": 5}, PLAN["stages"][2]]


def all_trials(url: str) -> list:
    storage = open_storage(url)
    return [t for s in storage.get_all_studies() for t in storage.get_all_trials(internals.study_id(s))]


def running_trial_of(url: str, pid: int, timeout: float = 60) -> int:
    """The number of a trial the worker process `pid` is running (by its heartbeat), once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in all_trials(url):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if t.state == TrialState.RUNNING and isinstance(beat, dict) and beat.get("pid") == pid:
                return internals.trial_id(t)
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} never ran a trial")


def wait_state(url: str, trial_id: int, states: tuple[TrialState, ...], timeout: float = 60) -> None:
    storage = open_storage(url)
    deadline = time.monotonic() + timeout
    while storage.get_trial(trial_id).state not in states:
        assert time.monotonic() < deadline, f"trial id {trial_id} never reached {states}"
        time.sleep(0.1)


def duplicates(url: str) -> list:
    """Trials retired at claim time because their slot existed twice."""
    return [t for t in all_trials(url) if DUPLICATE in t.system_attrs]


def study_of(url: str, trial_id: int) -> list:
    """Every trial of the study (stage) that holds `trial_id`."""
    storage = open_storage(url)
    for s in storage.get_all_studies():
        trials = storage.get_all_trials(internals.study_id(s))
        if any(internals.trial_id(t) == trial_id for t in trials):
            return trials
    raise AssertionError(f"no trial with id {trial_id}")


@contextlib.contextmanager
def out_of_journal_writes(url: str) -> Iterator[None]:
    """For a journal, hold its enqueue and append locks (in the workers' order) for the block, so that a worker
    stopped inside it holds neither: paused between writes, not in the middle of one."""
    spec = parse_storage_string(url)
    if spec.kind != "journal":
        yield
        return
    with flocked(f"{spec.target}.enqueue.lock"), flocked(f"{spec.target}.append.lock"):
        yield



def pause_in_trial(url: str, pid: int, ready: Callable[[FrozenTrial], bool] = lambda _: True,
                   timeout: float = 120) -> int:
    """SIGSTOP the worker process group `pid` while it runs a trial for which `ready` holds (between two journal
    writes) and return that trial's id. A trial seen running may end before the stop lands on a loaded machine, so
    the stopped worker's trial is read again once it is stopped; if it ended, the worker is resumed and the next
    trial is waited for."""
    storage = open_storage(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trial_id = running_trial_of(url, pid, timeout=deadline - time.monotonic())
        trial = storage.get_trial(trial_id)
        while trial.state == TrialState.RUNNING and not ready(trial) and time.monotonic() < deadline:
            time.sleep(0.05)
            trial = storage.get_trial(trial_id)
        with out_of_journal_writes(url):
            os.killpg(pid, signal.SIGSTOP)
        trial = storage.get_trial(trial_id)
        if trial.state == TrialState.RUNNING and ready(trial):
            return trial_id
        os.killpg(pid, signal.SIGCONT)
    raise AssertionError(f"worker {pid} was never stopped inside a trial")

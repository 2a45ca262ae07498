"""Heartbeats keep claimed trials alive; silent ones are failed and retried exactly once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import Heartbeat, fail_stale_trials, open_storage
from hpsearch.storage import optuna_internals as internals

ClaimTrials = Callable[[BaseStorage, str, int], list[int]]  # the `claim_trials` fixture
SLOT_ATTR = "hpsearch:slot"  # set by `claim_trials` on every slot
GRACE = 3.0  # seconds; tests sleep just past it (1.5 s proved too short on a loaded 2-core machine)
BEAT = 0.25  # seconds between heartbeats: twelve per grace period, so a slow tick cannot fail a trial


def _trials(storage: BaseStorage, study_name: str, state: TrialState | None = None) -> list[FrozenTrial]:
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_all_trials(study_id, states=None if state is None else (state,))


@pytest.mark.slow
def test_heartbeat_keeps_trial_alive_and_silent_trials_are_retried_once(
    storage_url: str, claim_trials: ClaimTrials
) -> None:
    storage = open_storage(storage_url)
    beating, went_silent, never_beat = claim_trials(storage, "stage", 3)
    with Heartbeat(storage, went_silent, BEAT):
        pass  # its worker beat once, then died
    with Heartbeat(storage, beating, BEAT):
        time.sleep(GRACE + 0.5)
        failed = fail_stale_trials(storage, "stage", grace_period=GRACE, max_retry=3)
        again = fail_stale_trials(storage, "stage", grace_period=GRACE, max_retry=3)

    assert sorted(failed) == [went_silent, never_beat] and again == []
    assert storage.get_trial(beating).state == TrialState.RUNNING
    dead = {internals.trial_id(t): t for t in _trials(storage, "stage", TrialState.FAIL)}
    retries = _trials(storage, "stage", TrialState.WAITING)
    assert sorted(dead) == sorted(failed) and len(retries) == 2
    for retry in retries:
        original = next(t for t in dead.values() if t.number == retry.system_attrs["failed_trial"])
        # The worker loop finds its slot through system attributes: a retry must carry them over.
        assert retry.system_attrs[SLOT_ATTR] == original.system_attrs[SLOT_ATTR]
        assert retry.system_attrs["retry_history"] == [original.number]
        assert retry.system_attrs["fixed_params"] == original.system_attrs["fixed_params"]


def test_concurrent_checkers_retry_a_stale_trial_once(storage_url: str, claim_trials: ClaimTrials) -> None:
    storage = open_storage(storage_url)
    [stale] = claim_trials(storage, "stage", 1)
    with Heartbeat(storage, stale, BEAT):
        pass
    checkers = [open_storage(storage_url) for _ in range(8)]  # eight workers, eight connections
    time.sleep(0.6)
    barrier = threading.Barrier(len(checkers))
    results: list[list[int]] = []

    def check(checker: BaseStorage) -> None:
        barrier.wait()
        results.append(fail_stale_trials(checker, "stage", grace_period=0.5, max_retry=3))

    threads = [threading.Thread(target=check, args=(checker,)) for checker in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(trial_id for result in results for trial_id in result) == [stale]
    assert len(_trials(storage, "stage", TrialState.WAITING)) == 1


def test_max_retry_bounds_the_retries(storage_url: str, claim_trials: ClaimTrials) -> None:
    storage = open_storage(storage_url)
    [trial_id] = claim_trials(storage, "stage", 1)
    for _ in range(3):  # the original run and its two retries all die
        time.sleep(0.4)
        assert fail_stale_trials(storage, "stage", grace_period=0.3, max_retry=2) == [trial_id]
        waiting = _trials(storage, "stage", TrialState.WAITING)
        if not waiting:
            break
        trial_id = internals.trial_id(waiting[0])
        assert storage.set_trial_state_values(trial_id, TrialState.RUNNING)
    trials = _trials(storage, "stage")
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert trials[-1].system_attrs["retry_history"] == [0, 1]


def test_heartbeat_rides_out_a_database_outage(
    pg_server, pg_url: str, claim_trials: ClaimTrials, caplog: pytest.LogCaptureFixture
) -> None:
    storage = open_storage(pg_url)
    [trial_id] = claim_trials(storage, "stage", 1)
    with caplog.at_level(logging.WARNING, logger="hpsearch.storage"), Heartbeat(storage, trial_id, 0.2):
        time.sleep(0.3)
        pg_server.stop()
        time.sleep(0.6)
        pg_server.start()
        time.sleep(0.8)
        # Had the thread died during the outage, its last beat would be seconds old by now.
        assert fail_stale_trials(storage, "stage", grace_period=0.7, max_retry=3) == []
    assert "heartbeat of trial" in caplog.text and "retrying" in caplog.text
    assert pg_server.password not in caplog.text
    assert storage.get_trial(trial_id).state == TrialState.RUNNING


def test_a_beat_that_finds_its_trial_taken_away_says_so(storage_url: str, claim_trials: ClaimTrials) -> None:
    storage = open_storage(storage_url)
    [trial_id] = claim_trials(storage, "stage", 1)
    lost = threading.Event()
    with Heartbeat(storage, trial_id, BEAT, on_lost=lost.set):
        assert not lost.wait(3 * BEAT)  # alive and beating: nothing lost
        other = open_storage(storage_url)  # another worker, which found the trial stale
        assert other.set_trial_state_values(trial_id, TrialState.FAIL)
        assert lost.wait(10), "the heartbeat never noticed that its trial was failed"

"""PostgreSQL claims: each waiting trial goes to exactly one claimer, with its first heartbeat; twins retire."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpsearch.storage import HEARTBEAT_ATTR, Heartbeat, fail_stale_trials, open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.claims import claim_waiting
from hpsearch.storage.stores.stale import heartbeat_ages

SLOT = "hpsearch:slot"
RETIRED = "hpsearch:duplicate"


def _stage(url: str, slots: list[int]) -> tuple[optuna.Study, list[int]]:
    storage = open_storage(url)
    study = optuna.create_study(study_name="stage", storage=storage, direction="maximize")
    ids = []
    for slot in slots:
        waiting = optuna.trial.create_trial(state=TrialState.WAITING)
        trial_id = storage.create_new_trial(internals.study_id(study), waiting)
        storage.set_trial_system_attr(trial_id, SLOT, slot)
        ids.append(trial_id)
    return study, ids


def test_racing_claimers_take_each_waiting_trial_once(pg_url: str) -> None:
    study, ids = _stage(pg_url, list(range(40)))
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer() -> None:
        storage = open_storage(pg_url)  # its own engine and connections, as a worker process has
        study_id = internals.study_id(study)
        while (trial_id := claim_waiting(storage, study_id, unique_key=SLOT, retired_key=RETIRED)) is not None:
            with lock:
                claimed.append(trial_id)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids  # every one, none twice
    storage = internals.study_storage(study)
    trials = storage.get_all_trials(internals.study_id(study))
    assert {t.state for t in trials} == {TrialState.RUNNING}
    assert all(t.datetime_start is not None for t in trials)
    # The claim was the first heartbeat: in the table, by the database's clock, and the marker for gRPC clients.
    ages = heartbeat_ages(storage, trials)
    assert set(ages) == set(ids) and all(0 <= age < 60 for age in ages.values())
    assert all(t.system_attrs[HEARTBEAT_ATTR]["trial_id"] == internals.trial_id(t) for t in trials)
    assert all(t.system_attrs[HEARTBEAT_ATTR]["native"] for t in trials)


def test_a_twin_of_a_live_slot_retires_and_a_twin_of_a_failed_one_runs(pg_url: str) -> None:
    study, ids = _stage(pg_url, [0, 1, 1, 2, 2])
    storage = internals.study_storage(study)
    assert storage.set_trial_state_values(ids[3], TrialState.RUNNING)
    assert storage.set_trial_state_values(ids[3], TrialState.FAIL)  # slot 2's first trial failed
    claimed = []
    study_id = internals.study_id(study)
    while (trial_id := claim_waiting(storage, study_id, unique_key=SLOT, retired_key=RETIRED)) is not None:
        claimed.append(trial_id)
    assert claimed == [ids[0], ids[1], ids[4]]
    twin = storage.get_trial(ids[2])
    assert twin.state == TrialState.FAIL and twin.system_attrs[RETIRED] == storage.get_trial(ids[1]).number
    assert RETIRED not in storage.get_trial(ids[4]).system_attrs


def test_a_claimer_that_dies_at_once_is_failed_by_the_heartbeat_rule(pg_url: str) -> None:
    study, ids = _stage(pg_url, [0])
    storage = internals.study_storage(study)
    # A retry inherits its predecessor's marker: the claim overwrites it with its own.
    storage.set_trial_system_attr(ids[0], HEARTBEAT_ATTR, {"trial_id": -1, "time": 0.0, "native": True})
    assert claim_waiting(storage, internals.study_id(study), unique_key=SLOT) == ids[0]
    assert storage.get_trial(ids[0]).system_attrs[HEARTBEAT_ATTR]["trial_id"] == ids[0]
    assert fail_stale_trials(storage, "stage", grace_period=1.0, max_retry=1) == []
    time.sleep(1.3)  # no worker ever beats for it again
    assert fail_stale_trials(storage, "stage", grace_period=1.0, max_retry=1) == ids
    [retry] = storage.get_all_trials(internals.study_id(study), states=(TrialState.WAITING,))
    assert retry.system_attrs[SLOT] == 0


def test_after_a_claim_the_heartbeat_thread_beats_on(pg_url: str) -> None:
    study, ids = _stage(pg_url, [0])
    storage = internals.study_storage(study)
    assert claim_waiting(storage, internals.study_id(study)) == ids[0]
    time.sleep(1.0)
    with Heartbeat(storage, ids[0], 0.2, first_beat=False):
        deadline = time.monotonic() + 30  # a loaded machine may run the thread late; it must beat at all
        while True:
            [trial] = storage.get_all_trials(internals.study_id(study))
            if heartbeat_ages(storage, [trial])[ids[0]] < 0.5:  # beaten since the claim, a second ago
                break
            assert time.monotonic() < deadline, "the heartbeat thread never beat after the claim"
            time.sleep(0.05)


def test_other_storages_claim_the_optuna_way(tmp_path: Path) -> None:
    storage = open_storage(f"journal:{tmp_path / 'j.journal'}")
    study = optuna.create_study(study_name="stage", storage=storage)
    study.enqueue_trial({"lr": 0.1})
    assert claim_waiting(storage, internals.study_id(study)) is None
    assert study.trials[0].state == TrialState.WAITING


def test_a_retry_is_claimed_before_the_waiting_slots(pg_url: str) -> None:
    study, ids = _stage(pg_url, [0, 1, 2])
    storage = open_storage(pg_url)
    retry = storage.create_new_trial(internals.study_id(study), optuna.trial.create_trial(state=TrialState.WAITING))
    storage.set_trial_system_attr(retry, "failed_trial", 7)
    first = "failed_trial"
    study_id = internals.study_id(study)
    assert claim_waiting(storage, study_id, unique_key=SLOT, retired_key=RETIRED, first_key=first) == retry
    assert claim_waiting(storage, study_id, unique_key=SLOT, retired_key=RETIRED, first_key=first) == ids[0]

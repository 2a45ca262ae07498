"""Claims from a remembered list through a real gRPC proxy: each trial once, retries first, twins retired."""

from __future__ import annotations

import random
import threading

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from hpsearch.storage import HEARTBEAT_ATTR, open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.waiting import claim_remembered, remember_waiting, take_waiting
from tests.storage.test_storage_proxy import proxy_url  # noqa: F401 - the fixture

SLOT = "hpsearch:slot"
RETRY = "failed_trial"
RETIRED = "hpsearch:duplicate"


def _stage(storage: BaseStorage, slots: list[int], name: str = "stage") -> int:
    """A study with one WAITING trial per entry of `slots` (its slot key); returns the study id."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for slot in slots:
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={SLOT: slot}))
    return storage.get_study_id_from_name(name)


def _remember(storage: BaseStorage, study_id: int, seed: int = 0) -> list[int]:
    """One read of the study, remembered; returns the ids of its WAITING trials in claim order."""
    trials = storage.get_all_trials(study_id, deepcopy=False)
    remembered = remember_waiting(storage, study_id, trials, unique_key=SLOT, first_key=RETRY,
                                  order=random.Random(seed))
    return [internals.trial_id(t) for t, _ in remembered.trials]


@pytest.mark.slow
def test_racing_workers_claim_every_trial_exactly_once(proxy_url: str) -> None:  # noqa: F811
    setup = open_storage(proxy_url)
    study_id = _stage(setup, list(range(24)))
    claimed: list[list[int]] = []

    def worker(seed: int) -> None:
        storage, mine = open_storage(proxy_url), []  # a client of its own, as a worker process has
        while _remember(storage, study_id, seed):
            while (waiting := claim_remembered(storage, study_id, retired_key=RETIRED)) is not None:
                assert waiting.state == TrialState.WAITING  # the copy read before the claim
                mine.append(internals.trial_id(waiting))
                storage.set_trial_state_values(internals.trial_id(waiting), TrialState.COMPLETE, [0.0])
        claimed.append(mine)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    ids = [i for mine in claimed for i in mine]
    assert len(claimed) == 4 and sorted(ids) == sorted(internals.trial_id(t) for t in setup.get_all_trials(study_id))
    # Each claim recorded its trial's first heartbeat, which the stale-trial check reads through the proxy.
    assert all(setup.get_trial(i).system_attrs[HEARTBEAT_ATTR]["trial_id"] == i for i in ids)


def test_a_trial_added_after_the_read_sends_the_worker_back_to_read(proxy_url: str) -> None:  # noqa: F811
    storage = open_storage(proxy_url)
    study_id = _stage(storage, [0, 1, 2, 3])
    _remember(storage, study_id)
    claimed = claim_remembered(storage, study_id, retired_key=RETIRED)
    assert claimed is not None
    first = internals.trial_id(claimed)
    storage.set_trial_state_values(first, TrialState.FAIL)
    retry = optuna.trial.create_trial(state=TrialState.WAITING,
                                      system_attrs={SLOT: storage.get_trial(first).system_attrs[SLOT], RETRY: 0})
    retry_id = storage.create_new_trial(study_id, retry)

    assert claim_remembered(storage, study_id, retired_key=RETIRED) is None  # the list missed the retry
    assert _remember(storage, study_id)[0] == retry_id  # read again: the retry goes first
    assert internals.trial_id(claim_remembered(storage, study_id, retired_key=RETIRED)) == retry_id


def test_a_twin_slot_is_retired_against_the_lower_numbered_trial(proxy_url: str) -> None:  # noqa: F811
    storage = open_storage(proxy_url)
    study_id = _stage(storage, [0, 0])  # slot 0 enqueued twice, as two clients opening a stage at once can
    low, high = (internals.trial_id(t) for t in storage.get_all_trials(study_id))
    trials = storage.get_all_trials(study_id, deepcopy=False)
    remembered = remember_waiting(storage, study_id, trials, unique_key=SLOT, first_key=RETRY,
                                  order=random.Random(0))
    remembered.trials.sort(key=lambda entry: internals.trial_id(entry[0]) != high)  # the twin comes up first

    assert internals.trial_id(take_waiting(storage, remembered, retired_key=RETIRED)) == low
    twin = storage.get_trial(high)
    assert twin.state == TrialState.FAIL and twin.system_attrs[RETIRED] == 0

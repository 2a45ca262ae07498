"""Slots enqueued by several processes at once exist once each; a retry is queued once per failure."""

from __future__ import annotations

import threading

import optuna
from optuna.trial import TrialState

from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.enqueue import add_trials_once, retry_template

SLOT_ATTR = "hpsearch:slot"


def _templates(n: int) -> list[optuna.trial.FrozenTrial]:
    return [optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={SLOT_ATTR: i}) for i in range(n)]


def test_racing_openers_add_each_slot_once(storage_url: str) -> None:
    study = optuna.create_study(study_name="stage", storage=open_storage(storage_url))
    start = threading.Barrier(4)
    added: list[int] = []

    def opener() -> None:
        storage = open_storage(storage_url)  # its own connection or file handle, as another worker has
        study_id = storage.get_study_id_from_name("stage")
        start.wait()
        added.append(add_trials_once(storage, study_id, _templates(40), key=SLOT_ATTR))

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    trials = study.get_trials()
    assert sorted(added) == [0, 0, 0, 40]
    assert sorted(t.system_attrs[SLOT_ATTR] for t in trials) == list(range(40))
    assert [t.number for t in trials] == list(range(40)) and {t.state for t in trials} == {TrialState.WAITING}


def test_a_retry_is_queued_once_and_says_where_it_came_from(storage_url: str) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="stage", storage=storage)
    study.enqueue_trial({"lr": 0.1})
    [waiting] = study.get_trials()
    storage.set_trial_system_attr(internals.trial_id(waiting), SLOT_ATTR, 0)
    assert storage.set_trial_state_values(internals.trial_id(waiting), TrialState.RUNNING)
    trial = optuna.Trial(study, internals.trial_id(waiting))
    trial.suggest_float("lr", 0.01, 1.0)
    trial.set_user_attr("fail_reason", "the worker was stopped (SIGTERM)")
    assert storage.set_trial_state_values(internals.trial_id(waiting), TrialState.FAIL)
    failed = storage.get_trial(internals.trial_id(waiting))
    blocked = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    for _ in range(2):  # the stale-trial check and the orphan repair, both
        template = retry_template(failed, "the worker was stopped (SIGTERM)", max_retry=3)
        add_trials_once(storage, internals.study_id(study), [template], key=SLOT_ATTR, blocked_by=blocked)
    [retry] = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert retry.params == {"lr": 0.1} and retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs == {"retry_of": {"trial": 0, "reason": "the worker was stopped (SIGTERM)"}}
    assert retry_template(retry, "again", max_retry=1) is None  # its one retry is used up
    assert retry_template(retry, "again", max_retry=2).system_attrs["retry_history"] == [0, 1]

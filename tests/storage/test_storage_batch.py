"""A store's attribute writes: in one transaction on PostgreSQL, one by one elsewhere; the same result and checks."""

from __future__ import annotations

import optuna
import optuna_dashboard
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from hpsearch.search.run.notes import save_first_note
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores import store_for


def _running(study: optuna.Study) -> optuna.Trial:
    # A claimed trial, as workers hold them (`Study.ask` warns on a storage with heartbeats).
    return optuna.Trial(study, internals.study_storage(study).create_new_trial(internals.study_id(study)))


def test_trial_user_attrs_land_together_and_overwrite(storage_url: str) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = _running(study)
    trial.set_user_attr("config", {"lr": 0.1})
    store_for(storage).write_by_id(internals.trial_id(trial),
                                   {"config": {"lr": 0.2}, "worker": {"host": "h"}, "n": [1, 2]})
    assert storage.get_trial(internals.trial_id(trial)).user_attrs == {"config": {"lr": 0.2}, "worker": {"host": "h"},
                                                             "n": [1, 2]}


def test_a_finished_trial_takes_no_attribute(storage_url: str) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = _running(study)
    study.tell(trial, state=TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        store_for(storage).write_by_id(internals.trial_id(trial), {"late": True})
    assert "late" not in storage.get_trial(internals.trial_id(trial)).user_attrs


def test_a_missing_trial_or_study_is_a_key_error(pg_url: str) -> None:
    storage = open_storage(pg_url)
    with pytest.raises(KeyError):
        store_for(storage).write_by_id(12345, {"a": 1})
    with pytest.raises(KeyError):
        store_for(storage).write_study_system_by_id(12345, {"a": 1})


def test_a_first_note_reads_back_through_optuna_dashboard(storage_url: str) -> None:
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = _running(study)
    body = "## Trial 0\n\n" + "| lr | 0.1 | searched |\n" * 300  # several of optuna-dashboard's chunks
    save_first_note(study, internals.trial_id(trial), body)
    assert optuna_dashboard.get_note(trial) == body
    optuna_dashboard.save_note(trial, "edited in the dashboard")  # the next version follows on
    assert optuna_dashboard.get_note(trial) == "edited in the dashboard"
    store_for(storage).write_study_system_by_id(internals.study_id(study), {"other": 1})
    assert storage.get_study_system_attrs(internals.study_id(study))["other"] == 1

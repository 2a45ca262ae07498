"""Each backend gets its own trial store, which owns the errors that mean its storage is briefly away."""

from __future__ import annotations

import grpc
import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from hpsearch.storage import open_storage
from hpsearch.storage.stores import JournalStore, PostgresStore, ProxyStore, TrialStore, store_for, store_of
from tests.storage.conftest import SLOT_ATTR


def test_each_backend_gets_its_store_and_its_verbs_run_a_trial(storage_url: str) -> None:
    storage = open_storage(storage_url)
    store = store_for(storage)
    assert type(store) is (JournalStore if storage_url.startswith("journal:") else PostgresStore)
    assert store_for(storage) is store and issubclass(grpc.RpcError, store.transient) is False
    assert (OSError in store.transient) == storage_url.startswith("journal:")
    assert issubclass(sqlalchemy.exc.OperationalError, store.transient) == (type(store) is PostgresStore)
    study = optuna.create_study(study_name="stage", storage=storage, direction="maximize")
    assert type(store_of(study)) is type(store)  # Optuna wraps an RDBStorage in its cache: a store of its own
    templates = [optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={SLOT_ATTR: i}) for i in range(3)]
    assert [store.enqueue_once(study, templates, key=SLOT_ATTR) for _ in range(2)] == [3, 0]

    class Snapshot:
        trials = store.trials(study)

        def refresh(self) -> None:
            self.trials = store.trials(study)

    claimed = store.claim(study, Snapshot(), unique_key=SLOT_ATTR, retired_key="retired", first_key="failed_trial")
    assert claimed is not None and claimed.first_beat_recorded == (type(store) is PostgresStore)
    trial = claimed.trial
    store.write(trial, {"config": {"lr": 0.1}, "worker": {"host": "h"}})
    assert store.copy_of(trial).user_attrs["config"] == {"lr": 0.1}  # the trial's own copy kept in step
    trial.report(0.5, 1)
    assert store.tell(study, trial, 0.7) == TrialState.COMPLETE
    stored = store.read(trial)
    assert stored.state == TrialState.COMPLETE and stored.value == 0.7 and stored.user_attrs["worker"] == {"host": "h"}
    assert not store.fail(trial)  # finished: no longer this process's to fail


def test_any_other_optuna_storage_gets_the_plain_optuna_store() -> None:
    store = store_for(optuna.storages.InMemoryStorage())
    assert type(store) is TrialStore and not isinstance(store, ProxyStore)

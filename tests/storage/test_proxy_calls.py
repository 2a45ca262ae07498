"""Several attributes in one call through `hpsearch storage-proxy`: stored as written, in one transaction, with
Optuna's checks; a plain Optuna proxy gets them one by one."""

from __future__ import annotations

import socket
import threading
import time
import warnings

import optuna
import pytest
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import GrpcStorageProxy

from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.proxy_calls import BATCH, writes_batched
from hpsearch.storage.stores import ProxyStore, store_for
from tests.storage.test_storage_proxy import proxy_url  # noqa: F401  (the fixture)


def _counted(client: GrpcStorageProxy, name: str) -> list[str]:
    """Record the key of every call of the client's method `name`."""
    keys: list[str] = []
    original = getattr(client, name)

    def call(owner_id: int, key: str, value: object) -> None:
        keys.append(key)
        original(owner_id, key, value)

    setattr(client, name, call)
    return keys


def test_a_trials_attributes_and_a_note_go_in_one_call_each(pg_url: str, proxy_url: str) -> None:  # noqa: F811
    client = open_storage(proxy_url)
    study = optuna.create_study(study_name="stage", storage=client)
    store = store_for(client)
    assert isinstance(store, ProxyStore) and writes_batched(client)
    trial = study.ask()
    user_calls = _counted(client, "set_trial_user_attr")
    study_calls = _counted(client, "set_study_system_attr")
    attrs = {"worker": {"host": "a", "pid": 1}, "config": {"lr": 0.1}, "note": "x" * 5000}
    store.write(trial, attrs)
    store.write_study_system(study, {"ver": 1, "body:0": "first", "body:1": "second"})
    store.write(trial, {"alone": 3})  # a single attribute goes the usual way
    assert user_calls == [BATCH, "alone"] and study_calls == [BATCH]
    direct = open_storage(pg_url)  # what is stored, read past the proxy
    stored = direct.get_trial(internals.trial_id(trial))
    assert stored.user_attrs == {**attrs, "alone": 3} and trial.user_attrs == stored.user_attrs
    system = direct.get_study_system_attrs(internals.study_id(study))
    assert BATCH not in system and {k: system[k] for k in ("ver", "body:0", "body:1")} == {
        "ver": 1, "body:0": "first", "body:1": "second"}
    study.tell(trial, 1.0)
    with pytest.raises(UpdateFinishedTrialError):  # Optuna's check, through the proxy
        store.write(trial, {"late": 1, "later": 2})
    assert "late" not in direct.get_trial(internals.trial_id(trial)).user_attrs


def test_a_plain_optuna_proxy_gets_them_one_by_one() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = optuna.storages.InMemoryStorage()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        threading.Thread(target=optuna.storages.run_grpc_proxy_server, args=(served,),
                         kwargs={"host": "127.0.0.1", "port": port}, daemon=True).start()
    client = open_storage(f"grpc://127.0.0.1:{port}")
    study = optuna.create_study(study_name="stage", storage=client)
    assert not writes_batched(client)
    trial = study.ask()
    calls = _counted(client, "set_trial_user_attr")
    store_for(client).write(trial, {"a": 1, "b": 2})
    assert calls == ["a", "b"]
    deadline = time.monotonic() + 10
    while served.get_trial(internals.trial_id(trial)).user_attrs != {"a": 1, "b": 2}:
        assert time.monotonic() < deadline
        time.sleep(0.05)

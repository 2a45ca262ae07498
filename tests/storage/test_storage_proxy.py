"""The gRPC storage proxy serves a PostgreSQL study to `grpc://` clients, heartbeats included."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage, GrpcStorageProxy
from optuna.trial import TrialState

from hpsearch.storage import (
    Heartbeat,
    StorageError,
    factory,
    fail_stale_trials,
    open_storage,
    serve_storage_proxy,
)
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.proxy_calls import understood
from hpsearch.storage.stores import ProxyStore, store_for
from hpsearch.storage.stores.enqueue import add_trials_once, retry_template

ClaimTrials = Callable[[BaseStorage, str, int], list[int]]  # the `claim_trials` fixture
GRACE = 1.5  # seconds
# The proxy reads its URL from $HPSEARCH_STORAGE, so the password stays off the command line.
_SERVE = (
    "import sys; from hpsearch.storage import serve_storage_proxy as serve;"
    " serve(None, sys.argv[1], int(sys.argv[2]))"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(server: subprocess.Popen, port: int, timeout: float = 120) -> None:
    """Until the proxy process accepts connections on `port`; fails if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the storage proxy exited with code {server.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"the storage proxy did not listen on port {port} within {timeout:g} s")


@pytest.fixture
def proxy_url(pg_url: str) -> Iterator[str]:
    """`grpc://` URL of a storage proxy for `pg_url`, running in its own process."""
    port = _free_port()
    env = {**os.environ, "HPSEARCH_STORAGE": pg_url}
    server = subprocess.Popen([sys.executable, "-c", _SERVE, "127.0.0.1", str(port)], env=env)
    wait_listening(server, port)  # a busy machine can take longer to start it than a client waits for one
    yield f"grpc://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.mark.slow
def test_proxy_serves_a_study_and_its_heartbeats(
    pg_url: str, proxy_url: str, claim_trials: ClaimTrials
) -> None:
    client = open_storage(proxy_url)  # waits for the proxy process to come up
    direct = open_storage(pg_url)
    assert isinstance(client, GrpcStorageProxy)
    # A worker behind the proxy beats through it; one connected directly beats in PostgreSQL.
    via_proxy, silent, direct_worker = claim_trials(client, "stage", 3)
    with Heartbeat(client, via_proxy, 0.25), Heartbeat(direct, direct_worker, 0.25):
        time.sleep(GRACE + 0.5)
        failed_by_proxy_client = fail_stale_trials(client, "stage", grace_period=GRACE, max_retry=3)
        failed_directly = fail_stale_trials(direct, "stage", grace_period=GRACE, max_retry=3)

    assert failed_by_proxy_client == [silent] and failed_directly == []
    study = optuna.load_study(study_name="stage", storage=direct)  # the proxy wrote to PostgreSQL
    states = {internals.trial_id(t): t.state for t in study.trials}
    assert states[via_proxy] == states[direct_worker] == TrialState.RUNNING
    assert states[silent] == TrialState.FAIL
    number = {internals.trial_id(t): t.number for t in study.trials}
    retries = [t.system_attrs["retry_history"] for t in study.trials if t.state == TrialState.WAITING]
    assert retries == [[number[silent]]]


def test_proxy_on_a_busy_port_fails_with_one_line(pg_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(StorageError, match=r"cannot listen on 127\.0\.0\.1:") as info:
            serve_storage_proxy(pg_url, "127.0.0.1", busy.getsockname()[1])
    assert "\n" not in str(info.value)


def test_proxy_refuses_a_journal_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="PostgreSQL only"):
        serve_storage_proxy(str(tmp_path / "hpsearch.journal"), "127.0.0.1", _free_port())


def test_grpc_client_without_proxy_fails_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "CONNECT_TIMEOUT", 1)  # the default 10 s is for real networks
    with pytest.raises(StorageError, match=r"no storage proxy answers at grpc://127\.0\.0\.1:"):
        open_storage(f"grpc://127.0.0.1:{_free_port()}")


@pytest.mark.slow
def test_campaign_through_the_proxy_keeps_exact_budgets(pg_url: str, proxy_url: str, tmp_path: Path) -> None:
    from hpsearch.search.cli import main
    from hpsearch.storage.proxy import PROXY_THREADS
    from tests.campaign.helpers import check_campaign, start_workers, wait_all, write_plan
    from tests.storage.test_storage_connections import peak_connections

    open_storage(proxy_url)  # waits for the proxy process to come up
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", proxy_url]) == 0
    with peak_connections(pg_url) as peaks:
        assert wait_all(start_workers(4, proxy_url, sleep=0.02, log_dir=tmp_path)) == [0] * 4
    check_campaign(pg_url)  # every stage ran exactly its budget, as PostgreSQL holds it
    # Only the proxy talks to PostgreSQL, on at most one connection per server thread.
    assert len(peaks) == 1 and max(peaks.values()) <= PROXY_THREADS, peaks


def test_racing_openers_through_the_proxy_add_each_slot_once(proxy_url: str) -> None:
    optuna.create_study(study_name="stage", storage=open_storage(proxy_url))
    start = threading.Barrier(3)
    added: list[int] = []

    def opener() -> None:
        client = open_storage(proxy_url)  # its own channel, as another worker has
        study_id = client.get_study_id_from_name("stage")
        start.wait()
        added.append(add_trials_once(client, study_id, [
            optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={"hpsearch:slot": i}) for i in range(30)
        ], key="hpsearch:slot"))

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    client = open_storage(proxy_url)
    assert isinstance(store_for(client), ProxyStore) and understood(client)
    study_id = client.get_study_id_from_name("stage")
    trials = client.get_all_trials(study_id)
    assert sorted(added) == [0, 0, 30]
    assert sorted(t.system_attrs["hpsearch:slot"] for t in trials) == list(range(30))
    # A retry (params, distributions, user attributes) travels whole, and only once.
    assert client.set_trial_state_values(internals.trial_id(trials[0]), TrialState.RUNNING)
    client.set_trial_param(internals.trial_id(trials[0]), "lr", 0.25, optuna.distributions.FloatDistribution(0.01, 1.0))
    assert client.set_trial_state_values(internals.trial_id(trials[0]), TrialState.FAIL)
    template = retry_template(client.get_trial(internals.trial_id(trials[0])), "stopped", max_retry=3)
    blocked = (TrialState.WAITING, TrialState.RUNNING)
    assert [add_trials_once(client, study_id, [template], key="hpsearch:slot", blocked_by=blocked)
            for _ in range(2)] == [1, 0]
    [retry] = [t for t in client.get_all_trials(study_id) if "retry_of" in t.user_attrs]
    assert retry.params == {"lr": 0.25} and retry.user_attrs["retry_of"]["reason"] == "stopped"
    assert retry.system_attrs["hpsearch:slot"] == 0 and retry.number == 30

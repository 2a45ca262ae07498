"""Storage strings open the right backend, round-trip a study, and fail with one secret-free line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback

from hpsearch.search.cli import BAD_INPUT_ERRORS
from hpsearch.storage import StorageError, open_storage, redact_url
from hpsearch.storage import optuna_internals as internals


def _round_trip(url: str) -> None:
    study = optuna.create_study(study_name="roundtrip", storage=open_storage(url), direction="maximize")
    study.add_trial(
        optuna.create_trial(
            params={"lr": 0.1},
            distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)},
            value=0.9,
        )
    )
    again = optuna.load_study(study_name="roundtrip", storage=open_storage(url))  # a second worker
    assert [(t.params, t.value) for t in again.trials] == [({"lr": 0.1}, 0.9)]


def _assert_secret_free(text: str, password: str) -> None:
    for spelling in (password, quote(password, safe="")):
        assert spelling not in text


def test_default_is_journal_file_in_working_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    assert isinstance(open_storage(), JournalStorage)
    _round_trip("./hpsearch.journal")
    assert (tmp_path / "hpsearch.journal").stat().st_size > 0


def test_env_var_names_the_default_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPSEARCH_STORAGE", f"journal:{tmp_path / 'env.journal'}")
    optuna.create_study(study_name="from-env", storage=open_storage())
    assert (tmp_path / "env.journal").exists() and not (tmp_path / "hpsearch.journal").exists()


@pytest.mark.parametrize("form", ["journal:{}", "{}"])
def test_journal_forms_round_trip(tmp_path: Path, form: str) -> None:
    _round_trip(form.format(tmp_path / "runs.journal"))


@pytest.mark.parametrize("scheme", ["postgresql+psycopg2", "postgresql"])
def test_postgres_round_trips_with_heartbeat_retry_and_small_pool(pg_url: str, scheme: str) -> None:
    url = pg_url.replace("postgresql+psycopg2://", f"{scheme}://")
    storage = open_storage(url, heartbeat_interval=10, max_retry=5)
    assert isinstance(storage, RDBStorage)
    assert storage.get_heartbeat_interval() == 10 and storage.grace_period == 40
    callback = storage.get_heartbeat_stale_trial_callback()
    assert isinstance(callback, RetryHeartbeatStaleTrialCallback) and internals.retry_callback_limit(callback) == 5
    assert storage.engine.pool.size() == 1 and storage.engine.dialect.driver == "psycopg2"  # one per worker
    _round_trip(url)


def test_returned_storage_hides_password(pg_server, pg_url: str) -> None:
    storage = open_storage(pg_url)
    for shown in (repr(storage), str(storage), repr(storage.engine), redact_url(pg_url)):
        _assert_secret_free(shown, pg_server.password)
    assert redact_url(pg_url).startswith("postgresql+psycopg2://hpsearch:***@127.0.0.1:")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg2://hp:s3cr%40t@db:5432/optuna", "postgresql+psycopg2://hp:***@db:5432/optuna"),
        ("postgresql://hp:p@ss/w@db/optuna", "postgresql://hp:***@db/optuna"),  # unescaped "@" and "/"
        (
            "postgresql://hp@db/optuna?password=s3cret&sslmode=require",
            "postgresql://hp@db/optuna?password=***&sslmode=require",
        ),
        ("hp:s3cret@db:5432/optuna", "hp:***@db:5432/optuna"),  # scheme forgotten
        ("grpc://proxy:13000", "grpc://proxy:13000"),
        ("journal:./runs/hpsearch.journal", "journal:./runs/hpsearch.journal"),
        (  # a whole error message, as a worker logs it
            "OperationalError: cannot reach postgresql://hp:p@ss@db/optuna (password=s3cret); retrying",
            "OperationalError: cannot reach postgresql://hp:***@db/optuna (password=*** retrying",
        ),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://u:{pw}@db.example/hp", "unknown storage scheme"),
        ("redis://:{pw}@cache:6379/0", "unknown storage scheme"),
        ("postgresql+psycopg2://", "no host"),
        ("postgresql+psycopg2://hpsearch:{pw}@/optuna", "no host"),
        ("postgresql://hpsearch:{pw}@127.0.0.1/", "no database"),
        ("postgresql://hpsearch:{pw}@127.0.0.1:notaport/db", "not a valid PostgreSQL URL"),
        ("postgresql:hpsearch:{pw}@127.0.0.1/db", "lacks '//'"),
        ("hpsearch:{pw}@127.0.0.1:5432/db", "does not exist"),  # scheme forgotten: a path in a missing folder
        ("{tmp}/missing/hpsearch.journal", "does not exist"),
        ("journal:", "names no journal file"),
        ("journal:{tmp}", "is a folder"),
        ("grpc://proxy.example", "needs both a host and a port"),
        ("grpc://:13000", "needs both a host and a port"),
        ("grpc://proxy.example:port", "invalid port"),
        ("grpc://u:{pw}@proxy.example:13000", "parts a gRPC proxy does not take"),
        ("", "empty"),
        ("postgresql://hpsearch:{raw}@127.0.0.1/db", "percent-encode"),
    ],
)
def test_malformed_strings_raise_one_secret_free_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str, words: str
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "Sup3r/s3cret@pw"
    with pytest.raises(StorageError) as info:
        open_storage(url.format(pw=quote(password, safe=""), raw=password, tmp=tmp_path))
    message = str(info.value)
    assert words in message and "\n" not in message and isinstance(info.value, BAD_INPUT_ERRORS)
    _assert_secret_free(message + caplog.text, password)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("wrong password", "password authentication failed"),
        ("closed port", "Connection refused"),
        ("missing database", "does not exist"),
    ],
)
def test_unreachable_postgres_fails_at_open_with_one_secret_free_line(
    pg_server, pg_url: str, caplog: pytest.LogCaptureFixture, case: str, words: str
) -> None:
    caplog.set_level(logging.DEBUG)  # SQLAlchemy's pool and Optuna log too: none of it may leak
    wrong = "Wr0ng@pass/word"
    dbname = pg_url.rsplit("/", 1)[1]
    url = {
        "wrong password": pg_server.url_for(dbname, password=wrong),
        "closed port": pg_server.url_for(dbname, port=_closed_port()),
        "missing database": pg_server.url_for("no_such_db"),
    }[case]
    with pytest.raises(StorageError) as info:
        open_storage(url)
    message = str(info.value)
    assert words in message and "\n" not in message and "***" in message
    for secret in (pg_server.password, wrong):
        _assert_secret_free(message + caplog.text, secret)


def test_successful_open_logs_no_password(pg_server, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    storage = open_storage(pg_url)
    optuna.create_study(study_name="quiet", storage=storage)
    assert "opened PostgreSQL storage" in caplog.text
    _assert_secret_free(caplog.text, pg_server.password)


@pytest.mark.slow
def test_workers_opening_a_fresh_database_together_all_succeed(pg_url: str) -> None:
    # The first open creates Optuna's tables; a fleet starting at once must not trip over that.
    code = (
        "import sys; from hpsearch.storage import open_storage;"
        " print('ready', flush=True); sys.stdin.readline(); open_storage().get_all_studies()"
    )
    env = {**os.environ, "HPSEARCH_STORAGE": pg_url}
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    workers = [subprocess.Popen([sys.executable, "-c", code], env=env, **pipes) for _ in range(6)]
    for worker in workers:  # wait until all have imported, then release them at once
        assert worker.stdout.readline() == "ready\n"  # type: ignore[union-attr]
    for worker in workers:
        worker.stdin.write("go\n")  # type: ignore[union-attr]
        worker.stdin.flush()  # type: ignore[union-attr]
    failures = [
        err for worker in workers if (err := worker.communicate(timeout=120)[1]) and worker.returncode
    ]
    assert failures == []


def test_grace_period_must_exceed_heartbeat_interval(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="must exceed the heartbeat interval"):
        open_storage(str(tmp_path / "x.journal"), heartbeat_interval=30, grace_period=30)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket closes

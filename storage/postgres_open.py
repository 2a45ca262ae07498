"""Open a PostgreSQL storage: check the URL, connect with a pool of one, create Optuna's tables when a fleet
starts on a fresh database, and turn libpq's reasons into one line that says what to fix. `factory.open_storage`
imports this only for a PostgreSQL URL, so a journal or proxy worker never loads SQLAlchemy."""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import URL, make_url

from hpsearch.storage.defaults import CONNECT_TIMEOUT
from hpsearch.storage.errors import StorageError, StorageUnreachable
from hpsearch.storage.experimental import using_experimental_optuna
from hpsearch.storage.urls import redact_url, scrub

logger = logging.getLogger(__name__)

# One PostgreSQL connection per worker process (factory.POOL_SIZE), its heartbeat thread included: no overflow, so while
# the main loop holds the connection (a claim, a report: milliseconds) the heartbeat waits its turn
# instead of opening a second one. PostgreSQL allows 100 connections by default and a fleet multiplies
# this by its size; the README gives the formula and bench/coordination.py measures it.
POOL_MAX_OVERFLOW = 0
# How long a thread waits for the pooled connection before the operation fails as a storage error:
# the heartbeat then retries on its next tick, the worker loop after its outage wait.
POOL_TIMEOUT = 30  # seconds
APPLICATION_NAME = "hpsearch"  # shown in pg_stat_activity, with the process id: who holds which connection
_TABLE_CREATION_ATTEMPTS = 5
# Workers starting together on a fresh database race to CREATE TABLE/TYPE: PostgreSQL lets one win
# and the others hit unique_violation, duplicate_table or duplicate_object. The tables exist then.
_CREATION_RACE_CODES = {"23505", "42P07", "42710"}

# libpq's reason -> what the user should do about it. First match wins.
_RDB_FIXES = (
    ("password authentication failed", "check the user and password in the storage URL"),
    ('role "', "check the user name in the storage URL"),
    ("does not exist", "create the database (createdb NAME) or fix its name in the storage URL"),
    ("too many clients", "raise max_connections or put `hpsearch storage-proxy` in front of the database"),
    ("connection refused", "check that PostgreSQL is running and that HOST:PORT in the storage URL is right"),
    ("timeout", "check that HOST:PORT in the storage URL is reachable from this machine"),
    ("could not translate host name", "check the host name in the storage URL"),
    ("permission denied", "grant the user CREATE on the database, or use a user who owns it"),
)
# Reasons that a server still coming up (or a name its orchestrator has not published yet) gives: waiting may
# help. A bad password, user or database name never gets better by waiting.
_UNREACHABLE = ("connection refused", "timeout", "timed out", "could not translate host name", "starting up",
                "shutting down", "recovery mode", "no such file or directory")




def open_rdb(
    given: str, url: str, heartbeat_interval: int, grace_period: int, max_retry: int, pool_size: int
) -> RDBStorage:
    shown = redact_url(given)
    fix = "write postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB"
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        # SQLAlchemy's own message repeats the whole URL, password included.
        raise StorageError(f"storage {shown!r} is not a valid PostgreSQL URL; {fix}") from None
    if "@" in (parsed.host or ""):
        # SQLAlchemy split the password at its first "@": the rest would travel as a host name.
        raise StorageError(
            f"storage {shown!r} has an unescaped '@' in its password; percent-encode it ('@' is %40)"
        )
    if not (parsed.host or parsed.query.get("host")):
        raise StorageError(f"storage {shown!r} names no host; {fix}")
    if not parsed.database:
        raise StorageError(f"storage {shown!r} names no database; {fix}")
    with using_experimental_optuna():
        callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    storage = _create_rdb_storage(
        parsed.render_as_string(hide_password=False),
        shown,
        engine_kwargs={
            "pool_pre_ping": True,  # a worker idles for a whole epoch; drop dead connections, not trials
            "pool_size": pool_size,
            "max_overflow": POOL_MAX_OVERFLOW,
            "pool_timeout": POOL_TIMEOUT,
            "connect_args": _connect_args(parsed),
        },
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=callback,
    )
    logger.info(
        "opened PostgreSQL storage %s (heartbeat %d s, grace %d s, max retry %d)",
        shown,
        heartbeat_interval,
        grace_period,
        max_retry,
    )
    return storage


def _connect_args(parsed: URL) -> dict[str, Any]:
    args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
    if "application_name" not in parsed.query:  # the URL's own name wins
        # pg_stat_activity shows the server's process, not ours: the name says which process holds it.
        args["application_name"] = f"{APPLICATION_NAME} {os.getpid()}"
    return args


def _create_rdb_storage(url: str, shown: str, **kwargs: Any) -> RDBStorage:
    # Creating the storage connects, creates Optuna's tables if missing and checks the schema
    # version: every connection problem surfaces here, at open time, not mid-trial.
    for attempt in range(1, _TABLE_CREATION_ATTEMPTS + 1):
        try:
            # Tables and schema version first, on connections opened and closed as needed: Optuna's
            # set-up reads the schema version on a second connection while its session holds the
            # first, which a pool of one connection would wait on for ever. The worker's storage
            # then skips both and never needs two connections at once.
            setup = RDBStorage(url, engine_kwargs={"poolclass": sqlalchemy.pool.NullPool,
                                                   "connect_args": kwargs["engine_kwargs"]["connect_args"]},
                               skip_compatibility_check=True)
            _check_schema_version(setup, shown)
            setup.engine.dispose()
            with using_experimental_optuna():  # `heartbeat_interval` is an experimental argument
                return RDBStorage(url, skip_table_creation=True, skip_compatibility_check=True, **kwargs)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if getattr(getattr(exc, "orig", None), "pgcode", None) in _CREATION_RACE_CODES:
                if attempt == _TABLE_CREATION_ATTEMPTS:
                    raise StorageError(
                        f"cannot create Optuna's tables in {shown!r}: {_reason(exc, url)}; try again"
                    ) from None
                logger.info("another worker is creating the tables in %s; retrying", shown)
                time.sleep(random.uniform(0.1, 0.3) * attempt)  # jitter: the losers must not collide again
                continue
            reason = _reason(exc, url)
            fix = next((f for key, f in _RDB_FIXES if key in reason.lower()), "check the storage URL")
            error = StorageUnreachable if any(key in reason.lower() for key in _UNREACHABLE) else StorageError
            raise error(f"cannot open storage {shown!r}: {reason}; {fix}") from None
        except ImportError:
            raise StorageError(
                "the PostgreSQL driver psycopg2 is not installed; pip install psycopg2-binary"
            ) from None
    raise AssertionError("unreachable")


def _check_schema_version(storage: RDBStorage, shown: str) -> None:
    """Optuna's schema-version check, one connection at a time."""
    current, head = storage.get_current_version(), storage.get_head_version()
    if current == head:
        return
    fix = ("run `optuna storage upgrade --storage URL` once" if current in storage.get_all_versions()
           else "upgrade optuna (pip install -U optuna) to the version that wrote them")
    raise StorageError(f"storage {shown!r} holds tables from another Optuna version (schema {current},"
                       f" this Optuna reads {head}); {fix}")


def _reason(exc: sqlalchemy.exc.SQLAlchemyError, url: str) -> str:
    # The driver's own message says what went wrong; SQLAlchemy's wrapper adds SQL and a link.
    # Its first line is the news; libpq's further lines are hints our fix replaces.
    orig = getattr(exc, "orig", None) or exc
    first = next((line for line in str(orig).splitlines() if line.strip()), "")
    return scrub(first, url).removesuffix(".") or type(orig).__name__

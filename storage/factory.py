"""Turn a storage string into an opened Optuna storage, failing fast with one line when it cannot."""

from __future__ import annotations

import logging
import os

from optuna.storages import BaseStorage, GrpcStorageProxy

from hpsearch.storage.defaults import CONNECT_TIMEOUT, DEFAULT_HEARTBEAT_INTERVAL, default_grace_period
from hpsearch.storage.errors import StorageError, StorageUnreachable
from hpsearch.storage.experimental import using_experimental_optuna
from hpsearch.storage.stores.journal_files import open_journal
from hpsearch.storage.urls import parse_storage_string, resolve_storage_string

logger = logging.getLogger(__name__)

# One PostgreSQL connection per worker process, its heartbeat thread included (storage/postgres_open.py).
POOL_SIZE = 1


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int = 3,
    pool_size: int = POOL_SIZE,
    create: bool = True,
) -> BaseStorage:
    """Open the storage named by `url` (default `$HPSEARCH_STORAGE`, else `./hpsearch.journal`).

    `pool_size` is the most PostgreSQL connections it opens at once (one worker needs one), all kept
    open between uses; its store's `release` closes them until the next use.
    `create=False` is for commands that only read a campaign: a journal file that is not there is
    then a mistyped path, reported, rather than a new empty campaign store.
    The heartbeat settings configure Optuna's own stale-trial handling in PostgreSQL (used by
    `Study.optimize`); `Heartbeat` and `fail_stale_trials` take theirs explicitly, on every backend.
    Raises StorageError with one line, never containing a password, when it cannot be opened.
    """
    url = resolve_storage_string(url)
    if heartbeat_interval <= 0 or max_retry < 0 or pool_size < 1:
        raise StorageError(
            "heartbeat interval and pool size must be > 0 and max retry >= 0,"
            f" got {heartbeat_interval}, {pool_size} and {max_retry}"
        )
    if grace_period is None:
        grace_period = default_grace_period(heartbeat_interval)
    if grace_period <= heartbeat_interval:
        raise StorageError(
            f"grace period ({grace_period} s) must exceed the heartbeat interval ({heartbeat_interval} s),"
            " or every live trial looks dead between two beats; raise it"
        )
    spec = parse_storage_string(url)
    if spec.kind == "journal":
        if not create and not os.path.exists(spec.target):
            raise StorageError(f"no journal file at {spec.target!r}; check --storage, or run 'hpsearch init' first")
        return open_journal(spec.target)
    if spec.kind == "grpc":
        assert spec.port is not None
        return _open_grpc(spec.target, spec.port)
    # PostgreSQL's opening, and SQLAlchemy under it (a third of a worker's start), load only for PostgreSQL.
    from hpsearch.storage.postgres_open import open_rdb

    return open_rdb(url, spec.target, heartbeat_interval, grace_period, max_retry, pool_size)




def _open_grpc(host: str, port: int) -> GrpcStorageProxy:
    with using_experimental_optuna():
        storage = GrpcStorageProxy(host=host, port=port)
    try:
        storage.wait_server_ready(timeout=CONNECT_TIMEOUT)
    except ConnectionError:
        storage.close()
        raise StorageUnreachable(
            f"no storage proxy answers at grpc://{host}:{port} within {CONNECT_TIMEOUT} s;"
            " start one with `hpsearch storage-proxy` or fix HOST:PORT"
        ) from None
    logger.info("opened storage proxy client grpc://%s:%d", host, port)
    return storage

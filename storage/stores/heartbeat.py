"""Heartbeats for trials that workers claim themselves, on every storage backend.

Optuna beats only inside `Study.optimize`, and only for RDBStorage. hpsearch workers claim
enqueued trials directly, so they beat with `Heartbeat`: natively in PostgreSQL's heartbeat
table, or as the trial system attribute `hpsearch:heartbeat` where the storage has no such
table (the journal file, a gRPC proxy client).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import grpc
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage

from hpsearch.storage.defaults import DEFAULT_HEARTBEAT_INTERVAL
from hpsearch.storage.errors import StorageError
from hpsearch.storage.stores.backends import rdb_backend
from hpsearch.storage.urls import scrub

logger = logging.getLogger(__name__)

HEARTBEAT_ATTR = "hpsearch:heartbeat"
# Without a store's own list (`stores/`, which pass theirs): what any backend raises while briefly unavailable
# (and SQLAlchemy's errors on PostgreSQL).
_ANY_BACKEND_AWAY = (StorageInternalError, OSError, grpc.RpcError)
_JOIN_TIMEOUT = 5.0  # seconds; a beat stuck in a reconnect must not hold up the worker's exit


def heartbeat_record(trial_id: int, *, native: bool) -> dict[str, Any]:
    """The value of `hpsearch:heartbeat`: when, and which process holds the trial."""
    # `trial_id` is stored because a retried trial inherits its predecessor's system attributes,
    # and a heartbeat inherited from a dead trial must not be taken for a live one.
    return {
        "trial_id": trial_id,
        "time": time.time(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "native": native,
    }


def describe_error(exc: BaseException) -> str:
    """`Type: message` of the error underneath Optuna's and SQLAlchemy's wrappers (not yet scrubbed)."""
    if isinstance(exc, StorageInternalError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):
        return f"grpc {exc.code().name}: {exc.details()}"  # its str() is a multi-line dump
    # SQLAlchemy's text appends the SQL and a help link; the driver's own message is the news.
    exc = getattr(exc, "orig", None) or exc
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"


class Heartbeat:
    """`with Heartbeat(storage, trial_id, interval): ...` keeps a claimed trial alive while it runs."""

    def __init__(
        self, storage: BaseStorage, trial_id: int, interval: float | None = None, *, first_beat: bool = True,
        on_lost: Callable[[], object] | None = None, transient: tuple[type[BaseException], ...] | None = None,
    ) -> None:
        """`first_beat=False` when the claim already recorded the first beat (`claims.claim_waiting`).
        `on_lost` is called when a beat finds the trial finished: failed as stale while this process was
        paused or cut off, so the work on it can stop. A beat that fails with one of `transient` (the store's
        errors for a storage briefly away) is logged and tried again on the next tick."""
        rdb = rdb_backend(storage)
        if interval is None:
            interval = (rdb.get_heartbeat_interval() if rdb else None) or DEFAULT_HEARTBEAT_INTERVAL
        if interval <= 0:
            raise ValueError(f"`interval > 0` must hold, but got {interval=}")
        self._storage = storage
        self._rdb = rdb
        self._trial_id = trial_id
        self._interval = float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._secret_url = rdb.url if rdb else ""  # only to scrub it out of error messages
        self._first_beat = first_beat
        self._on_lost = on_lost
        self._transient = transient if transient is not None else _away(rdb)

    def __enter__(self) -> Heartbeat:
        # Beat before training starts, so a trial is never RUNNING for long without a heartbeat.
        alive = self._beat() if self._first_beat else True
        if alive and self._first_beat and self._rdb is not None:
            # Say who holds the trial, for `hpsearch status`, and tell gRPC clients (which cannot
            # see the heartbeat table) that this trial's heartbeat lives in the database.
            self._write(
                lambda: self._storage.set_trial_system_attr(
                    self._trial_id, HEARTBEAT_ATTR, heartbeat_record(self._trial_id, native=True)
                )
            )
        if alive:
            self._thread = threading.Thread(
                target=self._run, name=f"hpsearch-heartbeat-{self._trial_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_JOIN_TIMEOUT)
            if self._thread.is_alive():
                logger.info("heartbeat of trial %d still waits on the storage; leaving it", self._trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._beat():
                return

    def _beat(self) -> bool:
        """Record one heartbeat; False once the trial is finished and beating is pointless."""
        rdb = self._rdb
        if rdb is not None:
            # The heartbeat table takes beats for finished trials too: ask whether the trial is still ours.
            return self._write(lambda: rdb.record_heartbeat(self._trial_id)) and self._write(self._check_running)
        return self._write(
            lambda: self._storage.set_trial_system_attr(
                self._trial_id, HEARTBEAT_ATTR, heartbeat_record(self._trial_id, native=False)
            )
        )

    def _check_running(self) -> None:
        if self._on_lost is not None and self._storage.get_trial(self._trial_id).state.is_finished():
            raise UpdateFinishedTrialError(f"trial {self._trial_id} is finished")

    def _write(self, write: Callable[[], object]) -> bool:
        try:
            write()
        except UpdateFinishedTrialError:
            # Finished by its owner, or failed as stale by another worker: nothing left to keep alive.
            logger.info("trial %d is finished; its heartbeat stops", self._trial_id)
            if self._on_lost is not None and not self._stop.is_set():
                self._on_lost()
            return False
        except StorageError as exc:  # a full disk under the journal: the worker's next write ends it, in one line
            logger.info("heartbeat of trial %d stops: %s", self._trial_id, exc)
            return False
        except self._transient as exc:
            # The storage is down or restarting: say so and try again on the next tick; a dead
            # heartbeat thread would get a healthy trial failed, a crashed worker loses it outright.
            message = scrub(describe_error(exc), self._secret_url)
            logger.warning(
                "heartbeat of trial %d failed, retrying in %.1f s: %s",
                self._trial_id,
                self._interval,
                message,
            )
        return True


def _away(rdb: RDBStorage | None) -> tuple[type[BaseException], ...]:
    if rdb is None:
        return _ANY_BACKEND_AWAY
    import sqlalchemy.exc  # loaded already: an RDBStorage exists

    return (*_ANY_BACKEND_AWAY, sqlalchemy.exc.SQLAlchemyError)

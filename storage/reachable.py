"""Open a storage that may not answer yet: a fleet started together with its database, or during a failover."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from optuna.storages import BaseStorage

from hpsearch.storage.errors import StorageUnreachable
from hpsearch.storage.factory import open_storage
from hpsearch.storage.urls import redact_url, resolve_storage_string

logger = logging.getLogger(__name__)

MAX_PAUSE_S = 5.0  # between tries: a server that comes up is found within seconds, and a down one costs little
T = TypeVar("T")


def keep_trying(attempt: Callable[[], T], missing: type[Exception], wait: float, *, waiting: Callable[[], None],
                waited: str, pause: Callable[[float], float]) -> T:
    """`attempt()`, tried again for up to `wait` seconds while it raises `missing`; any other error ends it at once.

    `waiting` is called once, at the first miss (to say what is awaited); `pause(previous)` gives the next pause
    (the first `previous` is 0). When the time is up, the last miss is raised as it was if `wait` <= 0, else as
    `missing(f"{message} ({waited})")`, `waited` saying how long it waited."""
    deadline = time.monotonic() + wait
    slept, told = 0.0, False
    while True:
        try:
            return attempt()
        except missing as e:
            left = deadline - time.monotonic()
            if left <= 0:
                if wait <= 0:
                    raise
                raise missing(f"{e} ({waited})") from None
            if not told:
                waiting()
                told = True
            slept = pause(slept)
            time.sleep(min(slept, left))


def open_storage_waiting(url: str | None, wait: float, **kwargs: Any) -> BaseStorage:
    """`open_storage`, trying again for up to `wait` seconds while the storage is unreachable (refused, timed
    out, starting up); a malformed URL or a rejected password fails at once. Raises StorageUnreachable, saying
    how long it waited, when the time is up."""
    started, missed = time.monotonic(), []

    def waiting() -> None:
        missed.append(True)
        logger.warning("storage %s does not answer yet; waiting up to %g s for it",
                       redact_url(resolve_storage_string(url)), wait)

    storage = keep_trying(lambda: open_storage(url, **kwargs), StorageUnreachable, wait, waiting=waiting,
                          waited=f"after waiting {wait:g} s",
                          pause=lambda last: 0.5 if last == 0 else min(2 * last, MAX_PAUSE_S))
    if missed:
        logger.warning("storage reachable after %.0f s", time.monotonic() - started)
    return storage

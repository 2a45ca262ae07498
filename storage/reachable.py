"""Open a storage that may not answer yet: a fleet started together with its database, or during a failover."""

from __future__ import annotations

import logging
import time
from typing import Any

from optuna.storages import BaseStorage

from hpsearch.storage.errors import StorageUnreachable
from hpsearch.storage.factory import open_storage
from hpsearch.storage.urls import redact_url, resolve_storage_string

logger = logging.getLogger(__name__)

MAX_PAUSE_S = 5.0  # between tries: a server that comes up is found within seconds, and a down one costs little


def open_storage_waiting(url: str | None, wait: float, **kwargs: Any) -> BaseStorage:
    """`open_storage`, trying again for up to `wait` seconds while the storage is unreachable (refused, timed
    out, starting up); a malformed URL or a rejected password fails at once. Raises StorageUnreachable, saying
    how long it waited, when the time is up."""
    deadline = time.monotonic() + wait
    pause, told = 0.5, False
    while True:
        try:
            storage = open_storage(url, **kwargs)
        except StorageUnreachable as e:
            left = deadline - time.monotonic()
            if left <= 0:
                if wait <= 0:
                    raise
                raise StorageUnreachable(f"{e} (after waiting {wait:g} s)") from None
            if not told:
                logger.warning("storage %s does not answer yet; waiting up to %g s for it",
                               redact_url(resolve_storage_string(url)), wait)
                told = True
            time.sleep(min(pause, left))
            pause = min(2 * pause, MAX_PAUSE_S)
            continue
        if told:
            logger.warning("storage reachable after %.0f s", wait - (deadline - time.monotonic()))
        return storage

"""Storage strings to Optuna storages: PostgreSQL, a gRPC proxy or a journal file; heartbeats and retries."""

from hpsearch.storage.errors import StorageError
from hpsearch.storage.factory import (
    CONNECT_TIMEOUT,
    DEFAULT_HEARTBEAT_INTERVAL,
    default_grace_period,
    open_storage,
)
from hpsearch.storage.urls import redact_url

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "StorageError",
    "default_grace_period",
    "open_storage",
    "redact_url",
]

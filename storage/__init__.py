"""Storage strings to Optuna storages: PostgreSQL, a gRPC proxy or a journal file; heartbeats and retries."""

from hpsearch.storage.defaults import (
    CONNECT_TIMEOUT,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_HEARTBEAT_INTERVAL,
    default_grace_period,
)
from hpsearch.storage.errors import StorageError, StorageUnreachable
from hpsearch.storage.factory import open_storage
from hpsearch.storage.proxy import serve_storage_proxy
from hpsearch.storage.reachable import open_storage_waiting
from hpsearch.storage.stores.heartbeat import HEARTBEAT_ATTR, Heartbeat, describe_error
from hpsearch.storage.stores.stale import fail_stale_trials
from hpsearch.storage.urls import redact_url

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "HEARTBEAT_ATTR",
    "Heartbeat",
    "StorageError",
    "StorageUnreachable",
    "default_grace_period",
    "describe_error",
    "fail_stale_trials",
    "open_storage",
    "open_storage_waiting",
    "redact_url",
    "serve_storage_proxy",
]

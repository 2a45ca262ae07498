"""Storage strings to Optuna storages: PostgreSQL, a gRPC proxy or a journal file; heartbeats and retries."""

from hpsearch.storage.errors import StorageError
from hpsearch.storage.urls import redact_url

__all__ = ["StorageError", "redact_url"]

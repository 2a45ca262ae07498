"""Which Optuna storage class is behind a storage object: the stores' dispatch, and nothing else's."""

from __future__ import annotations

from optuna.storages import BaseStorage, RDBStorage

from hpsearch.storage.optuna_internals import backend_of


def rdb_backend(storage: BaseStorage) -> RDBStorage | None:
    """The RDBStorage behind `storage` (also when Optuna wrapped it in its cache), else None."""
    storage = backend_of(storage)
    return storage if isinstance(storage, RDBStorage) else None


def postgres_backend(storage: BaseStorage) -> RDBStorage | None:
    """The RDBStorage behind `storage` when it is PostgreSQL, else None."""
    rdb = rdb_backend(storage)
    return rdb if rdb is not None and rdb.engine.dialect.name == "postgresql" else None

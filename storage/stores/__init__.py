"""Trial stores: one per backend, behind the verbs of `base.TrialStore`; `store_for` picks a storage's store."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy

from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.backends import postgres_backend
from hpsearch.storage.stores.base import Claimed, Snapshot, TrialStore
from hpsearch.storage.stores.journal import JournalStore
from hpsearch.storage.stores.journal_files import journal_file
from hpsearch.storage.stores.proxy import ProxyStore

if TYPE_CHECKING:
    from hpsearch.storage.stores.postgres import PostgresStore

__all__ = ["Claimed", "JournalStore", "PostgresStore", "ProxyStore", "Snapshot", "TrialStore", "hush_qmc_notice",
           "store_for", "store_of"]

_STORES: weakref.WeakKeyDictionary[BaseStorage, TrialStore] = weakref.WeakKeyDictionary()


def store_for(storage: BaseStorage) -> TrialStore:
    """The store of `storage` (one per storage object, so what a store remembers is shared by its users)."""
    known = _STORES.get(storage)
    if known is not None:
        return known
    path = journal_file(storage)
    store: TrialStore
    if postgres_backend(storage) is not None:
        store = _postgres_store()(storage)
    elif isinstance(storage, GrpcStorageProxy):
        store = ProxyStore(storage)
    elif path is not None:
        store = JournalStore(storage, path)
    else:
        store = TrialStore(storage)  # any other Optuna storage (in memory, SQLite): the plain Optuna way
    _STORES[storage] = store
    return store


def _postgres_store() -> type[TrialStore]:
    """PostgreSQL's store, loaded with the first PostgreSQL storage: it and its SQL (claims, batched writes)
    import SQLAlchemy, a third of the start of a worker that runs on a journal file or a proxy."""
    from hpsearch.storage.stores.postgres import PostgresStore

    return PostgresStore


def __getattr__(name: str) -> object:
    if name == "PostgresStore":
        return _postgres_store()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_of(study: optuna.Study) -> TrialStore:
    """The store of the storage `study` reads and writes."""
    return store_for(internals.study_storage(study))


class _QmcConditionalNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return internals.QMC_CONDITIONAL_NOTICE not in record.getMessage()


def hush_qmc_notice() -> None:
    """Drop QMCSampler's notice, once per trial of a conditional space, that the space "does not include any
    conditions": plans expect it (momentum only with SGD), and Optuna samples the conditional params
    independently, which is what a coarse stage wants. Its logger is named after a private module."""
    logger = logging.getLogger(internals.QMC_LOGGER)
    if not any(isinstance(f, _QmcConditionalNotice) for f in logger.filters):
        logger.addFilter(_QmcConditionalNotice())

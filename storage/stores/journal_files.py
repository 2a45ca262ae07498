"""Journal files: opening one as an Optuna storage under hpsearch's append lock, and which file and lock are behind
a storage this process opened (the journal store's enqueue lock sits beside the file; `stale.py` does not count
waits for the lock as a worker's silence)."""

from __future__ import annotations

import json
import logging
import weakref

from optuna.storages import BaseStorage
from optuna.storages.journal import JournalStorage

from hpsearch.storage.errors import StorageError
from hpsearch.storage.stores.journal_lock import JournalAppendLock, JournalFile

__all__ = ["journal_file", "journal_lock", "open_journal"]

logger = logging.getLogger(__name__)

_FIRST_LINE_BYTES = 1 << 20  # a journal record is a few kB at most; a longer first "line" is no journal


def open_journal(path: str) -> JournalStorage:
    _check_journal_start(path)
    lock = JournalAppendLock(path)
    try:
        storage = JournalStorage(JournalFile(lock))
    except OSError as exc:
        raise StorageError(
            f"cannot open journal file {path!r}: {exc.strerror}; check its permissions"
        ) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: a torn or foreign line before the end
        raise StorageError(f"journal file {path!r} holds a line that is not an Optuna journal record;"
                           " check --storage (a plan or config file is not a storage)") from None
    logger.info("opened journal storage %s", path)
    _JOURNAL_LOCKS[storage] = lock
    return storage


def _check_journal_start(path: str) -> None:
    """Refuse a file whose first whole line is not a journal record: a plan passed as --storage would otherwise
    read as an empty campaign store, and `init` would append to it."""
    try:
        with open(path, "rb") as f:
            first = f.readline(_FIRST_LINE_BYTES)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot read journal file {path!r}: {exc.strerror}; check its permissions") from None
    if not first.endswith(b"\n"):  # empty, or a first write cut short: Optuna skips a torn last line itself
        return
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not (isinstance(record, dict) and "op_code" in record):
        raise StorageError(f"{path!r} is not an Optuna journal file (its first line is no journal record);"
                           " check --storage (a plan or config file is not a storage)")


# The append lock of each journal storage this process opened: its file, beside which `enqueue.py` keeps its
# lock, and the waits for it, which `stale.py` does not count as a worker's silence.
_JOURNAL_LOCKS: weakref.WeakKeyDictionary[BaseStorage, JournalAppendLock] = weakref.WeakKeyDictionary()


def journal_lock(storage: BaseStorage) -> JournalAppendLock | None:
    """The append lock of the journal file behind `storage` when `open_storage` opened it, else None."""
    return _JOURNAL_LOCKS.get(storage)


def journal_file(storage: BaseStorage) -> str | None:
    """The path of the journal file behind `storage` when `open_storage` opened it, else None."""
    lock = _JOURNAL_LOCKS.get(storage)
    return None if lock is None else lock.journal_path

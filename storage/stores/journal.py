"""The journal-file store: an enqueue holds an `flock` beside the journal (`journal_lock.py`), which the kernel
drops when its holder dies; a claim moves a WAITING trial of the last read to RUNNING, which the journal's log
order lets one process win."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage.stores.base import TrialStore
from hpsearch.storage.stores.enqueue import add_trials_once


class JournalStore(TrialStore):
    name = "journal file"
    # A full disk is not among them: the journal raises StorageFull (a StorageError) for it, which ends the worker.
    transient = (StorageInternalError, OSError)

    def __init__(self, storage: BaseStorage, path: str) -> None:
        super().__init__(storage)
        self.path = path

    def enqueue_by_id(self, study_id: int, templates: Sequence[FrozenTrial], key: str,
                  blocked_by: Sequence[TrialState]) -> int:
        return add_trials_once(self.storage, study_id, templates, key=key, blocked_by=blocked_by)  # under the flock

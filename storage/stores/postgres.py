"""The PostgreSQL store: a claim is one `FOR UPDATE SKIP LOCKED` transaction with the first heartbeat, an enqueue
one transaction under the study's row lock, several attributes one upsert (`claims.py`, `enqueue.py`,
`batch.py`, all written against Optuna's own tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.backends import postgres_backend
from hpsearch.storage.stores.base import Claimed, Snapshot, TrialStore
from hpsearch.storage.stores.batch import add_in_postgres, set_study_system_attrs, set_trial_user_attrs
from hpsearch.storage.stores.claims import claim_waiting


class PostgresStore(TrialStore):
    name = "PostgreSQL"
    transient = (StorageInternalError, sqlalchemy.exc.SQLAlchemyError)

    @property
    def rdb(self) -> RDBStorage:
        """The RDBStorage behind the storage (Optuna may have wrapped it in its cache)."""
        rdb = postgres_backend(self.storage)
        assert rdb is not None, "a PostgresStore serves a PostgreSQL storage"
        return rdb

    def claim(self, study: optuna.Study, snapshot: Snapshot, *, unique_key: str, retired_key: str,
              first_key: str) -> Claimed | None:
        study_id = internals.study_id(study)
        trial_id = claim_waiting(self.storage, study_id, unique_key=unique_key, retired_key=retired_key,
                                 first_key=first_key)
        if trial_id is None:
            return super().claim(study, snapshot, unique_key=unique_key, retired_key=retired_key,
                                 first_key=first_key)
        if trial_id not in self._listed.get(study_id, ()):
            # Optuna's trial cache takes params only for trials it has listed: a slot enqueued since this
            # process last read the stage (a retry) needs one more read. Once per stage, then rarely.
            snapshot.refresh()
            snapshot.trials  # noqa: B018 - the read is the point
        return Claimed(optuna.Trial(study, trial_id), True)

    def write_by_id(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        set_trial_user_attrs(self.rdb, trial_id, attrs)

    def write_study_system_by_id(self, study_id: int, attrs: Mapping[str, Any]) -> None:
        set_study_system_attrs(self.rdb, study_id, attrs)

    def enqueue_by_id(self, study_id: int, templates: Sequence[FrozenTrial], key: str,
                      blocked_by: Sequence[TrialState]) -> int:
        return add_in_postgres(self.rdb, study_id, templates, key=key, blocked_by=blocked_by)

    def release(self) -> None:
        self.rdb.engine.dispose()  # the engine stays usable: its next checkout connects again

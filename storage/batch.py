"""Several attributes in one transaction: Optuna's storage API writes one per transaction.

A trial that records its worker, config and provenance, or a dashboard note made of a version and a body,
costs one commit per attribute through Optuna (each with a look-up of its trial or study first). On
PostgreSQL these write them all in one upsert; other backends take them one by one, as Optuna writes them.
The checks are Optuna's: a finished trial takes no attribute (UpdateFinishedTrialError), a trial or study
that does not exist is a KeyError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._rdb import models
from sqlalchemy.dialects import postgresql

from hpsearch.storage.claims import postgres_backend


def set_trial_user_attrs(storage: BaseStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """`storage.set_trial_user_attr` for every item of `attrs`, in one transaction on PostgreSQL."""
    rdb = postgres_backend(storage)
    if rdb is None or not attrs:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return
    state = sqlalchemy.select(models.TrialModel.state).where(models.TrialModel.trial_id == trial_id)

    def write(session: sqlalchemy.orm.Session) -> None:
        found = session.execute(state).scalar_one_or_none()
        if found is None:
            raise KeyError(f"no trial with id {trial_id}")
        rdb.check_trial_is_updatable(trial_id, found)
        session.execute(_UPSERTS["trial_id"], _rows("trial_id", trial_id, attrs))

    _transaction(rdb, write)


def set_study_system_attrs(storage: BaseStorage, study_id: int, attrs: Mapping[str, Any]) -> None:
    """`storage.set_study_system_attr` for every item of `attrs`, in one transaction on PostgreSQL."""
    rdb = postgres_backend(storage)
    if rdb is None or not attrs:
        for key, value in attrs.items():
            storage.set_study_system_attr(study_id, key, value)
        return

    def write(session: sqlalchemy.orm.Session) -> None:
        try:
            session.execute(_UPSERTS["study_id"], _rows("study_id", study_id, attrs))
        except sqlalchemy.exc.IntegrityError:  # the foreign key: no such study
            raise KeyError(f"no study with id {study_id}") from None

    _transaction(rdb, write)


def _upsert_statement(table: sqlalchemy.Table, owner: str) -> sqlalchemy.Executable:
    insert = postgresql.insert(table)
    return insert.on_conflict_do_update(index_elements=[table.c[owner], table.c.key],
                                        set_={"value_json": insert.excluded.value_json})


# Built once: SQLAlchemy then compiles each once, and sends the rows of a call as one multi-row INSERT.
_UPSERTS = {
    "trial_id": _upsert_statement(models.TrialUserAttributeModel.__table__, "trial_id"),
    "study_id": _upsert_statement(models.StudySystemAttributeModel.__table__, "study_id"),
}


def _rows(owner: str, owner_id: int, attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{owner: owner_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]


def _transaction(rdb: RDBStorage, write: Callable[[sqlalchemy.orm.Session], None]) -> None:
    session = rdb.scoped_session()
    try:
        write(session)
        session.commit()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        session.rollback()
        raise StorageInternalError("could not write the attributes") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

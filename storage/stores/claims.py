"""Claim enqueued trials in PostgreSQL as a job queue does: one row lock, skipped by every other worker.

Optuna's way to run an enqueued trial (`Study.ask`) reads every unfinished trial of the study, with all its
attributes, and then tries them one by one: with many WAITING trials, each claim costs a read of all of them.
Here a claim is one transaction: `SELECT ... FOR UPDATE SKIP LOCKED` of the lowest-numbered WAITING row, a
look for a twin (below), the UPDATE, and the trial's first heartbeat. Its cost does not grow with the number
of waiting trials, and workers racing for trials never wait on each other's locks.
Other backends (the journal file, a gRPC proxy client) answer None: the caller claims the Optuna way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState
from sqlalchemy.dialects import postgresql

from hpsearch.storage.optuna_internals import rdb_models as models
from hpsearch.storage.stores.backends import postgres_backend
from hpsearch.storage.stores.batch import transaction, upsert_attrs
from hpsearch.storage.stores.heartbeat import HEARTBEAT_ATTR, heartbeat_record


def claim_waiting(storage: BaseStorage, study_id: int, *, unique_key: str | None = None,
                  retired_key: str = "retired", first_key: str | None = None) -> int | None:
    """Move the lowest-numbered WAITING trial of the study to RUNNING; its id, or None if none is left.

    Also None when the backend is not PostgreSQL (see `postgres_backend`). Race-free: the row stays locked
    from the SELECT to the commit, and every other claimer skips it instead of waiting for it. The commit
    also holds the trial's first heartbeat, as `Heartbeat` would record it: a row in Optuna's heartbeat
    table (the database's clock) and the `hpsearch:heartbeat` attribute that says so to gRPC clients.

    `unique_key` names a trial system attribute of which one trial per value may run: a candidate with a
    lower-numbered twin (same value) that has not failed is retired instead (FAIL, with system attribute
    `retired_key` = the twin's number), and the next candidate is tried. Trials that have the system
    attribute `first_key` (a retry's `failed_trial`) are taken before the others.
    """
    rdb = postgres_backend(storage)
    if rdb is None:
        return None
    while True:
        claimed = _claim_one(rdb, study_id, unique_key, retired_key, first_key)
        if claimed is None or claimed[1]:
            return None if claimed is None else claimed[0]


def _claim_one(rdb: RDBStorage, study_id: int, unique_key: str | None,
               retired_key: str, first_key: str | None) -> tuple[int, bool] | None:
    """(trial id, True) when claimed, (trial id, False) when retired as a twin, None when none waits."""
    trial_model, attr = models.TrialModel, models.TrialSystemAttributeModel
    order: list[Any] = [trial_model.number]
    if first_key is not None:
        marked = sqlalchemy.exists().where(attr.trial_id == trial_model.trial_id, attr.key == first_key)
        order.insert(0, marked.desc())
    pick = (
        sqlalchemy.select(trial_model)
        .where(trial_model.study_id == study_id, trial_model.state == TrialState.WAITING)
        .order_by(*order)
        .limit(1)
        .with_for_update(skip_locked=True)
    )

    def claim(session: sqlalchemy.orm.Session) -> tuple[int, bool] | None:
        trial = session.execute(pick).scalar_one_or_none()
        if trial is None:
            return None
        trial_id, now = int(trial.trial_id), datetime.now()
        twin = _twin(session, study_id, trial_id, int(trial.number), unique_key) if unique_key else None
        # As Optuna sets them: the model converts local time to what its schema version stores.
        trial.datetime_start = now
        if twin is not None:
            trial.state = TrialState.FAIL
            trial.datetime_complete = now
            upsert_attrs(session, models.TrialSystemAttributeModel, trial_id, {retired_key: twin})
            return trial_id, False
        trial.state = TrialState.RUNNING
        session.execute(_first_beat(trial_id))
        # A retry inherits its predecessor's system attributes, this marker included: overwrite it.
        marker = {HEARTBEAT_ATTR: heartbeat_record(trial_id, native=True)}
        upsert_attrs(session, models.TrialSystemAttributeModel, trial_id, marker)
        return trial_id, True

    return transaction(rdb, claim, "claim a waiting trial")


def _twin(session: sqlalchemy.orm.Session, study_id: int, trial_id: int, number: int, key: str) -> int | None:
    """The lowest number below `number` of a trial that shares `trial_id`'s value of `key` and has not failed."""
    trial_model, attr = models.TrialModel, models.TrialSystemAttributeModel
    value = (sqlalchemy.select(attr.value_json)
             .where(attr.trial_id == trial_id, attr.key == key)
             .scalar_subquery())
    query = (
        sqlalchemy.select(trial_model.number)
        .join(attr, attr.trial_id == trial_model.trial_id)
        .where(trial_model.study_id == study_id, trial_model.number < number, trial_model.state != TrialState.FAIL,
               attr.key == key, attr.value_json == value)
        .order_by(trial_model.number)
        .limit(1)
    )
    return session.execute(query).scalar_one_or_none()


def _first_beat(trial_id: int) -> sqlalchemy.Executable:
    """A heartbeat row stamped by the database's clock; an upsert, so no leftover row can fail the claim."""
    table = models.TrialHeartbeatModel.__table__
    return (postgresql.insert(table)
            .values(trial_id=trial_id, heartbeat=sqlalchemy.func.now())
            .on_conflict_do_update(index_elements=[table.c.trial_id], set_={"heartbeat": sqlalchemy.func.now()}))


def heartbeat_table_ages(rdb: RDBStorage, trial_ids: list[int]) -> dict[int, float]:
    """Seconds since each of `trial_ids` last beat in Optuna's heartbeat table, in the database's clock."""
    # Optuna reads this table only with the grace period fixed when the storage was built, and
    # only inside `Study.optimize`; reading it ourselves lets each call choose its grace period.
    # Both times come from the database's clock, so clock skew between workers cannot matter.
    table = models.TrialHeartbeatModel.__table__
    query = sqlalchemy.select(table.c.trial_id, table.c.heartbeat).where(table.c.trial_id.in_(trial_ids))
    with rdb.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        beats = connection.execute(query).all()
    # As in Optuna: the column holds naive timestamps while now() is timezone-aware.
    now = now.replace(tzinfo=None)
    return {trial_id: (now - beat).total_seconds() for trial_id, beat in beats}

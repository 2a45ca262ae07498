"""Several attributes, or a stage's slots, in one PostgreSQL transaction: Optuna's storage API writes one per
transaction.

A trial that records its worker, config and provenance, or a dashboard note made of a version and a body,
costs one commit per attribute through Optuna (each with a look-up of its trial or study first). On
PostgreSQL these write them all in one upsert (the PostgreSQL store's writes; the other stores take them one by one,
as Optuna writes them).
The checks are Optuna's: a finished trial takes no attribute (UpdateFinishedTrialError), a trial or study
that does not exist is a KeyError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy
from optuna.distributions import distribution_to_json
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.dialects import postgresql

from hpsearch.storage.optuna_internals import rdb_models as models

T = TypeVar("T")


def set_trial_user_attrs(rdb: RDBStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """`set_trial_user_attr` for every item of `attrs`, in one transaction."""
    if not attrs:
        return
    state = sqlalchemy.select(models.TrialModel.state).where(models.TrialModel.trial_id == trial_id)

    def write(session: sqlalchemy.orm.Session) -> None:
        found = session.execute(state).scalar_one_or_none()
        if found is None:
            raise KeyError(f"no trial with id {trial_id}")
        rdb.check_trial_is_updatable(trial_id, found)
        upsert_attrs(session, models.TrialUserAttributeModel, trial_id, attrs)

    transaction(rdb, write, "write the attributes")


def set_study_system_attrs(rdb: RDBStorage, study_id: int, attrs: Mapping[str, Any]) -> None:
    """`set_study_system_attr` for every item of `attrs`, in the order given and one transaction."""
    if not attrs:
        return

    def write(session: sqlalchemy.orm.Session) -> None:
        try:
            upsert_attrs(session, models.StudySystemAttributeModel, study_id, attrs)
        except sqlalchemy.exc.IntegrityError:  # the foreign key: no such study
            raise KeyError(f"no study with id {study_id}") from None

    transaction(rdb, write, "write the attributes")


def upsert_attrs(session: sqlalchemy.orm.Session, model: type[models.BaseModel], owner_id: int,
                 attrs: Mapping[str, Any]) -> None:
    """Insert or overwrite `attrs` of one trial or study in `model`'s attribute table: one statement."""
    owner = _OWNERS[model]
    rows = [{owner: owner_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
    session.execute(_UPSERTS[model], rows)


def _upsert_statement(table: sqlalchemy.Table, owner: str) -> sqlalchemy.Executable:
    insert = postgresql.insert(table)
    return insert.on_conflict_do_update(index_elements=[table.c[owner], table.c.key],
                                        set_={"value_json": insert.excluded.value_json})


_OWNERS: dict[type[models.BaseModel], str] = {
    models.TrialUserAttributeModel: "trial_id",
    models.TrialSystemAttributeModel: "trial_id",
    models.StudySystemAttributeModel: "study_id",
}
# Built once: SQLAlchemy then compiles each once, and sends the rows of a call as one multi-row INSERT.
_UPSERTS = {model: _upsert_statement(model.__table__, owner) for model, owner in _OWNERS.items()}


def transaction(rdb: RDBStorage, work: Callable[[sqlalchemy.orm.Session], T], what: str) -> T:
    """Run `work` in one session and commit; a database error rolls back and becomes Optuna's
    StorageInternalError("could not <what>"), as Optuna's own storage methods report it."""
    session = rdb.scoped_session()
    try:
        result = work(session)
        session.commit()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        session.rollback()
        raise StorageInternalError(f"could not {what}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    return result


def add_in_postgres(rdb: RDBStorage, study_id: int, trials: Sequence[FrozenTrial], *, key: str,
                    blocked_by: Sequence[TrialState] = tuple(TrialState)) -> int:
    """`enqueue.add_trials_once` in PostgreSQL: one transaction under the study's row lock."""
    return transaction(rdb, lambda s: _add_in_session(s, rdb, study_id, trials, key, blocked_by), "enqueue trials")


def _add_in_session(session: sqlalchemy.orm.Session, rdb: RDBStorage, study_id: int, trials: Sequence[FrozenTrial],
                    key: str, blocked_by: Sequence[TrialState]) -> int:
    trial_model, attr = models.TrialModel, models.TrialSystemAttributeModel
    # Serialises with every other enqueue and with Optuna's trial creation in this study.
    if session.execute(sqlalchemy.select(models.StudyModel.study_id).where(models.StudyModel.study_id == study_id)
                       .with_for_update()).scalar_one_or_none() is None:
        raise KeyError(f"no study with id {study_id}")
    present = set(session.execute(
        sqlalchemy.select(attr.value_json).join(trial_model, attr.trial_id == trial_model.trial_id)
        .where(trial_model.study_id == study_id, attr.key == key, trial_model.state.in_(list(blocked_by)))
    ).scalars())
    missing = [t for t in trials if _json(t.system_attrs.get(key)) not in present]
    if not missing:
        return 0
    count = session.execute(sqlalchemy.select(sqlalchemy.func.count(trial_model.trial_id))
                            .where(trial_model.study_id == study_id)).scalar_one()
    table = trial_model.__table__
    new = [{"study_id": study_id, "number": count + i, "state": TrialState.WAITING} for i in range(len(missing))]
    # One multi-row INSERT ... RETURNING, in the order of `new`: the trial ids.
    ids = session.execute(table.insert().returning(table.c.trial_id, sort_by_parameter_order=True), new).scalars()
    # New rows, so plain INSERTs: SQLAlchemy sends each list as one multi-row statement.
    system, user, params = [], [], []
    for trial_id, template in zip(ids.all(), missing, strict=True):
        system += _attr_rows(trial_id, template.system_attrs)
        user += _attr_rows(trial_id, template.user_attrs)
        for name, value in template.params.items():
            dist = template.distributions[name]
            params.append({"trial_id": trial_id, "param_name": name, "param_value": dist.to_internal_repr(value),
                           "distribution_json": distribution_to_json(dist)})
    for model, values in ((models.TrialSystemAttributeModel, system), (models.TrialUserAttributeModel, user),
                          (models.TrialParamModel, params)):
        if values:
            session.execute(sqlalchemy.insert(model), values)
    return len(missing)


def _attr_rows(trial_id: int, attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"trial_id": trial_id, "key": key, "value_json": _json(value)} for key, value in attrs.items()]


def _json(value: Any) -> str:
    return json.dumps(value)  # as Optuna stores attribute values

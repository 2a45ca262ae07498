"""The one door to Optuna's and optuna-dashboard's private (leading-underscore) names.

hpsearch uses the public API wherever it does the job. Where it reaches below it, it does so here and
nowhere else: `tests/test_private_names.py` fails when another file of the packages touches a private name,
and `tests/storage/test_optuna_internals.py` checks that each one below still exists and behaves as relied
on, so an Optuna upgrade that changes one fails there, by name. Each entry says why no public route serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from optuna.storages import BaseStorage, _CachedStorage
from optuna.storages._rdb import models as rdb_models
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import optuna

__all__ = [
    "QMC_CONDITIONAL_NOTICE",
    "QMC_LOGGER",
    "backend_of",
    "cached_frozen_trial",
    "dashboard_note_chunks",
    "dashboard_note_ver_key",
    "rdb_models",
    "study_id",
    "study_storage",
    "tell_without_readback",
    "trial_id",
]

# `rdb_models`: Optuna's SQLAlchemy models of its own tables. No public module exposes them; the one-transaction
# PostgreSQL claim (`FOR UPDATE SKIP LOCKED` plus the first heartbeat), the multi-row enqueue, the
# multi-attribute upserts and the heartbeat ages in the database's clock are written against them.

# QMCSampler logs, once per trial of a conditional space, that the space "does not include any conditions"
# (it samples conditional params independently, which is what a coarse stage wants). The worker filters
# that one notice out by its logger's name, which is the private module's, and by this text of it.
QMC_LOGGER = "optuna.samplers._qmc"
QMC_CONDITIONAL_NOTICE = "does not include any conditions"


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of `trial`: the storage API is keyed by it, and neither class exposes it publicly
    (the public route, `get_trial_id_from_study_id_trial_number`, costs a query per trial)."""
    return trial._trial_id


def study_id(study: optuna.Study) -> int:
    """The storage's id of `study`. Public route: `study_storage(study).get_study_id_from_name(name)`, a
    query on PostgreSQL each time; the study already holds the id."""
    return study._study_id


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage `study` reads and writes (Optuna's cache around an RDBStorage included). `Study` has no
    public accessor; claims, batched writes and the retry's `get_trial` are storage-level calls."""
    return study._storage


def cached_frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """The trial's own cached copy, which `Trial` keeps in step with its writes. Reading its system attributes
    costs no storage read (`Trial.system_attrs` reads the storage); after a batched user-attribute write,
    updating its `user_attrs` keeps it in step, as `Trial.set_user_attr` does."""
    return trial._cached_frozen_trial


def tell_without_readback(study: optuna.Study, trial: optuna.Trial, value: float | Sequence[float] | None = None,
                          state: TrialState | None = None) -> None:
    """`study.tell` without its last step, a read of the finished trial to return a copy the worker would
    drop: the function that `Study.tell` and `Study.optimize` both call. One round trip per trial saved."""
    _tell_with_warning(study=study, trial=trial, value_or_values=value, state=state)


def backend_of(storage: BaseStorage) -> BaseStorage:
    """The storage behind Optuna's cache (`get_storage` wraps every RDBStorage in `_CachedStorage`), else
    `storage` itself: the heartbeat table, claims and batched writes need the RDBStorage behind it."""
    return storage._backend if isinstance(storage, _CachedStorage) else storage


def dashboard_note_ver_key(trial_id: int | None) -> str:
    """optuna-dashboard's study system attribute that holds the version of a trial's note. Its public
    `save_note` reads every system attribute of the study to find the next version; a first note needs none."""
    from optuna_dashboard._note import note_ver_key  # a search-side dependency: imported when a note is written

    return note_ver_key(trial_id)


def dashboard_note_chunks(body: str, trial_id: int | None) -> dict[str, str]:
    """A note's body as optuna-dashboard stores it: study system attributes of bounded length, by key."""
    from optuna_dashboard._note import split_body

    return split_body(body, trial_id)

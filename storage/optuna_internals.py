"""The one door to Optuna's private (leading-underscore) names.

hpsearch uses the public API wherever it does the job. Where it reaches below it, it does so here and
nowhere else: `tests/test_private_names.py` fails when another file of the packages touches a private name,
and `tests/storage/test_optuna_internals.py` checks that each one below still exists and behaves as relied
on, so an Optuna upgrade that changes one fails there, by name. Each entry says why no public route serves.
"""

from __future__ import annotations

import copy
import datetime
from typing import TYPE_CHECKING

import optuna
from optuna.pruners import _filter_study
from optuna.storages import BaseStorage, _CachedStorage
from optuna.storages.journal._file import BaseJournalFileLock
from optuna.study._tell import _check_values_are_feasible
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.storages._rdb import models as rdb_models

__all__ = [
    "QMC_CONDITIONAL_NOTICE",
    "QMC_LOGGER",
    "BaseJournalFileLock",
    "backend_of",
    "cached_frozen_trial",
    "dashboard_note_chunks",
    "dashboard_note_ver_key",
    "prepare_brackets",
    "pruner_parts",
    "rdb_models",
    "retry_callback_limit",
    "sampler_options",
    "study_id",
    "study_storage",
    "tell_from_copy",
    "trial_from_claimed_copy",
    "trial_id",
]

# `rdb_models`: Optuna's SQLAlchemy models of its own tables. No public module exposes them; the one-transaction
# PostgreSQL claim (`FOR UPDATE SKIP LOCKED` plus the first heartbeat), the multi-row enqueue, the
# multi-attribute upserts and the heartbeat ages in the database's clock are written against them.

# `BaseJournalFileLock`: the base of the lock `JournalFileBackend(path, lock_obj=...)` takes around each append.
# The parameter is public, its type lives in a private module; `storage/stores/journal_lock.py` subclasses it with an
# `flock`, which no waiter breaks while its holder lives (Optuna's own locks are broken after a grace period).

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


def trial_from_claimed_copy(study: optuna.Study, waiting: FrozenTrial) -> optuna.Trial:
    """`optuna.Trial(study, id)` for a trial this process just moved from WAITING to RUNNING, built from `waiting`,
    the copy of it that the process read before claiming it, instead of reading it again.

    A WAITING trial is created whole (one `create_new_trial` with its template) and nobody writes to it until
    a claim wins it, so the copy is the stored trial but for the claim's state and start time. Through a gRPC
    proxy this saves one round trip per trial; the rest is `Trial.__init__` as Optuna writes it.
    """
    frozen = copy.deepcopy(waiting)
    frozen.state, frozen.datetime_start = TrialState.RUNNING, datetime.datetime.now()
    trial = optuna.Trial.__new__(optuna.Trial)
    trial.study, trial._trial_id, trial.storage = study, waiting._trial_id, study._storage
    trial._cached_frozen_trial = frozen
    study.sampler.before_trial(_filter_study(study, frozen), frozen)
    trial.relative_search_space, trial._relative_params = None, None
    trial._fixed_params = frozen.system_attrs.get("fixed_params", {})
    return trial


def tell_from_copy(study: optuna.Study, trial: optuna.Trial, value: float | None = None,
                   state: TrialState | None = None) -> TrialState:
    """`study.tell(trial, value, state)` for a single-objective trial this process ran, judged on the trial's own
    cached copy (which `Trial` keeps in step with its params, reports and user attributes) instead of the
    fresh read `Study.tell` starts with and the read of the finished trial it ends with: two round trips per
    trial saved. What `Study.tell` decides, it decides alike: no value or NaN is a FAIL, a PRUNED trial takes
    its last finite intermediate value, the sampler's `after_trial` sees the trial; a trial finished meanwhile
    (failed as stale elsewhere) is refused by the storage (UpdateFinishedTrialError). Returns the state told.
    """
    frozen = trial._cached_frozen_trial
    study._thread_local.cached_all_trials = None  # as Study.tell: the cache holds within one trial only
    values = None if value is None else [value]
    if state == TrialState.PRUNED:
        last = frozen.last_step
        if last is not None and _check_values_are_feasible(study, [frozen.intermediate_values[last]]) is None:
            values = [frozen.intermediate_values[last]]
    elif state in (None, TrialState.COMPLETE):
        problem = "no value" if values is None else _check_values_are_feasible(study, values)
        if problem is not None and state == TrialState.COMPLETE:
            raise ValueError(f"cannot tell trial {frozen.number} COMPLETE: {problem}")
        state = TrialState.COMPLETE if problem is None else TrialState.FAIL
    if state == TrialState.FAIL:
        values = None
    values = None if values is None else [float(v) for v in values]
    try:
        study.sampler.after_trial(_filter_study(study, frozen), frozen, state, values)
    finally:
        study._storage.set_trial_state_values(trial._trial_id, state, values)
    return state


def backend_of(storage: BaseStorage) -> BaseStorage:
    """The storage behind Optuna's cache (`get_storage` wraps every RDBStorage in `_CachedStorage`), else
    `storage` itself: the heartbeat table, claims and batched writes need the RDBStorage behind it."""
    return storage._backend if isinstance(storage, _CachedStorage) else storage


def dashboard_note_ver_key(trial_id: int | None) -> str:
    """optuna-dashboard's study system attribute that holds the version of a trial's note. `search/run/notes.py`
    writes the format by hand; `tests/watch/test_notes.py` compares it with this, so an upgrade that changes it
    fails there, by name."""
    from optuna_dashboard._note import note_ver_key

    return note_ver_key(trial_id)


def dashboard_note_chunks(body: str, trial_id: int | None) -> dict[str, str]:
    """A note's body as optuna-dashboard stores it: study system attributes of bounded length, by key (what
    `search/run/notes.py` writes by hand, compared in `tests/watch/test_notes.py`)."""
    from optuna_dashboard._note import split_body

    return split_body(body, trial_id)


def sampler_options(sampler: optuna.samplers.TPESampler) -> dict[str, object]:
    """The options a TPESampler was built with, which it keeps only in private attributes: what a test of
    `make_sampler` checks it passed on (constant liar, multivariate, group, startup trials)."""
    return {"constant_liar": sampler._constant_liar, "multivariate": sampler._multivariate,
            "group": sampler._group, "n_startup_trials": sampler._n_startup_trials}


def pruner_parts(pruner: optuna.pruners.PatientPruner) -> tuple[optuna.pruners.BasePruner | None, int]:
    """The pruner a PatientPruner wraps and its patience, which it keeps only in private attributes."""
    return pruner._wrapped_pruner, pruner._patience


def prepare_brackets(pruner: optuna.pruners.HyperbandPruner, study: optuna.Study) -> bool:
    """Set up a HyperbandPruner's brackets from `study` now, which Optuna does only at the pruner's first `prune`;
    whether it has them (with `max_resource: auto` it needs a finished trial). For OptunaHub's DEHB
    (bench/hub_baselines.py): its sampler reads the brackets, and its pruner its budgets (`_budget_candidates`,
    set at a first-iteration prune), from the study's pruner before the trial starts, and a worker's pruner
    object need not have pruned yet."""
    if pruner._n_brackets is None:
        pruner._try_initialization(study)
    if pruner._n_brackets is None:
        return False
    if getattr(pruner, "_budget_candidates", ()) is None:
        pruner._create_budget_candidates(study)
    return True


def retry_callback_limit(callback: optuna.storages.RetryFailedTrialCallback) -> int | None:
    """The retry limit a RetryFailedTrialCallback was built with (private attribute): what a test of
    `open_storage` checks it passed on."""
    return callback._max_retry


def __getattr__(name: str) -> object:
    """`rdb_models` loads on first use: it imports SQLAlchemy, which only PostgreSQL's store needs."""
    if name == "rdb_models":
        from optuna.storages._rdb import models

        return models
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

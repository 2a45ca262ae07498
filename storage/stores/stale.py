"""Find trials whose worker died, fail them, and retry them through Optuna's retry callback."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage.errors import StorageError
from hpsearch.storage.optuna_internals import trial_id as id_of
from hpsearch.storage.stores.backends import rdb_backend
from hpsearch.storage.stores.enqueue import AddOnce, queue_retry
from hpsearch.storage.stores.heartbeat import HEARTBEAT_ATTR
from hpsearch.storage.stores.journal_files import journal_lock
from hpsearch.storage.stores.journal_lock import unwritable_between

logger = logging.getLogger(__name__)


def fail_stale_trials(
    storage: BaseStorage, study_name: str, *, grace_period: float, max_retry: int, unique_key: str | None = None,
    on_given_up: Callable[[FrozenTrial], None] | None = None, add_once: AddOnce | None = None,
) -> list[int]:
    """Fail the RUNNING trials of `study_name` silent for over `grace_period` s; retry each up to `max_retry`.

    Safe to call from many workers at once: each stale trial is failed, and retried, exactly once. With
    `unique_key` (a system attribute such as a slot), no retry is added where a trial with the same value
    waits, runs or finished. `on_given_up` is called with each failed trial whose retries are used up (to drop
    what only a retry would have used, such as its checkpoint). `add_once` is the store's enqueue of a retry
(`enqueue.queue_retry`). Returns the ids of the trials this call failed.
    """
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        raise StorageError(
            f"no study named {study_name!r} in this storage; check the campaign name"
        ) from None
    running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    ages = heartbeat_ages(storage, running)
    failed = [id_of(t) for t in running if ages.get(id_of(t), 0.0) > grace_period and _fail(storage, t)]
    if not failed:
        return []
    for trial_id in failed:
        # Re-read: the copy must carry every system attribute the trial had when it died.
        trial = storage.get_trial(trial_id)
        reason = f"its worker sent no heartbeat for {ages[trial_id]:.1f} s (grace period {grace_period:g} s)"
        retried = queue_retry(storage, study_id, trial, reason, max_retry, unique_key=unique_key,
                              on_given_up=on_given_up, add_once=add_once)
        logger.warning(
            "trial %d of %s: %s; failed it, %s",
            trial.number,
            study_name,
            reason,
            f"no retry left (max {max_retry})" if retried is None else "queued its retry" if retried
            else "no retry queued",
        )
    return failed


def heartbeat_ages(storage: BaseStorage, running: list[FrozenTrial]) -> dict[int, float]:
    """Seconds since each RUNNING trial's last heartbeat (or its start, if it never beat); on a journal file,
    less the time nobody could append to it (`JournalAppendLock.stalls`)."""
    lock = journal_lock(storage)
    stalls = lock.stalls() if lock is not None else []
    rdb = rdb_backend(storage)
    table_ages = {}
    if rdb is not None:  # PostgreSQL's module (and SQLAlchemy) loads with a PostgreSQL storage only
        from hpsearch.storage.stores.claims import heartbeat_table_ages

        table_ages = heartbeat_table_ages(rdb, [id_of(t) for t in running])
    now, now_local = time.time(), datetime.now()
    ages: dict[int, float] = {}
    for trial in running:
        trial_id = id_of(trial)
        beat = trial.system_attrs.get(HEARTBEAT_ATTR)
        mine = isinstance(beat, dict) and beat.get("trial_id") == trial_id  # not one inherited by a retry
        if trial_id in table_ages:
            ages[trial_id] = table_ages[trial_id]
        elif mine and not beat["native"]:
            ages[trial_id] = now - beat["time"]
        elif mine and rdb is None:
            continue  # it beats in the database's heartbeat table, which a gRPC client cannot see
        elif trial.datetime_start is not None:
            # Its worker died between claiming it and the first beat. Optuna never fails such a
            # trial; we count from its start (naive local time, as both Optuna backends write it).
            ages[trial_id] = (now_local - trial.datetime_start).total_seconds()
    if stalls:  # nobody could beat while a paused process held the journal: that time is not silence
        ages = {i: age - unwritable_between(stalls, now - age, now) for i, age in ages.items()}
    return ages


def _fail(storage: BaseStorage, trial: FrozenTrial) -> bool:
    # The storage checks the transition itself (a row lock in PostgreSQL, log order in the
    # journal): of many workers failing the same trial, exactly one gets True and retries it.
    try:
        return storage.set_trial_state_values(id_of(trial), TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False  # another worker failed it first, or its owner finished it just now

"""A trial store: the few verbs a worker needs from its storage, one implementation per backend.

`search/` reads and writes trials through these verbs and Optuna's public API only. Each store owns what serves
its backend: its SQL and locks, the Optuna internals it relies on (`storage/optuna_internals.py`, imported by
the stores alone) and the errors that mean its storage is briefly away (`transient`). This base is the plain
Optuna way, right for any storage; the stores of `postgres.py`, `journal.py` and `proxy.py` replace a verb
where their backend has a cheaper or safer route.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import optuna
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.stores.enqueue import TAKEN, add_missing, queue_retry
from hpsearch.storage.stores.heartbeat import Heartbeat
from hpsearch.storage.stores.stale import fail_stale_trials
from hpsearch.storage.stores.waiting import remember_waiting, take_waiting


class Claimed(NamedTuple):
    """A trial this process moved from WAITING to RUNNING, and whether the claim recorded its first heartbeat."""

    trial: optuna.Trial
    first_beat_recorded: bool


class Snapshot(Protocol):
    """One read of a study's trials that the caller keeps (a stage's view); `refresh` drops it."""

    @property
    def trials(self) -> list[FrozenTrial]: ...

    def refresh(self) -> None: ...


class TrialStore:
    """The verbs on one opened storage; `store_for` picks the store of a storage object."""

    name = "storage"
    # What this storage raises while it is briefly away; a write that fails with one is worth repeating.
    transient: tuple[type[BaseException], ...] = (StorageInternalError,)

    @property
    def outage(self) -> tuple[type[BaseException], ...]:
        """The `transient` errors that no trial raises of its own: an OSError may also be a trial's file error."""
        return tuple(e for e in self.transient if not issubclass(e, OSError))

    def __init__(self, storage: BaseStorage) -> None:
        # Weak: `store_for` keeps a store per storage object for as long as that object lives, and a strong
        # reference back would keep both (and a PostgreSQL storage's connections) alive for good.
        self._storage = weakref.ref(storage)
        self._listed: dict[int, set[int]] = {}  # study id -> ids of the trials a read of it has listed
        # A random claim order per process: in one order every worker of a fleet would race for the same trial.
        self._order = random.Random()

    @property
    def storage(self) -> BaseStorage:
        """The storage this store serves."""
        storage = self._storage()
        if storage is None:
            raise RuntimeError("the storage of this trial store is gone; keep the storage while using its store")
        return storage

    # A trial in hand -------------------------------------------------------------------------------------------

    def trial_id(self, trial: optuna.Trial | FrozenTrial) -> int:
        """The storage's id of `trial` (for the callbacks that take ids, such as checkpoint hooks)."""
        return internals.trial_id(trial)

    def copy_of(self, trial: optuna.Trial) -> FrozenTrial:
        """The trial's own copy, kept in step with this process's writes: reading it costs no storage read."""
        return internals.cached_frozen_trial(trial)

    def read(self, trial: optuna.Trial | FrozenTrial) -> FrozenTrial:
        """The trial as stored now (one read)."""
        return self.storage.get_trial(internals.trial_id(trial))

    def live(self, study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> optuna.Trial:
        """A live handle on a stored trial (optuna-dashboard's API and `report` take live trials only)."""
        return trial if isinstance(trial, optuna.Trial) else optuna.Trial(study, internals.trial_id(trial))

    def trials(self, study: optuna.Study) -> list[FrozenTrial]:
        """Every trial of `study` (one read, not copied: the caller keeps it as its snapshot)."""
        trials = study.get_trials(deepcopy=False)
        self._listed.setdefault(internals.study_id(study), set()).update(internals.trial_id(t) for t in trials)
        return trials

    # Claims ----------------------------------------------------------------------------------------------------

    def claim(self, study: optuna.Study, snapshot: Snapshot, *, unique_key: str, retired_key: str,
              first_key: str) -> Claimed | None:
        """Move one WAITING trial of `study` to RUNNING (those with the system attribute `first_key` first); None
        when none waits. Of trials sharing a value of `unique_key`, the lowest-numbered one that has not failed
        runs: a higher-numbered twin is retired instead (FAIL, system attribute `retired_key`)."""
        waiting = self._take_from(study, snapshot, unique_key=unique_key, retired_key=retired_key,
                                  first_key=first_key)
        return None if waiting is None else Claimed(internals.trial_from_claimed_copy(study, waiting), False)

    def _take_from(self, study: optuna.Study, snapshot: Snapshot, *, unique_key: str, retired_key: str,
                   first_key: str) -> FrozenTrial | None:
        # The twin check reads the snapshot, not the storage again: a lower-numbered twin was created before the
        # claimed trial, so it is in the snapshot, and a state that moved on since can only have moved to one
        # for which the same decision is right (a twin that failed since has a retry with a higher number,
        # which will retire itself against this trial).
        remembered = remember_waiting(self.storage, internals.study_id(study), snapshot.trials,
                                      unique_key=unique_key, first_key=first_key, order=self._order)
        return take_waiting(self.storage, remembered, retired_key=retired_key)

    # Writes ----------------------------------------------------------------------------------------------------

    def write(self, trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
        """`trial.set_user_attr` for each item; the trial's own copy kept in step, as Optuna keeps it."""
        self.write_by_id(internals.trial_id(trial), attrs)
        internals.cached_frozen_trial(trial).user_attrs.update(attrs)

    def write_by_id(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        """The user attributes `attrs` of trial `trial_id` (`write` without a trial's copy to keep in step)."""
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, value)

    def write_system(self, trial_id: int, key: str, value: Any) -> None:
        """One system attribute of a running trial (a checkpoint's pointer)."""
        self.storage.set_trial_system_attr(trial_id, key, value)

    def write_study_system(self, study: optuna.Study, attrs: Mapping[str, Any]) -> None:
        """System attributes of `study`, written in this order (a reader never sees a later one without the
        earlier ones)."""
        self.write_study_system_by_id(internals.study_id(study), attrs)

    def write_study_system_by_id(self, study_id: int, attrs: Mapping[str, Any]) -> None:
        """`write_study_system` by the study's id."""
        for key, value in attrs.items():
            self.storage.set_study_system_attr(study_id, key, value)

    def enqueue_once(self, study: optuna.Study, templates: Sequence[FrozenTrial], *, key: str,
                     blocked_by: Sequence[TrialState] = tuple(TrialState)) -> int:
        """Add each WAITING template unless `study` has a trial in a `blocked_by` state with the same system
        attribute `key`; how many it added. Here a check and then the adds: racing callers may both add."""
        return self.enqueue_by_id(internals.study_id(study), templates, key, blocked_by)

    def enqueue_by_id(self, study_id: int, templates: Sequence[FrozenTrial], key: str,
                      blocked_by: Sequence[TrialState]) -> int:
        """`enqueue_once` by the study's id (the stale-trial check knows the study by name and id only)."""
        return add_missing(self.storage, study_id, templates, key=key, blocked_by=blocked_by)

    def retry(self, study: optuna.Study, failed: FrozenTrial, reason: str, max_retry: int, *, unique_key: str,
              on_given_up: Callable[[FrozenTrial], None] | None = None) -> bool | None:
        """Enqueue the retry of `failed` once (`enqueue.queue_retry`): True when queued, False when its slot has
        a trial waiting, running or finished, None when its retries are used up (after `on_given_up`)."""
        return queue_retry(self.storage, internals.study_id(study), failed, reason, max_retry,
                           unique_key=unique_key, on_given_up=on_given_up,
                           add_once=lambda sid, t: self.enqueue_by_id(sid, t, unique_key, TAKEN))

    def fail(self, trial: optuna.Trial) -> bool:
        """Move this process's running trial to FAIL; False when it was no longer running (failed as stale)."""
        try:
            return self.storage.set_trial_state_values(internals.trial_id(trial), state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False

    def tell(self, study: optuna.Study, trial: optuna.Trial, value: float | None = None,
             state: TrialState | None = None) -> TrialState:
        """`study.tell(trial, value, state)` judged on the trial's own copy, without its reads of the trial
        before and after; returns the state told."""
        return internals.tell_from_copy(study, trial, value, state)

    # Liveness --------------------------------------------------------------------------------------------------

    def beat(self, trial: optuna.Trial, interval: float, *, first_beat: bool = True,
             on_lost: Callable[[], object] | None = None) -> Heartbeat:
        """The heartbeat of a claimed trial (`with store.beat(...)`); `on_lost` when it finds the trial finished."""
        return Heartbeat(self.storage, internals.trial_id(trial), interval, first_beat=first_beat, on_lost=on_lost,
                         transient=self.transient)

    def fail_stale(self, study_name: str, *, grace_period: float, max_retry: int, unique_key: str,
                   on_given_up: Callable[[FrozenTrial], None] | None = None) -> list[int]:
        """Fail the trials of `study_name` silent past `grace_period` and enqueue their retries (`stale.py`)."""
        return fail_stale_trials(self.storage, study_name, grace_period=grace_period, max_retry=max_retry,
                                 unique_key=unique_key, on_given_up=on_given_up,
                                 add_once=lambda sid, t: self.enqueue_by_id(sid, t, unique_key, TAKEN))

    def release(self) -> None:
        """Close what the storage keeps open between uses (PostgreSQL connections); it reopens on next use."""

"""Claim enqueued trials from a remembered list, where each read of a study sends every waiting trial.

Through Optuna's gRPC proxy, `get_all_trials` sends the client every unfinished trial of the study with all its
attributes on every call (the client caches finished trials only), and the proxy reads them all from its
database first: when a study holds its whole budget as WAITING trials, a fresh read per claim costs a read of
every waiting trial. Here a process remembers the WAITING trials of its last read, in its own claim order, and
claims from that list: one `set_trial_state_values(RUNNING)` per try, a transition the storage checks, so
exactly one of racing claimers wins a trial. The claimer keeps the copy it read: a WAITING trial is written once,
whole, when it is created, so the copy is the trial but for its claim, and the claim needs no read of it.
Two checks keep what a fresh read would give:
- before each claim, one look-up of the trial numbered just past the last read's trials: when it exists, the
  study has gained trials since (a retry, to be taken before the others; a twin), and the caller reads again;
- a few lost races in a row mean other workers took the list's trials meanwhile: the caller reads again.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage.optuna_internals import trial_id as id_of
from hpsearch.storage.stores.heartbeat import HEARTBEAT_ATTR, heartbeat_record

MAX_MISSES = 3  # lost races in a row before the list counts as stale; each costs one round trip


@dataclass
class WaitingList:
    """The WAITING trials of one study as one read saw them, in the order this process claims them."""

    study_id: int
    next_number: int  # the number the study's next new trial gets, as of the read
    # (the trial as read, number of a lower-numbered trial of the same key that had not failed, or None)
    trials: list[tuple[FrozenTrial, int | None]] = field(default_factory=list)


def remember_waiting(storage: BaseStorage, study_id: int, trials: Sequence[FrozenTrial], *, unique_key: str,
                     first_key: str, order: random.Random) -> WaitingList:
    """Remember the WAITING trials among `trials` (one read of the study), shuffled by `order`, those with the
    system attribute `first_key` first; `claim_remembered` then claims from this list."""
    live: dict[object, int] = {}  # key value -> lowest number of a trial with it that has not failed
    for t in sorted(trials, key=lambda t: t.number):
        key = t.system_attrs.get(unique_key)
        if key is not None and t.state != TrialState.FAIL:
            live.setdefault(key, t.number)
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    # A random order per worker: in one shared order every worker of a fleet would race for the same trial
    # and all but one would spend a round trip losing it.
    order.shuffle(waiting)
    waiting.sort(key=lambda t: first_key not in t.system_attrs)
    entries = []
    for t in waiting:
        twin = live.get(t.system_attrs.get(unique_key)) if unique_key in t.system_attrs else None
        entries.append((t, twin if twin is not None and twin < t.number else None))
    remembered = WaitingList(study_id, max((t.number for t in trials), default=-1) + 1, entries)
    _LISTS.setdefault(storage, {})[study_id] = remembered
    return remembered


def take_waiting(storage: BaseStorage, remembered: WaitingList, *, retired_key: str,
                 max_misses: int | None = None) -> FrozenTrial | None:
    """Claim the next trial of `remembered` that is still WAITING; its copy as read (still WAITING), or None
    when none is left or `max_misses` tries in a row found theirs taken. A trial with a twin is retired (FAIL,
    system attribute `retired_key` = the twin's number) instead, and the next one is tried."""
    misses = 0
    while remembered.trials and (max_misses is None or misses < max_misses):
        waiting, twin = remembered.trials.pop(0)
        trial_id = id_of(waiting)
        try:
            claimed = storage.set_trial_state_values(trial_id, state=TrialState.RUNNING)
        except UpdateFinishedTrialError:
            claimed = False
        if not claimed:
            misses += 1
            continue
        if twin is None:
            return waiting
        # The twin was read before this trial was claimed, and it was created before this trial, so the read
        # that listed this trial listed it too. A twin that failed since has a retry numbered past this
        # trial, which retires itself against this one if this one is still live.
        storage.set_trial_system_attr(trial_id, retired_key, twin)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        misses = 0
    return None


def claim_remembered(storage: BaseStorage, study_id: int, *, retired_key: str) -> FrozenTrial | None:
    """Claim a trial from the study's last remembered list and record its first heartbeat; the trial's copy as
    read (`take_waiting`), or None when there is no list, it is used up, the study has gained trials since, or
    `MAX_MISSES` tries lost their race: then read the study again (`remember_waiting`)."""
    remembered = _LISTS.get(storage, {}).get(study_id)
    if remembered is None or not remembered.trials:
        return None
    try:
        storage.get_trial_id_from_study_id_trial_number(study_id, remembered.next_number)
    except KeyError:
        pass  # no trial was added since the list was read
    else:
        remembered.trials.clear()
        return None
    waiting = take_waiting(storage, remembered, retired_key=retired_key, max_misses=MAX_MISSES)
    if waiting is None:
        remembered.trials.clear()
        return None
    # The heartbeat's first beat, as `Heartbeat` records it where the storage has no heartbeat table.
    trial_id = id_of(waiting)
    storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, heartbeat_record(trial_id, native=False))
    return waiting


# Per storage object, so that lists die with their storage and a new storage reusing an id finds none.
_LISTS: weakref.WeakKeyDictionary[BaseStorage, dict[int, WaitingList]] = weakref.WeakKeyDictionary()

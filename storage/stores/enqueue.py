"""Enqueue trials keyed by a system attribute so that each key exists once, however many processes race.

Opening a stage enqueues one WAITING trial per slot, and a failed slot gets one retry. When two processes
do either at the same time (two workers noticing a finished stage together, a stale-trial retry racing an
orphan repair), checking for a twin and adding the trial must be one step, or both add it. On PostgreSQL
it is one transaction under the study's row lock (the lock Optuna's own trial creation takes, so numbers
stay consecutive), which also makes a stage's 2,000 slots one commit instead of 2,000. On a journal file
opened by `open_storage` it is an exclusive `flock` on a file beside the journal, which the kernel drops
when its holder dies. Through `hpsearch storage-proxy` the proxy runs the PostgreSQL enqueue for its client
(`proxy_calls.py`); through Optuna's own proxy it is a check and then the adds (twins then retire when
claimed).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage.proxy_calls import add_once_on_proxy, understood
from hpsearch.storage.stores.backends import postgres_backend
from hpsearch.storage.stores.journal_files import journal_file
from hpsearch.storage.stores.journal_lock import flocked

AddOnce = Callable[[int, Sequence[FrozenTrial]], int]
LOCK_WAIT_S = 30.0  # a holder that keeps the lock this long is stopped (SIGSTOP) or hung: give up for now


def add_trials_once(storage: BaseStorage, study_id: int, trials: Sequence[FrozenTrial], *, key: str,
                    blocked_by: Sequence[TrialState] = tuple(TrialState)) -> int:
    """Add each WAITING `trials[i]` unless the study has a trial in a `blocked_by` state with the same
    system attribute `key`; atomic where the storage allows (see the module doc). Returns how many it added."""
    rdb = postgres_backend(storage)
    if rdb is not None:  # PostgreSQL's module (and SQLAlchemy) loads with a PostgreSQL storage only
        from hpsearch.storage.stores.batch import add_in_postgres

        return add_in_postgres(rdb, study_id, trials, key=key, blocked_by=blocked_by)
    if isinstance(storage, GrpcStorageProxy) and understood(storage):
        return add_once_on_proxy(storage, study_id, trials, key, blocked_by)
    with _journal_lock(storage):
        return add_missing(storage, study_id, trials, key=key, blocked_by=blocked_by)


def add_missing(storage: BaseStorage, study_id: int, trials: Sequence[FrozenTrial], *, key: str,
                blocked_by: Sequence[TrialState]) -> int:
    """The plain Optuna way, a look and then the adds: each of `trials` whose `key` no trial in a `blocked_by`
    state has. Atomic only under a lock the caller holds."""
    present = {t.system_attrs.get(key) for t in storage.get_all_trials(study_id, deepcopy=False)
               if t.state in blocked_by}
    missing = [t for t in trials if t.system_attrs.get(key) not in present]
    for template in missing:
        storage.create_new_trial(study_id, template_trial=template)
    return len(missing)


@contextlib.contextmanager
def _journal_lock(storage: BaseStorage) -> Iterator[None]:
    """Hold the enqueue lock of the journal file behind `storage`; nothing for other backends. A holder that
    keeps it past LOCK_WAIT_S is paused or hung: StorageInternalError, transient by the worker's rules (it
    waits and tries again, and so does a paused holder once it resumes)."""
    path = journal_file(storage)
    if path is None:
        yield
        return
    with flocked(f"{path}.enqueue.lock", give_up_after=LOCK_WAIT_S):
        yield


def retry_template(trial: FrozenTrial, reason: str, max_retry: int) -> FrozenTrial | None:
    """The WAITING copy of failed `trial` that Optuna's `RetryHeartbeatStaleTrialCallback` would add (same
    params, system attributes and retry history), or None once `max_retry` retries are used up. Its user
    attributes are not the failed trial's but where it came from: `retry_of` (number and reason)."""
    from hpsearch.storage.experimental import using_experimental_optuna

    source = copy.deepcopy(trial)
    source.user_attrs = {"retry_of": {"trial": trial.number, "reason": reason}}
    captured: list[FrozenTrial] = []

    class _Capture:  # stands in for the study: the callback's only use of it is add_trial
        def add_trial(self, template: FrozenTrial) -> None:
            captured.append(template)

    with using_experimental_optuna():
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    callback(_Capture(), source)  # type: ignore[arg-type]
    return captured[0] if captured else None


# A slot with a trial in one of these states needs no retry.
TAKEN = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


def queue_retry(storage: BaseStorage, study_id: int, trial: FrozenTrial, reason: str, max_retry: int, *,
                unique_key: str | None = None, on_given_up: Callable[[FrozenTrial], None] | None = None,
                add_once: AddOnce | None = None) -> bool | None:
    """Queue the retry of failed `trial` (`retry_template`): True when queued; False when `unique_key` is given
    and its slot already has a trial waiting, running or finished; None when its retries are used up, after
    calling `on_given_up` with it (to drop what only a retry would have used, such as its checkpoint).
    `add_once(study_id, templates)` adds unless the key is taken (a store's own; default `add_trials_once`)."""
    template = retry_template(trial, reason, max_retry)
    if template is None:
        if on_given_up is not None:
            on_given_up(trial)
        return None
    if unique_key is not None and add_once is not None:
        return add_once(study_id, [template]) > 0
    if unique_key is not None:
        return add_trials_once(storage, study_id, [template], key=unique_key, blocked_by=TAKEN) > 0
    storage.create_new_trial(study_id, template_trial=template)
    return True

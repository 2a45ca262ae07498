"""Retrying a failed trial in its slot, and recording a slot whose retries are used up (its stage then ends
under budget, which `status`, `run` and the export report); retrying a trial's storage calls through an outage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpsearch.search.plan.stage_logic import SLOT
from hpsearch.storage.stores import store_of

GIVEN_UP = "given_up:"  # a stage's user attribute per slot whose retries were used up: the stage ends under budget


def retry_trial(study: optuna.Study, trial: FrozenTrial, reason: str, max_retry: int,
                on_given_up: Callable[[FrozenTrial], None] | None = None) -> bool:
    """Enqueue the retry of failed `trial` (Optuna's copy: its slot, params and retry history; user attribute
    `retry_of` says from where and why), unless retries are used up or its slot has a live or finished trial.
    When its retries are used up the slot is recorded as given up and `on_given_up` is called with `trial`
    (the store's `retry`, which its stale-trial check shares)."""
    return bool(store_of(study).retry(study, trial, reason, max_retry, unique_key=SLOT,
                                      on_given_up=record_given_up(study, reason, on_given_up)))


def record_given_up(study: optuna.Study, reason: str,
                    then: Callable[[FrozenTrial], None] | None = None) -> Callable[[FrozenTrial], None]:
    """What runs when a slot's retries are used up: the stage's `given_up:<slot>` attribute says which trial
    failed last and why (status, run and export report the stage as under budget), then `then`."""
    def record(trial: FrozenTrial) -> None:
        slot = trial.system_attrs.get(SLOT)
        if slot is not None:
            why = trial.user_attrs.get("fail_reason") or reason
            study.set_user_attr(f"{GIVEN_UP}{slot}", {"trial": trial.number, "reason": why})
        if then is not None:
            then(trial)
    return record


def given_up(study_attrs: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Slot -> {trial, reason} of the stage's slots whose retries were used up, from its study's attributes."""
    return {int(k[len(GIVEN_UP):]): dict(v) for k, v in study_attrs.items()
            if k.startswith(GIVEN_UP) and isinstance(v, dict)}


class Patient:
    """Calls a trial's storage writes and reads, retrying one that fails because the storage is briefly away
    (`transient`: the store's errors for that) for up to `seconds`; a stop, or an outage that outlasts them,
    raises the error."""

    RETRY_S = 1.0

    def __init__(self, seconds: float, stop: threading.Event, transient: tuple[type[BaseException], ...]) -> None:
        self.seconds, self.stop, self.transient = seconds, stop, transient

    def __call__(self, fn: Any, *args: Any) -> Any:
        deadline = time.monotonic() + self.seconds
        while True:
            try:
                return fn(*args)
            except self.transient:
                if self.stop.is_set() or time.monotonic() + self.RETRY_S > deadline:
                    raise
                self.stop.wait(self.RETRY_S)

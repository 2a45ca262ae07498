"""One claimed trial: its TrainConfig, the training run with pruning, and everything recorded with it."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hpsearch.objectives import provenance
from hpsearch.objectives.checkpoint import DEFAULT_INTERVAL
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.objective import Objective
from hpsearch.objectives.result import EpochRecord, StopTraining
from hpsearch.search.campaign import OVERRIDES, StageView
from hpsearch.search.checkpoints import TrialCheckpoint
from hpsearch.search.cost import recorded, trial_cost
from hpsearch.search.notes import annotate_trial, write_trial_note
from hpsearch.search.plan import Plan, StageKind
from hpsearch.search.record import TrialRecord
from hpsearch.search.space import sample_params
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.batch import set_trial_user_attrs

log = logging.getLogger(__name__)
LIVE_HISTORY_MIN_S = 1.0  # epochs shorter than this get their history written once, at the end


class Interrupted(Exception):
    """The worker was asked to stop (SIGTERM): the trial is handed back to be retried."""


def trial_config(plan: Plan, view: StageView, trial: optuna.Trial, device: str, *, sample: bool = True) -> TrainConfig:
    """Base config, then the stage's fidelity, then the sampled params, then per-slot overrides (the seed)."""
    params = sample_params(trial, view.space) if sample else {}
    overrides = internals.cached_frozen_trial(trial).system_attrs.get(OVERRIDES, {})
    return plan.config_for(view.stage, {**params, **overrides, "device": device}, where=f"trial {trial.number}")


def run_trial(plan: Plan, view: StageView, trial: optuna.Trial, objective: Objective, *, device: str,
              data_dir: Path | None, stop: threading.Event, artifacts: Path | None = None,
              checkpoints: Any = None, checkpoint_interval: float = DEFAULT_INTERVAL) -> TrialState:
    """Train one claimed trial and tell the study how it ended; returns the state it was told.

    With `checkpoints` (an Optuna artifact store) the objective checkpoints the trial there, and a retry resumes
    from its predecessor's latest checkpoint; a finished trial's checkpoint is removed, the final stage's
    trained weights are kept as an artifact of the trial.
    """
    study = view.study
    rec = TrialRecord.of(internals.cached_frozen_trial(trial))  # a retry starts with `retry_of`
    rec.worker = {"host": socket.gethostname(), "device": device, "pid": os.getpid()}
    if view.stage.kind == StageKind.LR_RANGE_TEST:
        return _run_range_test(plan, view, trial, objective, device, data_dir, rec)
    # A comparison on the base config has no params to sample: its slots carry everything in their overrides.
    sample = view.stage.kind != StageKind.COMPARE or "fixed_params" in internals.cached_frozen_trial(trial).system_attrs
    try:
        config = trial_config(plan, view, trial, device, sample=sample)
    except ConfigError as e:
        # A combination the space allows but TrainConfig rejects: a retry would fail the same way.
        rec.fail_reason = str(e)
        record(trial, rec.attrs("worker", "fail_reason"))
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    rec.config, rec.provenance = config, provenance.collect(data_dir, [config.seed])
    record(trial, rec.attrs("worker", "config", "provenance"))
    live: list[dict[str, Any]] = []  # the history so far, in its stored form
    pruner_name = type(study.pruner).__name__

    def on_epoch(record: EpochRecord) -> None:
        live.append(dataclasses.asdict(record))
        trial.report(record.val_acc, record.epoch)
        if record.seconds >= LIVE_HISTORY_MIN_S:  # live curves where an epoch is worth a write
            trial.set_user_attr("history", live)
        if stop.is_set() and record.epoch < config.epochs:  # after the last epoch: finish, nothing is left
            raise Interrupted
        if trial.should_prune():
            raise StopTraining(f"pruned by {pruner_name} at epoch {record.epoch}: "
                               f"validation accuracy {record.val_acc:.4f} fell behind the other trials")

    def on_step(batch: int, total: int) -> None:
        if stop.is_set():
            raise Interrupted

    hook, hooked = None, {}
    if checkpoints is not None and objective.checkpoints:
        hook = TrialCheckpoint(checkpoints, trial, final_epoch=config.epochs,
                               keep_weights=view.stage.kind == StageKind.FINAL)
        hooked = {"checkpoint": hook, "checkpoint_interval": checkpoint_interval}
    started = time.monotonic()
    # An exception (a stop, a crash) leaves the checkpoint in place for the retry.
    result = objective.train(config, data_dir=data_dir, on_epoch=on_epoch, on_step=on_step, **hooked)
    # Wall time on the device, data loading and compilation included: what the trial kept others from using.
    cost = trial_cost(config.to_dict(), len(result.history), time.monotonic() - started)
    rec.history, rec.status, rec.seconds = list(result.history), result.status, round(result.seconds, 3)
    rec.cost = recorded(cost)
    rec.pruned_reason = result.reason if result.status != "completed" else None
    rec.resumed_from_epoch, rec.checkpoint_ignored = result.resumed_from_epoch, result.checkpoint_ignored
    record(trial, rec.attrs("history", "status", "seconds", "cost", "pruned_reason", "resumed_from_epoch",
                            "checkpoint_ignored"))
    if hook is not None and result.status == "completed":
        _keep_weights(hook, trial, config.seed)
    _annotate(view, trial, rec, result.reason, artifacts)  # before tell: a finished trial takes no artifact
    state = _finish(study, trial, result)
    if hook is not None:
        hook.discard()  # told: nothing resumes it (until then a retry after a storage outage would)
    return state


def _finish(study: optuna.Study, trial: optuna.Trial, result: Any) -> TrialState:
    if result.status == "completed":
        _tell(study, trial, result.final_val_acc)
        return TrialState.COMPLETE
    if result.status == "diverged" and result.history:
        last = result.history[-1]
        if last.val_acc == last.val_acc:  # report the diverged epoch too, so the curve shows the collapse
            trial.report(last.val_acc, last.epoch)
    _tell(study, trial, state=TrialState.PRUNED)
    return TrialState.PRUNED


def _keep_weights(hook: TrialCheckpoint, trial: optuna.Trial, seed: int) -> None:
    """The final stage's trained weights as an artifact of the trial; a failure loses them, not the trial (a trial
    finished elsewhere meanwhile is the worker's to drop)."""
    try:
        hook.keep_weights_artifact(seed)
    except optuna.exceptions.UpdateFinishedTrialError:
        raise  # failed as stale meanwhile: the worker drops the trial, in one line
    except Exception:
        log.exception("could not keep the weights of trial %d", trial.number)


def _annotate(view: StageView, trial: optuna.Trial, rec: TrialRecord, reason: str | None,
              artifacts: Path | None) -> None:
    """The dashboard note, and the curves artifact when there is an artifact store; never fails the trial (a
    trial finished elsewhere meanwhile is the worker's to drop)."""
    # first: this worker claimed the trial, so no note of it exists yet and no other worker writes one
    study, stage = view.study, view.stage.name
    try:
        if artifacts is None:
            write_trial_note(study, trial, reason, record=rec, stage=stage, first=True)
        else:
            annotate_trial(study, trial, rec, reason, artifacts, stage=stage, first=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        raise  # failed as stale meanwhile: the worker drops the trial, in one line
    except Exception:
        log.exception("could not write the note or curves of trial %d", trial.number)


def _tell(study: optuna.Study, trial: optuna.Trial, value: float | None = None,
          state: TrialState | None = None) -> None:
    """`study.tell` judged on the trial's own copy, without its read of the trial before and after."""
    internals.tell_from_copy(study, trial, value, state)


def record(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """`trial.set_user_attr` for each item, in one database round trip where the storage allows it."""
    set_trial_user_attrs(trial.storage, internals.trial_id(trial), attrs)
    internals.cached_frozen_trial(trial).user_attrs.update(attrs)  # as Trial.set_user_attr keeps its copy in step


def _run_range_test(plan: Plan, view: StageView, trial: optuna.Trial, objective: Objective, device: str,
                    data_dir: Path | None, rec: TrialRecord) -> TrialState:
    rec.config = trial_config(plan, view, trial, device, sample=False)  # the range test searches nothing
    record(trial, rec.attrs("worker", "config"))
    assert objective.lr_range is not None  # `objective_for` refused the plan otherwise
    rec.lr_range = objective.lr_range(rec.config, data_dir)
    record(trial, rec.attrs("lr_range"))
    # A complete trial needs a value; the range's top is one, but a learning rate, not an accuracy: status,
    # report and export read `lr_range` for this stage and never rank or show the value as an accuracy.
    view.study.tell(trial, rec.lr_range[1])
    return TrialState.COMPLETE

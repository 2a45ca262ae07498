"""One claimed trial: its TrainConfig, the training run with pruning, and everything recorded with it."""

from __future__ import annotations

import logging
import math
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
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.objective import Metric, Objective, Pruned, epoch_equivalents
from hpsearch.objectives.result import EpochRecord, StopTraining, TrainResult
from hpsearch.search.plan.plan import Plan, StageKind
from hpsearch.search.plan.space import sample_params
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.campaign import OVERRIDES, StageView
from hpsearch.search.run.checkpoints import TrialCheckpoint
from hpsearch.search.run.cost import Cost, recorded, trial_cost, user_cost
from hpsearch.search.run.notes import annotate_trial, write_trial_note
from hpsearch.search.run.retries import Patient
from hpsearch.storage.errors import StorageError
from hpsearch.storage.stores import TrialStore

log = logging.getLogger(__name__)
LIVE_HISTORY_MIN_S = 1.0  # epochs shorter than this get their history written once, at the end


class Interrupted(Exception):
    """The worker was asked to stop (SIGTERM): the trial is handed back to be retried."""


def trial_config(plan: Plan, view: StageView, trial: optuna.Trial, device: str, *, sample: bool = True) -> Any:
    """Base config, then the stage's fidelity, then the sampled params, then per-slot overrides (the seed); the
    worker's device where the objective's config has a `device` field (a simple objective's params get none)."""
    params = sample_params(trial, view.space) if sample else {}
    overrides = view.store.copy_of(trial).system_attrs.get(OVERRIDES, {})
    placed = {"device": device} if "device" in (plan.schema.keys() or ()) else {}
    return plan.config_for(view.stage, {**params, **overrides, **placed}, where=f"trial {trial.number}")


def run_trial(plan: Plan, view: StageView, trial: optuna.Trial, objective: Objective, *, device: str,
              data_dir: Path | None, stop: threading.Event, artifacts: Path | None = None,
              checkpoints: Any = None, checkpoint_interval: float = DEFAULT_INTERVAL,
              patience: float = 0.0) -> TrialState:
    """Train one claimed trial and tell the study how it ended; returns the state it was told.

    Its writes to the storage (reports, attributes, the tell) wait out an outage of up to `patience` seconds
    (the grace period: past it, the trial is failed as stale and retried elsewhere anyway).

    With `checkpoints` (an Optuna artifact store) the objective checkpoints the trial there, and a retry resumes
    from its predecessor's latest checkpoint; a finished trial's checkpoint is removed, the final stage's
    trained weights are kept as an artifact of the trial.
    """
    study, store, patient = view.study, view.store, Patient(patience, stop, view.store.transient)
    rec = TrialRecord.of(store.copy_of(trial))  # a retry starts with `retry_of`
    rec.worker = {"host": socket.gethostname(), "device": device, "pid": os.getpid()}
    if view.stage.kind == StageKind.LR_RANGE_TEST:
        return _run_range_test(plan, view, trial, objective, device, data_dir, rec)
    # A comparison on the base config has no params to sample: its slots carry everything in their overrides.
    sample = view.stage.kind != StageKind.COMPARE or "fixed_params" in store.copy_of(trial).system_attrs
    try:
        config = trial_config(plan, view, trial, device, sample=sample)
    except ConfigError as e:
        # A combination the space allows but the config rejects: a retry would fail the same way.
        rec.fail_reason = str(e)
        store.write(trial, rec.attrs("worker", "fail_reason"))
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    params = plan.schema.dump(config)
    rec.config = params
    rec.provenance = provenance.collect(data_dir, [params["seed"]] if isinstance(params.get("seed"), int) else [])
    patient(store.write, trial, rec.attrs("worker", "config", "provenance"))
    started = time.monotonic()
    hook = None
    if objective.simple:
        result, value = _run_simple(objective, params, trial, plan.metric, stop, patient)
    else:
        result, hook = _run_full(objective, config, trial, view, plan.metric, data_dir, stop, checkpoints,
                                 checkpoint_interval, patient)
        value = result.final_value(plan.metric.name) if result.status == "completed" else None
        if result.status == "completed" and value is None:
            raise MetricMissing(f"the objective's last epoch recorded no {plan.metric.name!r}; put it in its "
                                "EpochRecord (or EpochRecord.metrics), or name a metric it records in the plan")
    # Wall time on the device, data loading and compilation included: what the trial kept others from using.
    seconds = time.monotonic() - started
    rec.history, rec.status, rec.seconds = list(result.history), result.status, round(result.seconds or seconds, 3)
    rec.cost = recorded(_cost(objective, params, len(result.history), seconds))
    rec.pruned_reason = result.reason if result.status != "completed" else None
    rec.resumed_from_epoch, rec.checkpoint_ignored = result.resumed_from_epoch, result.checkpoint_ignored
    patient(store.write, trial, rec.attrs("history", "status", "seconds", "cost", "pruned_reason", "resumed_from_epoch",
                                     "checkpoint_ignored"))
    if hook is not None and result.status == "completed":
        _keep_weights(hook, trial, params.get("seed", 0))
    _annotate(view, trial, rec, result.reason, artifacts)  # before tell: a finished trial takes no artifact
    state = patient(finish, store, study, trial, result, value, plan.metric.name)
    if hook is not None:
        hook.discard()  # told: nothing resumes it (until then a retry after a storage outage would)
    last = result.history[-1].value(plan.metric.name) if result.history else None
    shown = value if value is not None else last
    log.info("trial %d of %s: %s%s%s", trial.number, view.stage.name, state.name,
             f", {plan.metric.name} {shown:.4f}" if shown is not None else "",
             f" ({result.reason})" if result.reason else "")
    return state


class MetricMissing(Exception):
    """A full objective's epochs do not record the plan's metric."""


def _cost(objective: Objective, params: dict[str, Any], steps: int, seconds: float) -> Cost:
    if objective.cost is epoch_equivalents:  # the built-ins: epochs, data fraction and width, with what pruning saved
        return trial_cost(params, steps, seconds)
    return user_cost(steps, seconds, objective.trial_cost(params, steps), objective.unit)


def _run_full(objective: Objective, config: Any, trial: optuna.Trial, view: StageView, metric: Metric,
              data_dir: Path | None, stop: threading.Event, checkpoints: Any, checkpoint_interval: float,
              patient: Patient) -> tuple[TrainResult, TrialCheckpoint | None]:
    """A full objective's run: each epoch's metric reported to the pruner, checkpoints where it takes them."""
    live: list[dict[str, Any]] = []  # the history so far, in its stored form
    pruner_name = type(view.study.pruner).__name__
    epochs = getattr(config, "epochs", None)

    def on_epoch(record: EpochRecord) -> None:
        live.append(record.to_dict())
        value = record.value(metric.name)
        if value is None:
            raise MetricMissing(f"epoch {record.epoch} recorded no {metric.name!r}; put it in the objective's "
                                "EpochRecord (or EpochRecord.metrics), or name a metric it records in the plan")
        patient(trial.report, value, record.epoch)
        if record.seconds >= LIVE_HISTORY_MIN_S:  # live curves where an epoch is worth a write
            patient(trial.set_user_attr, "history", live)
        if stop.is_set() and (epochs is None or record.epoch < epochs):  # after the last epoch: finish
            raise Interrupted
        if patient(trial.should_prune):
            raise StopTraining(f"pruned by {pruner_name} at epoch {record.epoch}: "
                               f"{metric.label} {value:.4f} fell behind the other trials")

    def on_step(batch: int, total: int) -> None:
        if stop.is_set():
            raise Interrupted

    hook, hooked = None, {}
    if checkpoints is not None and objective.checkpoints:
        hook = TrialCheckpoint(checkpoints, trial, final_epoch=epochs or 0,
                               keep_weights=view.stage.kind == StageKind.FINAL)
        hooked = {"checkpoint": hook, "checkpoint_interval": checkpoint_interval}
    # An exception (a stop, a crash) leaves the checkpoint in place for the retry.
    result = objective.train(config, data_dir=data_dir, on_epoch=on_epoch, on_step=on_step, **hooked)
    return result, hook


def _run_simple(objective: Objective, params: dict[str, Any], trial: optuna.Trial, metric: Metric,
                stop: threading.Event, patient: Patient) -> tuple[TrainResult, float | None]:
    """A simple objective's run: `f(params[, report])`; `report` is `trial.report` plus the pruning decision."""
    history: list[EpochRecord] = []
    pruner_name = type(trial.study.pruner).__name__
    started = last = written = time.monotonic()

    def report(value: float, step: int) -> None:
        nonlocal last, written
        if stop.is_set():
            raise Interrupted
        value, step = _reported(value, step)
        if any(r.epoch == step for r in history):  # as Optuna does: the first value of a step stands
            log.warning("trial %d reported step %d twice; the second value is ignored", trial.number, step)
            return
        now = time.monotonic()
        history.append(EpochRecord(step, seconds=round(now - last, 4), metrics={metric.name: value}))
        last = now
        patient(trial.report, value, step)
        if now - written >= LIVE_HISTORY_MIN_S:  # live curves at most once a second, however fast it reports
            patient(trial.set_user_attr, "history", [r.to_dict() for r in history])
            written = now
        if patient(trial.should_prune):
            raise Pruned(f"pruned by {pruner_name} at step {step}: {metric.label} {value:.4g} fell behind the "
                         "other trials")

    result = TrainResult(config=params)
    try:
        value = objective.train(dict(params), report) if objective.reports else objective.train(dict(params))
    except StopTraining as e:
        result.history, result.status, result.reason = history, "stopped", e.reason
        result.seconds = time.monotonic() - started
        return result, None
    result.history, result.seconds = history, time.monotonic() - started
    number = _returned(value)
    if not math.isfinite(number):
        result.status, result.reason = "diverged", f"diverged: the objective returned {number}"
        return result, None
    return result, number


def _reported(value: Any, step: Any) -> tuple[float, int]:
    """`report`'s arguments checked as `optuna.Trial.report` checks them."""
    number = _as_number(value)
    if number is None:
        raise TypeError(f"report(value, step): value must be a number, got {value!r}")
    if isinstance(step, bool | float | str) or not hasattr(step, "__index__") or step.__index__() < 0:
        raise TypeError(f"report(value, step): step must be an integer >= 0, got {step!r}")
    return number, step.__index__()


def _returned(value: Any) -> float:
    number = _as_number(value)
    if number is None:
        raise TypeError(f"the objective returned {value!r} ({type(value).__name__}); a simple objective returns "
                        "its metric as one number")
    return number


def _as_number(value: Any) -> float | None:
    """A float, numpy scalar or one-element tensor as a float; None for anything else (a string, a bool, None)."""
    if isinstance(value, str | bytes | bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def finish(store: TrialStore, study: optuna.Study, trial: optuna.Trial, result: TrainResult, value: float | None,
           metric: str) -> TrialState:
    """Tell the study how a trained trial ended (a diverged one is PRUNED, its collapse reported); its state."""
    if result.status == "completed" and value is not None:
        store.tell(study, trial, value)
        return TrialState.COMPLETE
    if result.status == "diverged" and result.history:
        last = result.history[-1].value(metric)
        reported = store.copy_of(trial).intermediate_values
        if last is not None and last == last and result.history[-1].epoch not in reported:
            trial.report(last, result.history[-1].epoch)  # the diverged epoch too: the curve shows the collapse
    store.tell(study, trial, state=TrialState.PRUNED)
    return TrialState.PRUNED


def _keep_weights(hook: TrialCheckpoint, trial: optuna.Trial, seed: int) -> None:
    """The final stage's trained weights as an artifact of the trial; a failure loses them, not the trial (a trial
    finished elsewhere meanwhile is the worker's to drop)."""
    try:
        hook.keep_weights_artifact(seed)
    except (optuna.exceptions.UpdateFinishedTrialError, StorageError):
        raise  # failed as stale meanwhile: the worker drops the trial, in one line; a full disk ends the worker
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
    except (optuna.exceptions.UpdateFinishedTrialError, StorageError):
        raise  # failed as stale meanwhile: the worker drops the trial, in one line; a full disk ends the worker
    except Exception:
        log.exception("could not write the note or curves of trial %d", trial.number)


def _run_range_test(plan: Plan, view: StageView, trial: optuna.Trial, objective: Objective, device: str,
                    data_dir: Path | None, rec: TrialRecord) -> TrialState:
    config = trial_config(plan, view, trial, device, sample=False)  # the range test searches nothing
    rec.config = plan.schema.dump(config)
    view.store.write(trial, rec.attrs("worker", "config"))
    assert objective.lr_range is not None  # `objective_for` refused the plan otherwise
    rec.lr_range = objective.lr_range(config, data_dir)
    view.store.write(trial, rec.attrs("lr_range"))
    # A complete trial needs a value; the range's top is one, but a learning rate, not an accuracy: status,
    # report and export read `lr_range` for this stage and never rank or show the value as an accuracy.
    view.study.tell(trial, rec.lr_range[1])
    return TrialState.COMPLETE

"""`hpsearch worker --fuse K`: up to K claimed trials of one stage trained as one model (objectives/fused.py).

Each trial keeps its own Optuna trial, heartbeat, reports, pruning, record and note, exactly as `run_trial`
gives a trial trained alone. When one ends (finished, pruned, diverged) the worker claims the stage's next slot
into its place at the next epoch boundary, so the fused step keeps its shape. A claimed trial that cannot fuse
(another width, batch size, class subset or data fraction than the fused ones, an optimizer the fused step does
not cover) is trained alone, with a log line saying why. Fused trials are not checkpointed: a trial handed back
by a stop is retried from its start.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from hpsearch.objectives import provenance
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.result import EpochRecord, StopTraining, TrainResult
from hpsearch.search.plan.plan import Plan, StageKind
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.campaign import Campaign, Claim, StageView
from hpsearch.search.run.cost import recorded, trial_cost
from hpsearch.search.run.notes import annotate_trial, write_trial_note
from hpsearch.search.run.retries import Patient
from hpsearch.search.run.trial_runner import LIVE_HISTORY_MIN_S, Interrupted, finish, trial_config
from hpsearch.storage import Heartbeat
from hpsearch.storage.errors import StorageError

log = logging.getLogger(__name__)
FUSED_OBJECTIVES = ("cifar10-resnet18",)  # objectives with a fused trainer
_said: set[str] = set()  # what a worker says about --fuse (why it does not apply, a slow device), once per process


def fusion_blocker(plan: Plan, view: StageView) -> str | None:
    """Why this stage's trials cannot train fused at all, or None."""
    if plan.objective not in FUSED_OBJECTIVES:
        return f"objective {plan.objective!r} has no fused trainer (only {', '.join(FUSED_OBJECTIVES)} does)"
    if view.stage.kind == StageKind.LR_RANGE_TEST:
        return "an lr_range_test stage trains no trials"
    return None


def _once(level: int, message: str) -> None:
    """Log `message` at `level`, once per process."""
    if message not in _said:
        _said.add(message)
        log.log(level, "%s", message)


def say_once(reason: str) -> None:
    """Log, once per process, that --fuse does not apply and why."""
    _once(logging.INFO, f"--fuse: {reason}; its trials run one at a time")


def device_warning(device: str) -> str | None:
    """What a worker says once before it fuses trials on `device` (measured slower there), or None."""
    return SLOW_ON_CUDA if device.startswith("cuda") else None


SLOW_ON_CUDA = ("--fuse on a CUDA device: when last measured, fused trials ran a third of the trials per hour of "
                "separate ones (an H200, width 64, before the fused step ran channels-last); --per-device K with "
                "NVIDIA MPS packed trials faster")


@dataclass
class _Member:
    """One claimed trial in a fused slot."""

    trial: optuna.Trial
    config: TrainConfig
    beat: Heartbeat
    rec: TrialRecord
    lost: threading.Event = field(default_factory=threading.Event)
    live: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FusedContext:
    """What a fused group needs from its worker: the worker's options, and its ways of running a trial alone
    and of handing a trial back."""

    campaign: Campaign
    view: StageView
    device: str
    data_dir: Path | None
    heartbeat_interval: int
    grace_period: int  # how long a trial's writes wait out an outage (`retries.Patient`)
    artifacts: Path | None
    stop: threading.Event
    run_alone: Callable[[Claim], None]
    fail_and_retry: Callable[[optuna.Trial, str, BaseException | None], bool]  # the error when the group crashed
    after_crash: Callable[[], None]  # the worker's look at whether the stage keeps failing


def run_fused(ctx: FusedContext, first: Claim, fuse: int, budget: int | None) -> int:
    """Train `first` and up to `fuse - 1` more slots of its stage fused, refilling ended ones until the stage has
    no waiting slot, `budget` trials ran or the worker is stopped; returns the trials run (alone ones too)."""
    from hpsearch.objectives.fused import train_fused, why_not_fused  # torch only where trials train

    warning = device_warning(ctx.device)
    if warning is not None:
        _once(logging.WARNING, warning)
    store = ctx.view.store
    patient = Patient(ctx.grace_period, ctx.stop, store.transient)
    # The storage being away: the worker waits for it, the stale-trial check retries the trials it held.
    # A full disk (StorageError) ends the worker: handing the trials back would need space too.
    not_crashes = (*store.outage, StorageError, optuna.exceptions.UpdateFinishedTrialError)  # the worker's
    slots: list[_Member | None] = [None] * fuse
    ran = 0
    anchor: TrainConfig | None = None  # the first fused trial: every other must fuse with it

    def left() -> bool:
        return budget is None or ran + sum(m is not None for m in slots) < budget

    def take(claim: Claim) -> _Member | None:
        """A member for `claim`, or None when the trial was run alone (it could not fuse)."""
        nonlocal ran, anchor
        trial = claim.trial
        where = f"trial {trial.number} of {ctx.view.stage.name}"
        try:
            config = trial_config(ctx.campaign.plan, ctx.view, trial, ctx.device)
            reason = why_not_fused(config, anchor)
        except ConfigError as e:  # the alone path fails it with this reason, as for any worker
            config, reason = None, str(e)
        if config is None or reason is not None:
            log.info("%s runs alone, not fused: %s", where, reason)
            ctx.run_alone(claim)
            ran += 1
            return None
        anchor = anchor or config
        lost = threading.Event()  # set by the heartbeat when the trial was failed as stale meanwhile
        beat = store.beat(trial, ctx.heartbeat_interval, first_beat=not claim.first_beat_recorded, on_lost=lost.set)
        member = _Member(trial, config, beat, TrialRecord.of(store.copy_of(trial)), lost)
        beat.__enter__()
        member.rec.worker = {"host": socket.gethostname(), "device": ctx.device, "pid": os.getpid(), "fused": fuse}
        member.rec.config = ctx.campaign.plan.schema.dump(config)
        member.rec.provenance = provenance.collect(ctx.data_dir, [config.seed])
        patient(store.write, trial, member.rec.attrs("worker", "config", "provenance"))
        return member

    def claim_next() -> _Member | None:
        while left() and not ctx.stop.is_set():
            claim = ctx.campaign.claim(ctx.view)
            if claim is None:
                return None
            member = take(claim)
            if member is not None:
                return member
        return None

    first_member = take(first)
    if first_member is None:
        return ran
    slots[0] = first_member
    for k in range(1, fuse):
        slots[k] = claim_next()
        if slots[k] is None:
            break
    members = [m for m in slots if m is not None]
    log.info("trials %s of %s train fused in %d slots", ", ".join(str(m.trial.number) for m in members),
             ctx.view.stage.name, len(members))

    metric = ctx.campaign.plan.metric

    def on_epoch(slot: int, rec: EpochRecord) -> None:
        m = slots[slot]
        assert m is not None
        m.live.append(rec.to_dict())
        value = rec.value(metric.name)
        assert value is not None  # train_fused fills every field, as train() does
        if ctx.stop.is_set() and rec.epoch < m.config.epochs:
            raise Interrupted
        try:
            if m.lost.is_set():
                raise optuna.exceptions.UpdateFinishedTrialError
            patient(m.trial.report, value, rec.epoch)
            if rec.seconds >= LIVE_HISTORY_MIN_S:  # live curves where an epoch is worth a write
                patient(m.trial.set_user_attr, "history", m.live)
        except optuna.exceptions.UpdateFinishedTrialError:  # its slot goes to the next trial; the end drops it
            raise StopTraining("failed as stale meanwhile and retried elsewhere") from None
        if patient(m.trial.should_prune):
            raise StopTraining(f"pruned by {type(ctx.view.study.pruner).__name__} at epoch {rec.epoch}: "
                               f"{metric.label} {value:.4f} fell behind the other trials")

    def on_step(batch: int, total: int) -> None:
        if ctx.stop.is_set():
            raise Interrupted

    def on_end(slot: int, result: TrainResult) -> None:
        nonlocal ran
        m = slots[slot]
        assert m is not None
        slots[slot] = None
        ran += 1
        try:
            _finish(ctx, m, result, patient)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning("trial %d of %s was failed and retried elsewhere after its heartbeat went stale; dropped it",
                        m.trial.number, ctx.view.stage.name)
        finally:
            m.beat.__exit__(None, None, None)

    def refill(slot: int) -> TrainConfig | None:
        member = claim_next()
        slots[slot] = member
        return None if member is None else member.config

    try:
        train_fused([m.config for m in members], data_dir=ctx.data_dir, slots=len(members), on_epoch=on_epoch,
                    on_step=on_step, on_end=on_end, refill=refill)
    except BaseException as e:  # hand every trial still in a slot back for a retry, then let the worker decide
        stopped = isinstance(e, Interrupted | KeyboardInterrupt)
        crashed = isinstance(e, Exception) and not stopped and not isinstance(e, not_crashes)
        reason = "the worker was stopped (SIGTERM)" if stopped else f"{type(e).__name__}: {e}"
        blamed = False  # one crash counts once towards the stage's fail-fast check, not once per slot
        for m in slots:
            if m is None:
                continue
            m.beat.__exit__(None, None, None)
            if not isinstance(e, (*store.outage, StorageError)):  # the stale-trial check retries them later
                ctx.fail_and_retry(m.trial, reason, e if crashed and not blamed else None)
                blamed = True
        held = sum(m is not None for m in slots)
        if isinstance(e, Interrupted):
            log.warning("%d fused trial(s) of %s handed back for a retry: this worker was stopped", held,
                        ctx.view.stage.name)
            return ran
        if crashed:  # a broken group (out of memory, say) must not take the worker down, as a broken trial does not
            log.exception("%d fused trial(s) of %s failed and were handed back for a retry", held,
                          ctx.view.stage.name)
            ctx.after_crash()
            return ran
        raise
    return ran


def _finish(ctx: FusedContext, m: _Member, result: TrainResult, patient: Patient) -> None:
    """Record the trial's end, write its note and tell the study, as `run_trial` does for a trial alone, each
    write waiting out a storage outage within the grace period."""
    rec, trial, study, metric = m.rec, m.trial, ctx.view.study, ctx.campaign.plan.metric.name
    cost = trial_cost(rec.config or {}, len(result.history), result.seconds)  # its share of the fused device
    rec.history, rec.status, rec.seconds = list(result.history), result.status, round(result.seconds, 3)
    rec.cost = recorded(cost)
    rec.pruned_reason = result.reason if result.status != "completed" else None
    store = ctx.view.store
    patient(store.write, trial, rec.attrs("history", "status", "seconds", "cost", "pruned_reason"))
    try:
        if ctx.artifacts is None:
            write_trial_note(study, trial, result.reason, record=rec, stage=ctx.view.stage.name, first=True)
        else:
            annotate_trial(study, trial, rec, result.reason, ctx.artifacts, stage=ctx.view.stage.name, first=True)
    except (optuna.exceptions.UpdateFinishedTrialError, StorageError):
        raise
    except Exception:  # a note is never worth the trial
        log.exception("could not write the note or curves of trial %d", trial.number)
    value = result.final_value(metric)
    patient(finish, store, study, trial, result, value, metric)

"""The worker: claim a slot of the open stage, train it, report, repeat until the campaign is done."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpsearch.objectives.checkpoint import DEFAULT_INTERVAL
from hpsearch.objectives.objective import Objective, describe_failure
from hpsearch.search.errors import CampaignFailed
from hpsearch.search.plan.objective import objective_for
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.stage_logic import ERROR
from hpsearch.search.run import fused_runner
from hpsearch.search.run.campaign import SLOT, Campaign, Claim, StageView, study_name
from hpsearch.search.run.checkpoints import discard_checkpoint, open_store
from hpsearch.search.run.notes import write_trial_note
from hpsearch.search.run.retries import record_given_up, retry_trial
from hpsearch.search.run.trial_runner import Interrupted, run_trial
from hpsearch.search.run.worker_log import Outage, quiet_outages
from hpsearch.storage import StorageError, open_storage
from hpsearch.storage.defaults import DEFAULT_GRACE_PERIOD, DEFAULT_HEARTBEAT_INTERVAL

log = logging.getLogger(__name__)
OUTAGE_WAIT_S = 2.0
HEARTBEAT_INTERVAL_S = DEFAULT_HEARTBEAT_INTERVAL  # storage/defaults.py says why these
GRACE_PERIOD_S = DEFAULT_GRACE_PERIOD


IDLE_POLLS_MAX = 4  # an idle worker looks at least every 4 x `poll` seconds


@dataclass(frozen=True)
class WorkerOptions:
    storage: str | None
    device: str = "cpu"
    max_trials: int | None = None
    data_dir: Path | None = None
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S
    grace_period: int = GRACE_PERIOD_S
    max_retry: int = 3
    # Seconds between looks at the storage while the last trials of a stage run: the first wait, doubled after
    # each look that finds nothing to claim, up to IDLE_POLLS_MAX times it (an idle fleet reading the stage twice
    # a second each crowded one storage proxy's last trials).
    poll: float = 0.5
    artifacts: Path | None = None  # the artifact store shared with the dashboard
    checkpoints: Path | None = None  # where trials checkpoint (an artifact store's folder); None: no checkpoints
    checkpoint_interval: float = DEFAULT_INTERVAL  # seconds between a trial's epoch-end checkpoints
    log_level: int = logging.INFO
    log_queue: Any = None  # under `hpsearch run`: the parent's queue for this worker's log records
    fuse: int = 1  # trials of one stage trained as one model (search/run/fused_runner.py); 1: one at a time


def work(campaign: str, options: WorkerOptions, stop: threading.Event) -> int:
    """Run trials until the campaign is done, `max_trials` ran, or `stop` is set; returns trials run."""
    storage = open_storage(options.storage, heartbeat_interval=options.heartbeat_interval,
                           grace_period=options.grace_period, max_retry=options.max_retry)
    # Samplers other than QMC need one seed per worker.
    stored = Campaign.load(storage, campaign, seed=random.SystemRandom().randrange(2**31))
    objective = objective_for(stored.plan)
    failure = stored.failure()
    if failure is not None:
        raise CampaignFailed(campaign, failure)
    os.environ["HPSEARCH_DEVICE"] = options.device  # where a simple objective, whose params hold no device, trains
    ran, cursor, outage = 0, _Cursor(), Outage()
    # What the storage raises while it is briefly away (a database restart, a storage proxy restarted): the
    # store's transient errors, and OSError, which may also be a trial's own file error.
    storage_errors = (*stored.store.transient, OSError)
    with quiet_outages(outage, stored.store.outage):
        while not stop.is_set() and (options.max_trials is None or ran < options.max_trials):
            try:
                step = _step(stored, objective, cursor, options, stop, ran)
            except storage_errors as e:
                # The database went away (a restart, a failover): a trial it interrupted is recovered by its
                # heartbeat going stale; this worker waits and carries on.
                outage.failed(e)
                stop.wait(OUTAGE_WAIT_S)
                continue
            outage.ok()
            if step is None:
                log.info("campaign %s is done", campaign)
                break
            ran += step
    return ran


@dataclass
class _Cursor:
    """What one worker process remembers between looks: only facts that never become false."""

    complete_upto: int = 0  # stages before this one are complete (a complete stage never reopens)
    last_stale_check: float = 0.0
    idle: float = 0.0  # the last wait for a stage's last trials; 0 after a claim or a new stage


def _step(campaign: Campaign, objective: Objective, cursor: _Cursor, options: WorkerOptions,
          stop: threading.Event, ran: int = 0) -> int | None:
    """One look at the campaign: open, advance, claim and run, or wait. Trials run, or None when done."""
    plan, index = campaign.plan, cursor.complete_upto
    view = campaign.stage(index)
    if view is None:  # not open yet: finish the job, whoever started it (idempotent)
        campaign.open(index)
        return 0
    if time.monotonic() - cursor.last_stale_check > options.heartbeat_interval:
        cursor.last_stale_check = time.monotonic()
        failure = campaign.failure()  # another worker found the objective failing: stop claiming
        if failure is not None:
            raise CampaignFailed(plan.name, failure)
        gave_up = record_given_up(view.study, "its worker stopped sending heartbeats", _discarder(options))
        if campaign.store.fail_stale(study_name(plan.name, view.stage), grace_period=options.grace_period,
                                     max_retry=options.max_retry, unique_key=SLOT, on_given_up=gave_up):
            return 0
    claimed = campaign.claim(view)
    if claimed is None:
        if campaign.complete(view, options.max_retry):
            cursor.complete_upto, cursor.idle = index + 1, 0.0
            return None if cursor.complete_upto == len(plan.stages) else 0
        campaign.repair(view, options.max_retry)
        cursor.idle = min(2 * cursor.idle or options.poll, IDLE_POLLS_MAX * options.poll)
        stop.wait(cursor.idle)
        return 0
    cursor.idle = 0.0
    if options.fuse > 1:
        blocker = fused_runner.fusion_blocker(plan, view)
        if blocker is None:
            return _run_fused(campaign, view, claimed, objective, options, stop, ran)
        fused_runner.say_once(blocker)
    _run_checked(campaign, view, claimed, objective, options, stop)
    return 1


def _run_checked(campaign: Campaign, view: StageView, claimed: Claim, objective: Objective, options: WorkerOptions,
                 stop: threading.Event) -> None:
    """`_run_one`, then, when the objective raised, a look at whether the stage keeps failing."""
    crashed = _run_one(campaign.plan, view, claimed.trial, objective, options, stop,
                       first_beat=not claimed.first_beat_recorded)
    if crashed:
        view.refresh()
        campaign.check_failing(view)


def _run_fused(campaign: Campaign, view: StageView, claimed: Claim, objective: Objective, options: WorkerOptions,
               stop: threading.Event, ran: int) -> int:
    """Up to `options.fuse` trials of the stage as one model; a trial that cannot fuse runs as `_run_one` runs it."""
    def hand_back(trial: optuna.Trial, reason: str, error: BaseException | None) -> bool:
        described = None if error is None else describe_failure(error, objective)
        return _fail_and_retry(view, trial, reason, options, described)

    def after_crash() -> None:
        view.refresh()
        campaign.check_failing(view)

    ctx = fused_runner.FusedContext(campaign, view, options.device, options.data_dir, options.heartbeat_interval,
                                    options.grace_period, options.artifacts, stop,
                                    lambda claim: _run_checked(campaign, view, claim, objective, options, stop),
                                    hand_back, after_crash)
    budget = None if options.max_trials is None else options.max_trials - ran
    return fused_runner.run_fused(ctx, claimed, options.fuse, budget)


def _run_one(plan: Plan, view: StageView, trial: optuna.Trial, objective: Objective, options: WorkerOptions,
             stop: threading.Event, *, first_beat: bool = True) -> bool:
    """Train one claimed trial under a heartbeat; an interrupted or crashed trial is failed and retried. True when
    the objective raised (the caller looks whether the stage keeps failing).

    A trial taken away meanwhile (failed as stale while this worker was paused or cut off from the storage,
    and retried elsewhere) makes its next write fail: the worker drops it and goes on claiming.
    """
    where = f"trial {trial.number} of {view.stage.name}"
    trial_stop = _TrialStop(stop)  # a heartbeat that finds the trial taken away stops its training too
    with view.store.beat(trial, options.heartbeat_interval, first_beat=first_beat, on_lost=trial_stop.set):
        try:
            # The trial runner logs how the trial ended, with its value.
            run_trial(plan, view, trial, objective, device=options.device, data_dir=options.data_dir,
                      stop=trial_stop, artifacts=options.artifacts,
                      checkpoints=None if options.checkpoints is None else open_store(options.checkpoints),
                      checkpoint_interval=options.checkpoint_interval, patience=options.grace_period)
            return False
        except Interrupted:
            if _fail_and_retry(view, trial, "the worker was stopped (SIGTERM)", options):
                log.warning("%s handed back for a retry: this worker was stopped", where)
                return False
        except view.store.outage:  # not OSError: a trial's own file errors are the trial's failure
            raise  # an outage, not a broken trial: the loop waits for the storage; a stale retry follows
        except StorageError:
            raise  # a full disk under the journal: no retry can be written; the worker ends, in one line
        except Exception as e:  # one broken trial must not take the worker down
            if not view.store.read(trial).state.is_finished():  # else: taken away meanwhile
                error = describe_failure(e, objective)
                log.exception("%s failed: %s: %s (%s)", where, error["type"], error["message"], error["where"])
                reason = f"{error['type']}: {error['message']} ({error['where']})"
                if _fail_and_retry(view, trial, reason, options, error):
                    return True
    log.warning("%s was failed and retried elsewhere after its heartbeat went stale (this worker was paused "
                "or cut off for over %d s); dropped it", where, options.grace_period)


class _TrialStop(threading.Event):
    """Set when the trial was taken away; also reads as set once the worker is stopped."""

    def __init__(self, worker_stop: threading.Event) -> None:
        super().__init__()
        self._worker_stop = worker_stop

    def is_set(self) -> bool:
        return self._worker_stop.is_set() or super().is_set()


def _discarder(options: WorkerOptions) -> Callable[[FrozenTrial], None] | None:
    """What drops the checkpoint of a trial no retry will resume; None without checkpoints."""
    if options.checkpoints is None:
        return None
    folder = options.checkpoints

    def discard(trial: FrozenTrial) -> None:
        try:
            discard_checkpoint(open_store(folder), trial)
        except OSError as e:  # a file left behind is no reason to stop the worker
            log.warning("could not remove the checkpoint of trial %d: %s", trial.number, e)
    return discard


def _fail_and_retry(view: StageView, trial: optuna.Trial, reason: str, options: WorkerOptions,
                    error: dict[str, str] | None = None) -> bool:
    """Record why (and the objective's `error`), fail the trial and enqueue its retry (bounded by max_retry) for
    any worker to take; False when the trial was no longer this worker's to fail."""
    store = view.store
    try:
        trial.set_user_attr("fail_reason", reason)
        if error is not None:
            trial.set_user_attr(ERROR, error)
        try:
            write_trial_note(view.study, trial, reason, stage=view.stage.name)
        except (optuna.exceptions.UpdateFinishedTrialError, StorageError):
            raise
        except Exception:
            log.exception("could not write the note of trial %d", trial.number)
        # The storage checks the transition: of this worker and one that found the trial stale, one wins.
        if not store.fail(trial):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    failed = store.read(trial)
    retry_trial(view.study, failed, reason, options.max_retry, on_given_up=_discarder(options))
    return True

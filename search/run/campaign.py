"""A campaign in the storage: one Optuna study per stage, opened idempotently, handed over deterministically.

Nothing lives only in a worker's memory. Stage k's study `<campaign>.<stage>` holds the plan, its space and
its parent's space as plain-JSON user attributes, and exactly `n_trials` enqueued slots (WAITING trials with a
`hpsearch:slot` system attribute). Any worker may open a stage, any number at once: the space is a pure
function of the previous stage's finished trials, and slots are keyed by index and enqueued in one step
(the store's `enqueue_once`), so each exists once. Where that step cannot be atomic (a client of Optuna's own
gRPC proxy), a slot enqueued twice is resolved when claimed (the lowest-numbered live trial of a slot wins).
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.errors import CampaignFailed
from hpsearch.search.plan.agreement import Agreement
from hpsearch.search.plan.plan import Plan, Stage, first_difference, plan_fingerprint
from hpsearch.search.plan.samplers import make_pruner, make_sampler, shares_seed
from hpsearch.search.plan.space import PlanError, Space, space_from_json, space_to_json
from hpsearch.search.plan.stage_logic import (
    AGREEMENT,
    DUPLICATE,
    ERROR,
    ESCALATED,
    FINAL_CONFIGS,
    FINISHED,
    OVERRIDES,
    RETRY_OF,
    SLOT,
    as_opened,
    escalates,
    failing,
    failure_limit,
    final_configs,
    first_error,
    live,
    next_space,
    orphans,
    previous_agreement,
    rank,
    slot_templates,
    stage_complete,
)
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.notes import write_stage_note
from hpsearch.search.run.retries import retry_trial
from hpsearch.search.run.stored_plans import OBJECTIVE_PATH, load_stored_plan
from hpsearch.storage.errors import StorageError
from hpsearch.storage.stores import Claimed, TrialStore, store_for, store_of

# The stage logic's names, for the modules that read a campaign's trials.
__all__ = ["DUPLICATE", "FINISHED", "OVERRIDES", "SLOT", "Campaign", "Claim", "StageView", "init_campaign",
           "load_stored_plan", "open_stage", "rank", "retry_trial", "study_name"]

log = logging.getLogger(__name__)


FAILED = "failed"  # the first stage's user attribute: why the campaign stopped, when its objective kept failing


def study_name(plan_name: str, stage: Stage) -> str:
    return f"{plan_name}.{stage.name}"


@dataclass
class StageView:
    """One open stage as a worker sees it; `trials` is read on first use and then kept (a snapshot)."""

    index: int
    stage: Stage
    study: optuna.Study
    space: Space
    store: TrialStore

    @functools.cached_property
    def trials(self) -> list[FrozenTrial]:
        return self.store.trials(self.study)

    def refresh(self) -> None:
        """Drop the snapshot: the next use of `trials` reads the storage again."""
        self.__dict__.pop("trials", None)

    def live(self) -> list[FrozenTrial]:
        return live(self.trials)


Claim = Claimed  # a slot this process took: its trial, and whether the claim recorded the first heartbeat


class Campaign:
    """A campaign in one storage as one process sees it: the plan, the stages it has looked at, and the verbs
    the worker, the commands and the tests use (look at a stage, open one, claim a slot, see a stage complete,
    repair a slot that lost its retry).

    It remembers what never changes again (an open stage's space) and keeps one `optuna.Study` per stage, so a
    sampler is built once per process: rebuilt with the same seed at every look, it would propose the same point
    again and again. `seed` is this process's sampler seed (None: Optuna's own); QMC stages share the plan's.
    """

    def __init__(self, storage: BaseStorage, plan: Plan, seed: int | None = None) -> None:
        self.storage, self.plan, self.seed = storage, plan, seed
        self.store = store_for(storage)
        self._opened: dict[str, dict[str, Any]] = {}
        self._studies: dict[str, optuna.Study] = {}

    @classmethod
    def load(cls, storage: BaseStorage, name: str, seed: int | None = None) -> Campaign:
        """The campaign `name` as `init` stored it; a campaign that is not there is bad input."""
        return cls(storage, load_stored_plan(storage, name), seed)

    def init(self) -> bool:
        """Write the campaign and open its first stage; True when it was new. Same plan again: a no-op."""
        existing = _study_attrs(self.storage, study_name(self.plan.name, self.plan.stages[0]))
        if existing is not None and existing.get("fingerprint") != plan_fingerprint(self.plan):
            stored = existing.get("plan")
            where = first_difference(stored, self.plan.to_dict()) if isinstance(stored, dict) else None
            raise PlanError(
                f"campaign {self.plan.name!r} already exists in this storage with a different plan"
                f"{f' ({where})' if where else ''}; give it a new name (name: in the plan, or init PLAN --name NEW), "
                "or use the plan it was created with"
            )
        if existing is None or not existing.get("opened"):
            self.open(0)
        return existing is None

    def stage(self, index: int) -> StageView | None:
        """Stage `index` as stored, or None when its study does not exist or is not open yet."""
        stage = self.plan.stages[index]
        name = study_name(self.plan.name, stage)
        attrs = self._opened.get(name)
        if attrs is None:
            attrs = _study_attrs(self.storage, name)
            if attrs is None or not attrs.get("opened"):
                return None
            self._opened[name] = attrs  # an open stage's space never changes again
        stage = as_opened(stage, bool(attrs.get(ESCALATED)), attrs.get(FINAL_CONFIGS))
        if name not in self._studies:
            sampler_seed = self.plan.seed if shares_seed(stage.study_sampler) else self.seed
            study = optuna.load_study(study_name=name, storage=self.storage,
                                      sampler=make_sampler(stage.study_sampler, sampler_seed),
                                      pruner=make_pruner(stage.study_pruner))
            self._studies[name] = study
        return StageView(index, stage, self._studies[name], space_from_json(attrs["space"]), self.store)

    def views(self) -> list[tuple[Stage, StageView | None]]:
        """Every stage in plan order with its view (None: not open yet); a view reads its trials once, when
        first asked, so the readers handed the same list share that read."""
        views = [self.stage(index) for index in range(len(self.plan.stages))]
        return [(view.stage if view is not None else stage, view) for stage, view in zip(self.plan.stages, views,
                                                                                          strict=True)]

    def open(self, index: int) -> None:
        """Open stage `index`: its space from the stage before (the plan's space for the first) and its slots.
        Idempotent and safe to race: any worker that finds the stage not open opens it. A stage before it that
        ended with no completed trial fails the campaign instead (CampaignFailed): nothing to go on from."""
        if index == 0:
            open_stage(self.storage, self.plan, 0, self.plan.space, None, [])
            return
        previous = self.stage(index - 1)
        if previous is None:
            raise RuntimeError(f"stage {index} cannot open before stage {index - 1}")
        if not any(t.state == TrialState.COMPLETE for t in previous.trials):
            error = first_error(previous.trials)
            pruned = "" if error else (f" (all {sum(t.state == TrialState.PRUNED for t in previous.trials)} pruned "
                                       "or diverged, none failed)")
            self.fail({**error, "stage": previous.stage.name,
                       "why": f"it ended with no completed trial{pruned}, so stage {self.plan.stages[index].name} "
                              "cannot open"})
        ranked = rank(previous.trials, self.plan.metric.minimize)
        agreement = previous_agreement(self.plan, index, ranked)
        escalated = escalates(self.plan, index, previous.stage, agreement)
        # escalated: over the previous space, since its ranking gives nothing to narrow on
        space = previous.space if escalated else next_space(self.plan, index, previous.space, previous.trials)
        open_stage(self.storage, self.plan, index, space, previous.space, ranked, agreement, escalated)

    def failure(self) -> dict[str, Any] | None:
        """Why the campaign stopped (its objective kept failing), read from the storage; None while it runs."""
        attrs = _study_attrs(self.storage, study_name(self.plan.name, self.plan.stages[0]))
        failed = (attrs or {}).get(FAILED)
        return dict(failed) if isinstance(failed, dict) else None

    def fail(self, failure: dict[str, Any]) -> None:
        """Mark the campaign failed (the first reason written stands) and raise CampaignFailed with it."""
        known = self.failure()
        if known is None:
            study_id = self.storage.get_study_id_from_name(study_name(self.plan.name, self.plan.stages[0]))
            self.storage.set_study_user_attr(study_id, FAILED, failure)
            known = failure
        raise CampaignFailed(self.plan.name, known)

    def check_failing(self, view: StageView) -> None:
        """Fail the campaign (CampaignFailed) when the stage's first trials all failed with an error."""
        trial = failing(view.trials, failure_limit(self.plan, view.index))
        if trial is not None:
            count = sum(1 for t in view.trials if t.state == TrialState.FAIL and ERROR in t.user_attrs)
            self.fail({**trial.user_attrs[ERROR], "stage": view.stage.name,
                       "why": f"its first {count} trials (retries included) all failed, none finished"})

    def claim(self, view: StageView) -> Claim | None:
        """Take one WAITING slot of the stage, retries first; None when none is waiting. The store claims the
        cheapest way its backend allows (`TrialStore.claim`); a slot enqueued twice retires its higher-numbered
        twin at claim time (`DUPLICATE`)."""
        return self.store.claim(view.study, view, unique_key=SLOT, retired_key=DUPLICATE, first_key=RETRY_OF)

    def complete(self, view: StageView, max_retry: int) -> bool:
        """Every slot of the stage has a finished trial, or failed more often than it may be retried."""
        return stage_complete(view.trials, view.stage.n_trials, max_retry)

    def repair(self, view: StageView, max_retry: int) -> int:
        """Re-enqueue slots whose last failure never got its retry (a worker died in between); how many."""
        return sum(retry_trial(view.study, last, TrialRecord.of(last).fail_reason
                               or "it failed and its retry was never queued", max_retry)
                   for last in orphans(view.trials, time.time()))


def init_campaign(storage: BaseStorage, plan: Plan) -> bool:
    """Write the campaign and open its first stage; True when it was new. Same plan again: a no-op."""
    return Campaign(storage, plan).init()


def open_stage(storage: BaseStorage, plan: Plan, index: int, space: Space, parent: Space | None,
               ranked: list[FrozenTrial], agreement: Agreement | None = None, escalated: bool = False) -> None:
    """Create stage `index` with its space and slots (in its escalated form where `escalated`), then mark it open.
    Safe to repeat and to race. `agreement`: how the ranking before it held, which its note shows."""
    configs = final_configs(plan.stages[index], ranked)
    stage = as_opened(plan.stages[index], escalated, configs)
    study = optuna.create_study(study_name=study_name(plan.name, stage), storage=storage,
                                direction=plan.metric.direction, load_if_exists=True)
    if study.metric_names != [plan.metric.name]:  # the dashboard's axis: the metric's name, not "Objective 0"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([plan.metric.name])
    attrs = {"plan": plan.to_dict(), "fingerprint": plan_fingerprint(plan), "stage_index": index,
             "stage": stage.name, "kind": stage.kind.value, "n_trials": stage.n_trials,
             "space": space_to_json(space), "parent_space": space_to_json(parent) if parent else None}
    if agreement is not None:
        attrs[AGREEMENT] = agreement.to_data()
    if escalated:
        attrs[ESCALATED] = True
    if configs is not None:
        attrs[FINAL_CONFIGS] = configs
    folder = plan.objective_fn.folder if plan.objective_fn is not None else None
    if folder is not None:
        attrs[OBJECTIVE_PATH] = folder
    for key, value in attrs.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    templates = []
    for slot, (fixed, overrides) in enumerate(slot_templates(plan, index, ranked, stage)):
        system_attrs: dict[str, Any] = {SLOT: slot}
        if fixed:
            system_attrs["fixed_params"] = fixed
        if overrides:
            system_attrs[OVERRIDES] = overrides
        templates.append(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs=system_attrs))
    # One step, not one add per slot: two workers opening the stage at once would otherwise both add a
    # slot that neither saw, and the twins would retire as FAIL trials at claim time.
    enqueue_slots(study, templates)
    if not study.user_attrs.get("opened"):
        try:
            write_stage_note(study, stage, parent, space, agreement)
        except StorageError:
            raise  # a full disk: opening the stage cannot go on either
        except Exception:
            log.exception("could not write the note of stage %s", stage.name)
        study.set_user_attr("opened", True)


def enqueue_slots(study: optuna.Study, templates: list[FrozenTrial]) -> int:
    """Add the WAITING slot trials whose slot the study does not have yet, in one step; returns how many."""
    return store_of(study).enqueue_once(study, templates, key=SLOT)


def _study_attrs(storage: BaseStorage, name: str) -> dict[str, Any] | None:
    """The study's user attributes, or None when there is no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)

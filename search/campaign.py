"""A campaign in the storage: one Optuna study per stage, opened idempotently, handed over deterministically.

Nothing lives only in a worker's memory. Stage k's study `<campaign>.<stage>` holds the plan, its space and
its parent's space as plain-JSON user attributes, and exactly `n_trials` enqueued slots (WAITING trials with a
`hpsearch:slot` system attribute). Any worker may open a stage, any number at once: the space is a pure
function of the previous stage's finished trials, and slots are keyed by index and enqueued in one step
(`storage/enqueue.py`), so each exists once. Where that step cannot be atomic (a gRPC proxy client), a slot
enqueued twice is resolved when claimed (the lowest-numbered live trial of a slot wins; see `claim`).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.narrow import narrow, set_lr_range
from hpsearch.search.notes import write_stage_note
from hpsearch.search.plan import Plan, Stage, StageKind, plan_fingerprint
from hpsearch.search.record import TrialRecord, found_lr_range
from hpsearch.search.samplers import make_pruner, make_sampler, shares_seed
from hpsearch.search.space import PlanError, Space, space_from_json, space_to_json
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.claims import claim_waiting
from hpsearch.storage.enqueue import add_trials_once, retry_template
from hpsearch.storage.waiting import claim_remembered, remember_waiting, take_waiting

log = logging.getLogger(__name__)

SLOT = "hpsearch:slot"
OVERRIDES = "hpsearch:overrides"  # per-slot TrainConfig changes, e.g. the seed of a final-stage repeat
DUPLICATE = "hpsearch:duplicate"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RETRY_OF = "failed_trial"  # the system attribute Optuna's retry gives the copy of a failed trial
REPAIR_AFTER_S = 5.0  # a failed slot left without a retry this long is re-enqueued by whoever sees it


def study_name(plan_name: str, stage: Stage) -> str:
    return f"{plan_name}.{stage.name}"


@dataclass
class StageView:
    """One open stage as a worker sees it; `trials` is read on first use and then kept (a snapshot)."""

    index: int
    stage: Stage
    study: optuna.Study
    space: Space
    seen: set[int] = field(default_factory=set)  # ids of every trial this process has read, kept across views

    @functools.cached_property
    def trials(self) -> list[FrozenTrial]:
        trials = self.study.get_trials(deepcopy=False)
        self.seen.update(internals.trial_id(t) for t in trials)
        return trials

    def refresh(self) -> None:
        """Drop the snapshot: the next use of `trials` reads the storage again."""
        self.__dict__.pop("trials", None)

    def live(self) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]


def init_campaign(storage: BaseStorage, plan: Plan) -> bool:
    """Write the campaign and open its first stage; True when it was new. Same plan again: a no-op."""
    first = plan.stages[0]
    name = study_name(plan.name, first)
    existing = _study_attrs(storage, name)
    if existing is not None:
        stored = existing.get("fingerprint")
        if stored != plan_fingerprint(plan):
            raise PlanError(
                f"campaign {plan.name!r} already exists in this storage with a different plan; "
                "init it under another --name, or use the plan it was created with"
            )
        if not existing.get("opened"):
            open_stage(storage, plan, 0, plan.space, None, [])
        return False
    open_stage(storage, plan, 0, plan.space, None, [])
    return True


def load_plan(storage: BaseStorage, campaign: str) -> Plan:
    """The plan as stored by `init`; a campaign that is not there is bad input."""
    for summary in storage.get_all_studies():
        if summary.study_name.startswith(f"{campaign}.") and "plan" in summary.user_attrs:
            plan = Plan.from_dict(summary.user_attrs["plan"])
            if plan.name == campaign:
                return plan
    raise PlanError(f"no campaign {campaign!r} in this storage; run 'hpsearch init PLAN --storage S' first")


def open_stage(storage: BaseStorage, plan: Plan, index: int, space: Space, parent: Space | None,
               ranked: list[FrozenTrial]) -> None:
    """Create stage `index` with its space and slots, then mark it open. Safe to repeat and to race."""
    stage = plan.stages[index]
    study = optuna.create_study(study_name=study_name(plan.name, stage), storage=storage, direction="maximize",
                                load_if_exists=True)
    attrs = {"plan": plan.to_dict(), "fingerprint": plan_fingerprint(plan), "stage_index": index,
             "stage": stage.name, "kind": stage.kind.value, "n_trials": stage.n_trials,
             "space": space_to_json(space), "parent_space": space_to_json(parent) if parent else None}
    for key, value in attrs.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    templates = []
    for slot, (fixed, overrides) in enumerate(slot_templates(plan, index, ranked)):
        system_attrs: dict[str, Any] = {SLOT: slot}
        if fixed:
            system_attrs["fixed_params"] = fixed
        if overrides:
            system_attrs[OVERRIDES] = overrides
        templates.append(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs=system_attrs))
    # One step, not one add per slot: two workers opening the stage at once would otherwise both add a
    # slot that neither saw, and the twins would retire as FAIL trials at claim time.
    enqueue_slots(storage, internals.study_id(study), templates)
    if not study.user_attrs.get("opened"):
        try:
            write_stage_note(study, stage, parent, space)
        except Exception:
            log.exception("could not write the note of stage %s", stage.name)
        study.set_user_attr("opened", True)


def slot_templates(plan: Plan, index: int, ranked: list[FrozenTrial]) -> list[tuple[dict, dict]]:
    """(fixed params, config overrides) per slot: carried configs first, then free slots for the sampler."""
    stage = plan.stages[index]
    if stage.kind == StageKind.FINAL:
        top = ranked[: stage.top]
        return [(dict(t.params), {"seed": plan.base.seed + s}) for t in top for s in range(stage.seeds)]
    if stage.kind == StageKind.COMPARE:  # slot = variant * seeds + seed; the variant's changes win over the params
        fixed = best_params(plan, index, ranked) if stage.compare_on == "best" else {}
        seed = plan.base.seed
        return [(dict(fixed), {**changes, "seed": seed + s})
                for _, changes in stage.variants for s in range(stage.seeds)]
    carried = [(dict(t.params), {}) for t in ranked[: stage.carry]] if index > 0 else []
    return carried + [({}, {}) for _ in range(stage.n_trials - len(carried))]


def best_params(plan: Plan, index: int, ranked: list[FrozenTrial]) -> dict[str, Any]:
    """The params of the best config before stage `index`: a final stage's best mean over its seeds, else the
    best trial; empty (the base config) when nothing finished."""
    previous = plan.stages[index - 1] if index > 0 else None
    if previous is not None and previous.kind == StageKind.FINAL:
        groups: dict[int, list[FrozenTrial]] = {}
        for t in ranked:
            if t.state == TrialState.COMPLETE and SLOT in t.system_attrs:
                groups.setdefault(t.system_attrs[SLOT] // previous.seeds, []).append(t)
        if groups:
            best = max(sorted(groups), key=lambda g: sum(t.value for t in groups[g]) / len(groups[g]))
            return dict(groups[best][0].params)
    return dict(ranked[0].params) if ranked else {}


def rank(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Completed trials best first, then pruned ones by their last reported accuracy.

    Ties are broken by trial number, so every worker ranks alike. Pruned trials come last because their
    value is from an earlier epoch; they matter when the pruner cut most of a stage.
    """
    done = [t for t in trials if t.state in FINISHED and t.value is not None and DUPLICATE not in t.system_attrs]
    return sorted(done, key=lambda t: (t.state != TrialState.COMPLETE, -t.value, t.number))


def next_space(plan: Plan, index: int, previous: StageView) -> Space:
    """The space of stage `index`, a pure function of the previous stage's trials."""
    stage = plan.stages[index]
    if previous.stage.kind == StageKind.LR_RANGE_TEST:
        found = found_lr_range(previous.trials)
        if found is None:
            return previous.space
        return set_lr_range(previous.space, *found, previous.stage.margin)
    if stage.kind == StageKind.SEARCH and stage.narrow is not None:
        # keep: the carried configs must fit the new space, or Optuna could not suggest them again
        return narrow(previous.space, [t.params for t in rank(previous.trials)], stage.narrow, keep=stage.carry)
    return previous.space


def stage_view(storage: BaseStorage, plan: Plan, index: int, seed: int | None = None) -> StageView | None:
    """The stage as stored, or None when its study does not exist or is not yet open."""
    stage = plan.stages[index]
    name = study_name(plan.name, stage)
    cached = _OPENED.get((id(storage), name))
    if cached is not None:
        attrs = cached[1]
    else:
        attrs = _study_attrs(storage, name)
        if attrs is None or not attrs.get("opened"):
            return None
        # An open stage's space never changes again. The entry keeps the storage alive, so its id
        # cannot be reused by another storage while the entry exists.
        _OPENED[(id(storage), name)] = (storage, attrs)
    # One Study per stage and process: a sampler rebuilt with the same seed at every look would
    # propose the same point again and again.
    key = (id(storage), name, seed)
    if key not in _STUDIES:
        sampler_seed = plan.seed if shares_seed(stage.sampler) else seed
        study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(stage.sampler, sampler_seed),
                                  pruner=make_pruner(stage.pruner))
        _STUDIES[key] = (study, set())
    study, seen = _STUDIES[key]
    return StageView(index, stage, study, space_from_json(attrs["space"]), seen)


_STUDIES: dict[tuple[int, str, int | None], tuple[optuna.Study, set[int]]] = {}
_CLAIM_ORDER = random.Random()
_OPENED: dict[tuple[int, str], tuple[BaseStorage, dict[str, Any]]] = {}


def stage_complete(view: StageView, max_retry: int) -> bool:
    """Every slot has a finished trial, or has failed more times than it may be retried."""
    if view.live():
        return False
    by_slot = _slots(view.trials)
    for slot in range(view.stage.n_trials):
        trials = by_slot.get(slot, [])
        if any(t.state in FINISHED for t in trials):
            continue
        failures = [t for t in trials if t.state == TrialState.FAIL]
        if len(failures) <= max_retry:
            return False
    return True


def repair_orphans(view: StageView, max_retry: int) -> int:
    """Re-enqueue slots whose last failure never got its retry (a worker died in between); returns how many."""
    if any(t.state == TrialState.WAITING for t in view.trials):
        return 0
    repaired = 0
    for trials in _slots(view.trials).values():
        if any(t.state in (*FINISHED, TrialState.RUNNING, TrialState.WAITING) for t in trials):
            continue
        last = max(trials, key=lambda t: t.number)
        age = time.time() - last.datetime_complete.timestamp() if last.datetime_complete else REPAIR_AFTER_S
        if last.state == TrialState.FAIL and age >= REPAIR_AFTER_S:
            reason = TrialRecord.of(last).fail_reason or "it failed and its retry was never queued"
            repaired += retry_trial(view.study, last, reason, max_retry)
    return repaired


def enqueue_slots(storage: BaseStorage, study_id: int, templates: list[FrozenTrial]) -> int:
    """Add the WAITING slot trials whose slot the study does not have yet, in one step; returns how many."""
    return add_trials_once(storage, study_id, templates, key=SLOT)


def retry_trial(study: optuna.Study, trial: FrozenTrial, reason: str, max_retry: int) -> bool:
    """Enqueue the retry of failed `trial` (Optuna's copy: its slot, params and retry history; user attribute
    `retry_of` says from where and why), unless retries are used up or its slot has a live or finished trial."""
    template = retry_template(trial, reason, max_retry)
    if template is None:
        return False
    return add_trials_once(internals.study_storage(study), internals.study_id(study), [template], key=SLOT,
                           blocked_by=(*FINISHED, TrialState.WAITING, TrialState.RUNNING)) > 0


def claim(view: StageView) -> optuna.Trial | None:
    """Take one WAITING slot atomically; a trial that duplicates a live, lower-numbered one is retired.

    The duplicate check reads the view's snapshot, not the storage again: a lower-numbered rival was
    created before the claimed trial, so it is in the snapshot, and a state that moved on since can only
    have moved to one for which the same decision is right (a rival that failed since has a retry with a
    higher number, which will retire itself against this trial). The waiting slots left over are kept for
    `claim_queued`'s next claims through a gRPC proxy (`storage/waiting.py`).
    """
    storage = internals.study_storage(view.study)
    # A retry first: the rest of the fleet may be waiting for its slot to finish the stage.
    remembered = remember_waiting(storage, internals.study_id(view.study), view.trials, unique_key=SLOT,
                                  first_key=RETRY_OF, order=_CLAIM_ORDER)
    trial_id = take_waiting(storage, remembered, retired_key=DUPLICATE)
    return None if trial_id is None else optuna.Trial(view.study, trial_id)


def claim_queued(view: StageView) -> optuna.Trial | None:
    """`claim` without reading every waiting slot, its first heartbeat recorded; None when no slot is waiting,
    or when the storage cannot: then read the stage and `claim`.

    On PostgreSQL, one transaction that skips rows other workers hold (a duplicate slot retires itself against
    its lowest live twin in it, as in `claim`); through a gRPC proxy, from the slots that `claim` last saw
    waiting, for as long as the stage gains no trial (a retry) and claims keep winning their race.
    """
    storage = internals.study_storage(view.study)
    study_id = internals.study_id(view.study)
    trial_id = claim_waiting(storage, study_id, unique_key=SLOT, retired_key=DUPLICATE, first_key=RETRY_OF)
    if trial_id is None and isinstance(storage, GrpcStorageProxy):
        trial_id = claim_remembered(storage, study_id, retired_key=DUPLICATE)
    if trial_id is None:
        return None
    if trial_id not in view.seen:
        # Optuna's trial cache takes params only for trials it has listed: a slot enqueued since this
        # process last read the stage (a retry) needs one more read. Once per stage, then rarely.
        view.refresh()
        view.trials  # noqa: B018 - the read is the point
    return optuna.Trial(view.study, trial_id)


def _slots(trials: list[FrozenTrial]) -> dict[int, list[FrozenTrial]]:
    out: dict[int, list[FrozenTrial]] = {}
    for t in trials:
        if SLOT in t.system_attrs and DUPLICATE not in t.system_attrs:
            out.setdefault(t.system_attrs[SLOT], []).append(t)
    return out


def _study_attrs(storage: BaseStorage, name: str) -> dict[str, Any] | None:
    """The study's user attributes, or None when there is no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)

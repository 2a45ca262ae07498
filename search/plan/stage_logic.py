"""A campaign's stage logic as pure functions of the plan and the trials read: no storage, no Optuna study.

What a stage's slots are, how finished trials rank, what space the next stage searches, when a stage is complete
and which slots lost their retry. `search/run/campaign.py` reads the trials and acts on the answers.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.plan.agreement import Agreement, ranking_agreement
from hpsearch.search.plan.model_rank import box_trials, smoothed_order
from hpsearch.search.plan.narrow import NarrowRule, narrow, set_lr_range
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import Space
from hpsearch.search.plan.stages import MAX_STAGE_TRIALS, CompareStage, FinalStage, LRRangeTestStage, SearchStage, Stage
from hpsearch.search.record import found_lr_range

SLOT = "hpsearch:slot"
OVERRIDES = "hpsearch:overrides"  # per-slot config changes: the seed of a search stage or a final-stage repeat
DUPLICATE = "hpsearch:duplicate"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RETRY_OF = "failed_trial"  # the system attribute Optuna's retry gives the copy of a failed trial
ERROR = "error"  # a failed trial's user attribute: the objective's exception, {"type", "message", "where"}
ESCALATED = "escalated"  # a stage's user attribute: it opened in its escalated form
FINAL_CONFIGS = "final_configs"  # a final stage's user attribute: the configs it re-trains (its top, or fewer)
AGREEMENT = "ranking_agreement"  # a stage's user attribute: how well the search stage before it ranked
REPAIR_AFTER_S = 5.0  # a failed slot left without a retry this long is re-enqueued by whoever sees it


def slot_templates(plan: Plan, index: int, ranked: list[FrozenTrial], stage: Stage | None = None,
                   ) -> list[tuple[dict, dict]]:
    """(fixed params, config overrides) per slot: carried configs first, then free slots for the sampler. `stage`:
    the stage as it opens (its escalated form), default the plan's."""
    stage = plan.stages[index] if stage is None else stage
    if isinstance(stage, FinalStage):
        top = ranked[: stage.top]
        if stage.smooth > 0:  # by the values around each config, within the span of the stage's trials
            params = [t.params for t in ranked]
            span = narrow(plan.space, params, NarrowRule(top_fraction=1.0, margin=0.0, min_width=0.0, grow=0.0))
            done = sum(t.state == TrialState.COMPLETE for t in ranked)
            order = smoothed_order(span, params, [t.value for t in ranked], stage.smooth,
                                   minimize=plan.metric.minimize, done=done)
            top = [ranked[i] for i in order][: stage.top] if len(order) >= stage.top else top
        base_seed = int(plan.base_params.get("seed", 0))
        return [(dict(t.params), {"seed": base_seed + s}) for t in top for s in range(stage.seeds)]
    if isinstance(stage, CompareStage):  # slot = variant * seeds + seed; the variant's changes win over the params
        fixed = best_params(plan, index, ranked) if stage.compare_on == "best" else {}
        seed = int(plan.base_params.get("seed", 0))
        return [(dict(fixed), {**changes, "seed": seed + s})
                for _, changes in stage.variants for s in range(stage.seeds)]
    carry = stage.carry if isinstance(stage, SearchStage) and index > 0 else 0
    seeded = {"seed": stage_seed(plan, index)} if plan.schema.field_type("seed") is not None else {}
    carried = [(dict(t.params), dict(seeded)) for t in ranked[:carry]]
    return carried + [({}, dict(seeded)) for _ in range(stage.n_trials - len(carried))]


def stage_seed(plan: Plan, index: int) -> int:
    """The seed every trial of search stage `index` trains with, drawn from the base config's seed and the stage's
    position (numpy's SeedSequence) and never one of a final or comparison stage's (seed, seed + 1, ...): a config
    carried into the next stage, or re-trained by the final stage at the fidelity it was found at, is measured on
    fresh noise instead of repeating its run. Every trial of a stage shares it, as fused trials need."""
    base = int(plan.base_params.get("seed", 0))
    # 31 bits: room for an objective's own seed arithmetic below 2**32; eight draws, of which one clears the range
    drawn = (int(d) >> 1 for d in np.random.SeedSequence([base, index]).generate_state(8))
    return next(seed for seed in drawn if not base <= seed < base + MAX_STAGE_TRIALS)


def config_groups(trials: list[FrozenTrial], seeds: int) -> dict[int, list[FrozenTrial]]:
    """The completed trials of a stage that repeats configs over seeds (final, compare), by config: slots
    seeds*i .. seeds*i + seeds - 1 are config i. Each group is in trial order; twins retired at claim are out."""
    groups: dict[int, list[FrozenTrial]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if (t.state == TrialState.COMPLETE and t.value is not None and SLOT in t.system_attrs
                and DUPLICATE not in t.system_attrs):
            groups.setdefault(t.system_attrs[SLOT] // max(1, seeds), []).append(t)
    return groups


def best_params(plan: Plan, index: int, ranked: list[FrozenTrial]) -> dict[str, Any]:
    """The params of the best config before stage `index`: a final stage's best mean over its seeds, else the
    best trial; empty (the base config) when nothing finished."""
    previous = plan.stages[index - 1] if index > 0 else None
    if isinstance(previous, FinalStage):
        groups = config_groups(ranked, previous.seeds)
        if groups:
            sign = -1.0 if plan.metric.minimize else 1.0
            best = max(sorted(groups), key=lambda g: sign * sum(t.value for t in groups[g]) / len(groups[g]))
            return dict(groups[best][0].params)
    return dict(ranked[0].params) if ranked else {}


def rank(trials: list[FrozenTrial], minimize: bool = False) -> list[FrozenTrial]:
    """Completed trials best first (lowest first when the metric is minimized), then pruned ones by their last
    reported value.

    Ties are broken by trial number, so every worker ranks alike. Pruned trials come last because their
    value is from an earlier epoch; they matter when the pruner cut most of a stage.
    """
    done = [t for t in trials if t.state in FINISHED and t.value is not None and DUPLICATE not in t.system_attrs]
    sign = 1.0 if minimize else -1.0
    return sorted(done, key=lambda t: (t.state != TrialState.COMPLETE, sign * t.value, t.number))


def next_space(plan: Plan, index: int, previous_space: Space, previous_trials: list[FrozenTrial]) -> Space:
    """The space of stage `index`, from the space and the trials of the stage before it."""
    stage, previous = plan.stages[index], plan.stages[index - 1]
    if isinstance(previous, LRRangeTestStage):
        found = found_lr_range(previous_trials)
        if found is None:
            return previous_space
        return set_lr_range(previous_space, *found, previous.margin)
    if isinstance(stage, SearchStage) and stage.narrow is not None:
        # keep: the carried configs must fit the new space, or Optuna could not suggest them again
        ranked = rank(previous_trials, plan.metric.minimize)
        rule = stage.narrow
        done = sum(t.state == TrialState.COMPLETE for t in ranked)  # completed trials come first
        top = box_trials(previous_space, [t.params for t in ranked], [t.value for t in ranked],
                         rule.count(len(ranked)), stage.carry, rule.smooth, minimize=plan.metric.minimize, done=done)
        return narrow(previous_space, top, rule, keep=len(top), bounds=plan.space)
    return previous_space


def previous_agreement(plan: Plan, index: int, ranked: list[FrozenTrial]) -> Agreement | None:
    """How well the ranking of the search stage before stage `index` held within its runs (None where that stage
    is not a search stage, or too few of its trials reported enough steps)."""
    if index == 0 or not isinstance(plan.stages[index - 1], SearchStage):
        return None
    return ranking_agreement([t.intermediate_values for t in ranked if t.state == TrialState.COMPLETE])


def as_opened(stage: Stage, escalated: bool, configs: int | None = None) -> Stage:
    """The stage as it runs: its escalated form (trials, fidelity, sampler) where it opened escalated; a final
    stage re-training `configs` configs where the stage before it finished fewer than its `top`."""
    if escalated and isinstance(stage, SearchStage) and stage.escalate is not None:
        return stage.escalated_form()
    if isinstance(stage, FinalStage) and configs is not None and 0 < configs < stage.top:
        return replace(stage, top=configs, n_trials=configs * stage.seeds)
    return stage


def final_configs(stage: Stage, ranked: list[FrozenTrial]) -> int | None:
    """How many configs a final stage re-trains: its `top`, or as many as the stage before it finished (its
    slots are those configs x seeds, and a stage waits for every slot). None for other stages."""
    return min(stage.top, len(ranked)) if isinstance(stage, FinalStage) else None


def escalates(plan: Plan, index: int, previous: Stage, agreement: Agreement | None) -> bool:
    """Whether stage `index` opens in its escalated form: it has one, and the stage before it (`previous`, as it
    ran) ran in its own, or ranked with an agreement below the escalation's threshold. An agreement too few trials
    measured (None) does not escalate."""
    stage = plan.stages[index]
    if not isinstance(stage, SearchStage) or stage.escalate is None:
        return False
    if isinstance(previous, SearchStage) and previous.escalated:
        return True
    return agreement is not None and agreement.rho < stage.escalate.below


def failure_limit(plan: Plan, index: int) -> int:
    """How many of a stage's slots failing with an error, none finished, stop the campaign (0: never): the
    plan's `fail_fast`, else max(3, a tenth of the stage's budget)."""
    if plan.fail_fast is not None:
        return plan.fail_fast
    return max(3, math.ceil(0.1 * plan.stages[index].n_trials))


def failing(trials: list[FrozenTrial], limit: int) -> FrozenTrial | None:
    """The first trial of a stage that keeps failing: none finished, and the trials of at least `limit` slots
    failed with an error of the objective (not a stop or a lost worker; a slot's retries are one slot); None
    otherwise."""
    if limit <= 0 or any(t.state in FINISHED for t in trials):
        return None
    errors = sorted((t for t in trials if t.state == TrialState.FAIL and ERROR in t.user_attrs),
                    key=lambda t: t.number)
    return errors[0] if len({t.system_attrs.get(SLOT, t.number) for t in errors}) >= limit else None


def first_error(trials: list[FrozenTrial]) -> dict[str, Any]:
    """The objective's error of the stage's first trial that failed with one; empty when none did."""
    errors = sorted((t for t in trials if ERROR in t.user_attrs), key=lambda t: t.number)
    return dict(errors[0].user_attrs[ERROR]) if errors else {}


def live(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials waiting or running."""
    return [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]


def stage_complete(trials: list[FrozenTrial], n_trials: int, max_retry: int) -> bool:
    """Every slot has a finished trial, or has failed more times than it may be retried."""
    if live(trials):
        return False
    by_slot = slots(trials)
    for slot in range(n_trials):
        tried = by_slot.get(slot, [])
        if any(t.state in FINISHED for t in tried):
            continue
        if len([t for t in tried if t.state == TrialState.FAIL]) <= max_retry:
            return False
    return True


def orphans(trials: list[FrozenTrial], now: float) -> list[FrozenTrial]:
    """The last failed trial of each slot whose retry was never queued (its worker died in between), once it
    has been so for `REPAIR_AFTER_S`; none while any slot is waiting."""
    if any(t.state == TrialState.WAITING for t in trials):
        return []
    out = []
    for tried in slots(trials).values():
        if any(t.state in (*FINISHED, TrialState.RUNNING, TrialState.WAITING) for t in tried):
            continue
        last = max(tried, key=lambda t: t.number)
        age = now - last.datetime_complete.timestamp() if last.datetime_complete else REPAIR_AFTER_S
        if last.state == TrialState.FAIL and age >= REPAIR_AFTER_S:
            out.append(last)
    return out


def slots(trials: list[FrozenTrial]) -> dict[int, list[FrozenTrial]]:
    """The trials of each slot, twins retired at claim time left out."""
    out: dict[int, list[FrozenTrial]] = {}
    for t in trials:
        if SLOT in t.system_attrs and DUPLICATE not in t.system_attrs:
            out.setdefault(t.system_attrs[SLOT], []).append(t)
    return out


__all__ = ["AGREEMENT", "DUPLICATE", "ERROR", "ESCALATED", "FINAL_CONFIGS", "FINISHED", "OVERRIDES", "REPAIR_AFTER_S",
           "RETRY_OF", "SLOT", "as_opened", "best_params", "config_groups", "escalates", "failing", "failure_limit",
           "final_configs", "first_error", "live", "next_space", "orphans", "previous_agreement", "rank",
           "slot_templates", "slots", "stage_complete"]

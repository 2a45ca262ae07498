"""Reading a plan's stage entry into the record type of its kind (`search/plan/stages.py`), checked against the
stages before it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from optuna.distributions import FloatDistribution

from hpsearch.objectives.params import TRAIN_CONFIG, ParamSchema
from hpsearch.search.plan.narrow import parse_narrow_rule
from hpsearch.search.plan.samplers import pruner_spec, sampler_spec
from hpsearch.search.plan.space import PlanError, Space
from hpsearch.search.plan.stages import (
    COMPARE_ON,
    MAX_STAGE_TRIALS,
    STAGE_KINDS,
    STAGE_TYPES,
    CompareStage,
    Escalation,
    FinalStage,
    LRRangeTestStage,
    SearchStage,
    Stage,
    StageKind,
)
from hpsearch.search.plan.validate import integer, mapping, number, safe_name, train_config

__all__ = ["parse_stage"]


def parse_stage(data: Any, at: str, base: dict[str, Any], space: Space, before: list[Stage],
                 *, last: bool, schema: ParamSchema = TRAIN_CONFIG) -> Stage:
    """One stage entry of a plan, checked against the stages `before` it; `last`: only compare stages follow."""
    mapping(data, at, "a stage mapping with at least name and n_trials")
    raw_kind = data.get("kind", "search")
    if raw_kind not in STAGE_KINDS:
        raise PlanError(f"{at}.kind: unknown stage kind {raw_kind!r}; choose from {list(STAGE_KINDS)}")
    kind = StageKind(raw_kind)
    keys = STAGE_TYPES[kind].keys
    for key in data:
        if key not in keys:
            used_by = [t for t in STAGE_TYPES.values() if key in t.keys]
            problem = f"is not used by a {kind} stage" if used_by else "unknown key"
            raise PlanError(f"{at}.{key}: {problem}; valid keys for kind {kind}: {', '.join(keys)}")
    if "name" not in data:
        raise PlanError(f"{at}: missing 'name'; name the stage, e.g. name: coarse")
    name = safe_name(data["name"], f"{at}.name")
    overrides = _overrides(data.get("overrides") or {}, f"{at}.overrides", base, space, schema)
    if kind == StageKind.LR_RANGE_TEST:
        return _lr_range_test(data, at, name, overrides, space, before)
    if kind == StageKind.FINAL:
        return _final(data, at, name, overrides, before, last)
    if kind == StageKind.COMPARE:
        return _compare(data, at, name, overrides, {**base, **overrides}, before, schema)
    stage = _search(data, at, name, overrides, before)
    if "escalate" not in data:
        return stage
    if not any(isinstance(s, SearchStage) for s in before):
        raise PlanError(f"{at}.escalate: there is no search stage before it whose ranking could fail to hold; "
                        "remove it")
    return replace(stage, escalate=_escalation(data["escalate"], f"{at}.escalate", {**base, **overrides}, space,
                                               schema))


_ESCALATE_KEYS = ("below", "n_trials", "overrides", "sampler", "pruner")


def _escalation(data: Any, at: str, base: dict[str, Any], space: Space, schema: ParamSchema) -> Escalation:
    mapping(data, at, "a mapping like {below: 0.5, n_trials: 8, overrides: {data_fraction: 1.0, epochs: 30}}")
    unknown = sorted(set(data) - set(_ESCALATE_KEYS))
    if unknown:
        raise PlanError(f"{at}.{unknown[0]}: unknown key; valid keys are {', '.join(_ESCALATE_KEYS)}")
    for key in ("n_trials", "overrides"):
        if key not in data:
            raise PlanError(f"{at}: missing {key!r}; give the trials and the fidelity it runs when escalated, "
                            "e.g. n_trials: 8, overrides: {data_fraction: 1.0, epochs: 30}")
    below = data.get("below", 0.5)
    if not isinstance(below, (int, float)) or isinstance(below, bool) or not -1 <= below <= 1:
        raise PlanError(f"{at}.below: must be a number in [-1, 1] (a rank correlation), got {below!r}")
    n_trials = integer(data["n_trials"], f"{at}.n_trials", low=1, high=MAX_STAGE_TRIALS)
    overrides = _overrides(data["overrides"], f"{at}.overrides", base, space, schema)
    sampler = sampler_spec(data["sampler"], f"{at}.sampler") if "sampler" in data else None
    pruner = pruner_spec(data["pruner"], f"{at}.pruner") if "pruner" in data else None
    return Escalation(n_trials, overrides, float(below), sampler, pruner)


def _search(data: dict[str, Any], at: str, name: str, overrides: dict[str, Any],
            before: list[Stage]) -> SearchStage:
    if "n_trials" not in data:
        raise PlanError(f"{at}: missing 'n_trials'; give the stage's trial budget, e.g. n_trials: 32")
    n_trials = integer(data["n_trials"], f"{at}.n_trials", low=1)
    if n_trials > MAX_STAGE_TRIALS:
        raise PlanError(f"{at}.n_trials: {n_trials} is over the {MAX_STAGE_TRIALS} trials a stage may hold; "
                        "lower it, or split the budget over stages")
    # Coarse stages want even coverage, later ones a model of what worked (docs/practice.md).
    first_search = not any(isinstance(s, SearchStage) for s in before)
    sampler = sampler_spec(data.get("sampler", "random" if first_search else "tpe"), f"{at}.sampler")
    pruner = pruner_spec(data.get("pruner", "none"), f"{at}.pruner")
    prev = before[-1] if before and isinstance(before[-1], SearchStage) else None  # what it narrows, carries from
    rule = None
    if "narrow" in data:
        if prev is None:
            raise PlanError(f"{at}.narrow: there is no previous search stage to narrow from; remove it")
        rule = parse_narrow_rule(data["narrow"], f"{at}.narrow")
    carry = integer(data.get("carry", 0), f"{at}.carry", low=0, high=n_trials)
    if carry and prev is None:
        raise PlanError(f"{at}.carry: there is no previous search stage to carry configs from; remove it")
    if carry and prev is not None and carry > prev.n_trials:
        raise PlanError(f"{at}.carry: {carry} > the previous stage's {prev.n_trials} trials; lower it")
    return SearchStage(name, n_trials, overrides, sampler=sampler, pruner=pruner, narrow=rule, carry=carry)


def _lr_range_test(data: dict[str, Any], at: str, name: str, overrides: dict[str, Any], space: Space,
                   before: list[Stage]) -> LRRangeTestStage:
    if before:
        raise PlanError(f"{at}.kind: an lr_range_test stage must be the first stage; move it to the top")
    lr = space["lr"].distribution if "lr" in space else None
    if not (isinstance(lr, FloatDistribution) and lr.log):
        raise PlanError(f"{at}.kind: an lr_range_test stage sets the LR bounds, so the space needs "
                        "lr: {type: float, log: true, ...}; add it")
    return LRRangeTestStage(name, 1, overrides, margin=number(data.get("margin", 0.0), f"{at}.margin"))


def _final(data: dict[str, Any], at: str, name: str, overrides: dict[str, Any], before: list[Stage],
           last: bool) -> FinalStage:
    if not last:
        raise PlanError(f"{at}.kind: a final stage must be the last stage (only compare stages may follow it); "
                        "move it to the end")
    prev = before[-1] if before else None
    if not isinstance(prev, SearchStage):
        raise PlanError(f"{at}.kind: a final stage re-trains the best configs of a search stage; "
                        "put a search stage before it")
    top = integer(data.get("top", 3), f"{at}.top", low=1)
    if top > prev.n_trials:
        raise PlanError(f"{at}.top: {top} > the previous stage's {prev.n_trials} trials; lower it")
    seeds = integer(data.get("seeds", 3), f"{at}.seeds", low=1)
    if top * seeds > MAX_STAGE_TRIALS:
        raise PlanError(f"{at}: top x seeds = {top * seeds} trials, over the {MAX_STAGE_TRIALS} a stage may "
                        "hold; lower them")
    smooth = data.get("smooth", 0.0)
    if not isinstance(smooth, (int, float)) or isinstance(smooth, bool) or not 0 <= smooth <= 1:
        raise PlanError(f"{at}.smooth: must be a number in [0, 1] (the kernel's width as a share of the span of "
                        f"the previous stage's trials; 0 picks by each trial's own value), got {smooth!r}")
    return FinalStage(name, top * seeds, overrides, top=top, seeds=seeds, smooth=float(smooth))


def _compare(data: dict[str, Any], at: str, name: str, overrides: dict[str, Any], config: dict[str, Any],
             before: list[Stage], schema: ParamSchema) -> CompareStage:
    """`config`: the base config with the stage's overrides, which every variant's changes must fit."""
    has_best = any(isinstance(s, (SearchStage, FinalStage)) for s in before)
    on = data.get("config", "best" if has_best else "base")
    if on not in COMPARE_ON:
        raise PlanError(f"{at}.config: must be best (the best config so far) or base (the plan's base config), "
                        f"got {on!r}")
    if on == "best" and not has_best:
        raise PlanError(f"{at}.config: there is no best config yet (no search or final stage before this one); "
                        "use config: base, or put a search stage first")
    if on == "best" and isinstance(before[-1], CompareStage) and before[-1].compare_on == "base":
        raise PlanError(f"{at}.config: best takes the config of the stage before, which compares on the base "
                        "config; use config: base, or move this stage right after the search or final stage")
    seeds = integer(data.get("seeds", 3), f"{at}.seeds", low=2)  # an interval needs two values
    variants = _variants(data.get("variants"), f"{at}.variants", config, schema)
    return CompareStage(name, len(variants) * seeds, overrides, seeds=seeds, variants=variants, compare_on=on)


def _variants(data: Any, at: str, config: dict[str, Any],
              schema: ParamSchema) -> tuple[tuple[str, dict[str, Any]], ...]:
    """A mapping name -> overrides (in order; the first is the reference), or the stored list of
    {name, overrides}."""
    example = "e.g. {sgd: {optimizer: sgd}, adamw: {optimizer: adamw, lr: 1.0e-3}}"
    if isinstance(data, list) and all(isinstance(v, dict) and set(v) == {"name", "overrides"} for v in data):
        items = [(v["name"], v["overrides"]) for v in data]
    elif isinstance(data, dict):
        items = list(data.items())
    else:
        raise PlanError(f"{at}: expected a mapping of variant names to TrainConfig overrides, {example}; "
                        f"got {data!r}")
    if len(items) < 2:
        raise PlanError(f"{at}: a comparison needs at least two variants, got {len(items)}; {example}")
    out: list[tuple[str, dict[str, Any]]] = []
    for name, changes in items:
        name = safe_name(name, f"{at}: variant name")
        if any(name == n for n, _ in out):
            raise PlanError(f"{at}.{name}: the variant name is used twice; give every variant its own name")
        changes = {} if changes is None else changes
        mapping(changes, f"{at}.{name}", "a mapping of TrainConfig keys to values ({} for the config as it is)")
        for key in ("seed", "device"):
            if key in changes:
                raise PlanError(f"{at}.{name}.{key}: set by the stage (seeds) and the worker (device); remove it")
        train_config({**config, **changes}, f"{at}.{name}", schema)
        out.append((name, dict(changes)))
    return tuple(out)


def _overrides(data: Any, at: str, base: dict[str, Any], space: Space, schema: ParamSchema) -> dict[str, Any]:
    mapping(data, at, f"a mapping of {schema.name} keys (for CIFAR-10: data_fraction, epochs, width, ...)")
    for key in data:
        if key in space:
            raise PlanError(f"{at}.{key}: {key!r} is searched in the space; remove it from the overrides "
                            "or from the space")
    train_config({**base, **data}, at, schema)
    return dict(data)

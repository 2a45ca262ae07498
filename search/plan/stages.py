"""A campaign's stages: their kinds, what each holds, and how a plan's stage entry is read and written."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from optuna.distributions import FloatDistribution

from hpsearch.objectives.params import TRAIN_CONFIG, ParamSchema
from hpsearch.search.plan.narrow import NarrowRule, parse_narrow_rule, rule_to_data
from hpsearch.search.plan.samplers import Spec, pruner_spec, sampler_spec
from hpsearch.search.plan.space import PlanError, Space
from hpsearch.search.plan.validate import integer, mapping, number, safe_name, train_config

__all__ = ["COMPARE_ON", "MAX_STAGE_TRIALS", "STAGE_KINDS", "Stage", "StageKind", "parse_stage", "stage_to_data"]


class StageKind(StrEnum):
    """What a stage does. Plans, the storage and the exports hold the value; code compares the members."""

    SEARCH = "search"  # samples the space (narrowed from the stage before), pruned by its pruner
    LR_RANGE_TEST = "lr_range_test"  # first only: one LR range test that sets the space's LR bounds
    FINAL = "final"  # last (or before compare stages): the best configs of a search stage over seeds
    COMPARE = "compare"  # named variants of the best or base config over seeds, with intervals


STAGE_KINDS = tuple(k.value for k in StageKind)
COMPARE_ON = ("best", "base")  # compare stages: the config their variants change
MAX_STAGE_TRIALS = 10_000  # a stage's slots are enqueued when it opens; more is a typo, not a budget
_STAGE_KEYS = {
    "search": ("name", "kind", "n_trials", "overrides", "sampler", "pruner", "narrow", "carry"),
    "lr_range_test": ("name", "kind", "overrides", "margin"),
    "final": ("name", "kind", "overrides", "top", "seeds", "smooth"),
    "compare": ("name", "kind", "overrides", "config", "seeds", "variants"),
}


@dataclass(frozen=True)
class Stage:
    """One stage of a campaign; one Optuna study with exactly `n_trials` trials."""

    name: str
    kind: StageKind = StageKind.SEARCH
    n_trials: int = 1  # final: top * seeds; compare: variants * seeds; lr_range_test: 1
    overrides: dict[str, Any] = field(default_factory=dict)  # fidelity: TrainConfig keys not in the space
    sampler: Spec = field(default_factory=lambda: Spec("random"))  # search: how its params are sampled
    pruner: Spec = field(default_factory=lambda: Spec("none"))  # search: when a trial falling behind stops
    narrow: NarrowRule | None = None  # how this stage's space comes from the previous stage's best trials
    carry: int = 0  # best configs of the previous stage re-measured here
    top: int = 0  # final: configs re-trained
    seeds: int = 1  # final: seeds per config, ranked by their mean; compare: seeds per variant
    # final: pick the top configs by the kernel-weighted mean of the values around each (this share of the span of
    # the previous stage's trials), not by their own run; 0: by their own run (search/plan/model_rank.py)
    smooth: float = 0.0
    margin: float = 0.0  # lr_range_test: widen the found LR range by this share of its log width per side
    # compare: (name, TrainConfig overrides) per variant, the first being the reference the others are tested
    # against, and whether they change the best config so far ("best") or the plan's base config ("base")
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()
    compare_on: str = "base"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", StageKind(self.kind))  # a kind given by its value is the member


def parse_stage(data: Any, at: str, base: dict[str, Any], space: Space, before: list[Stage],
                 *, last: bool, schema: ParamSchema = TRAIN_CONFIG) -> Stage:
    """One stage entry of a plan, checked against the stages `before` it; `last`: only compare stages follow."""
    mapping(data, at, "a stage mapping with at least name and n_trials")
    raw_kind = data.get("kind", "search")
    if raw_kind not in STAGE_KINDS:
        raise PlanError(f"{at}.kind: unknown stage kind {raw_kind!r}; choose from {list(STAGE_KINDS)}")
    kind = StageKind(raw_kind)
    for key in data:
        if key not in _STAGE_KEYS[kind]:
            used_by = [k for k, keys in _STAGE_KEYS.items() if key in keys]
            problem = f"is not used by a {kind} stage" if used_by else "unknown key"
            valid = ", ".join(_STAGE_KEYS[kind])
            raise PlanError(f"{at}.{key}: {problem}; valid keys for kind {kind}: {valid}")
    if "name" not in data:
        raise PlanError(f"{at}: missing 'name'; name the stage, e.g. name: coarse")
    name = safe_name(data["name"], f"{at}.name")
    overrides = _overrides(data.get("overrides") or {}, f"{at}.overrides", base, space, schema)
    prev = before[-1] if before else None
    after_search = prev is not None and prev.kind == StageKind.SEARCH
    if kind == StageKind.LR_RANGE_TEST:
        if before:
            raise PlanError(f"{at}.kind: an lr_range_test stage must be the first stage; move it to the top")
        lr = space["lr"].distribution if "lr" in space else None
        if not (isinstance(lr, FloatDistribution) and lr.log):
            raise PlanError(f"{at}.kind: an lr_range_test stage sets the LR bounds, so the space needs "
                            "lr: {type: float, log: true, ...}; add it")
        margin = number(data.get("margin", 0.0), f"{at}.margin")
        return Stage(name, kind, 1, overrides, margin=margin)
    if kind == StageKind.FINAL:
        if not last:
            raise PlanError(f"{at}.kind: a final stage must be the last stage (only compare stages may follow it); "
                            "move it to the end")
        if not after_search:
            raise PlanError(f"{at}.kind: a final stage re-trains the best configs of a search stage; "
                            "put a search stage before it")
        assert prev is not None
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
        return Stage(name, kind, top * seeds, overrides, top=top, seeds=seeds, smooth=float(smooth))
    if kind == StageKind.COMPARE:
        return _parse_compare(data, at, name, overrides, base, before, schema)
    if "n_trials" not in data:
        raise PlanError(f"{at}: missing 'n_trials'; give the stage's trial budget, e.g. n_trials: 32")
    n_trials = integer(data["n_trials"], f"{at}.n_trials", low=1)
    if n_trials > MAX_STAGE_TRIALS:
        raise PlanError(f"{at}.n_trials: {n_trials} is over the {MAX_STAGE_TRIALS} trials a stage may hold; "
                        "lower it, or split the budget over stages")
    # Coarse stages want even coverage, later ones a model of what worked (docs/practice.md).
    first_search = not any(s.kind == StageKind.SEARCH for s in before)
    sampler = sampler_spec(data.get("sampler", "random" if first_search else "tpe"), f"{at}.sampler")
    pruner = pruner_spec(data.get("pruner", "none"), f"{at}.pruner")
    rule = None
    if "narrow" in data:
        if not after_search:
            raise PlanError(f"{at}.narrow: there is no previous search stage to narrow from; remove it")
        rule = parse_narrow_rule(data["narrow"], f"{at}.narrow")
    carry = integer(data.get("carry", 0), f"{at}.carry", low=0, high=n_trials)
    if carry and not after_search:
        raise PlanError(f"{at}.carry: there is no previous search stage to carry configs from; remove it")
    if carry and prev is not None and carry > prev.n_trials:
        raise PlanError(f"{at}.carry: {carry} > the previous stage's {prev.n_trials} trials; lower it")
    return Stage(name, kind, n_trials, overrides, sampler, pruner, rule, carry)


def _parse_compare(data: dict[str, Any], at: str, name: str, overrides: dict[str, Any], base: dict[str, Any],
                   before: list[Stage], schema: ParamSchema) -> Stage:
    has_best = any(s.kind in (StageKind.SEARCH, StageKind.FINAL) for s in before)
    on = data.get("config", "best" if has_best else "base")
    if on not in COMPARE_ON:
        raise PlanError(f"{at}.config: must be best (the best config so far) or base (the plan's base config), "
                        f"got {on!r}")
    if on == "best" and not has_best:
        raise PlanError(f"{at}.config: there is no best config yet (no search or final stage before this one); "
                        "use config: base, or put a search stage first")
    if on == "best" and before[-1].kind == StageKind.COMPARE and before[-1].compare_on == "base":
        raise PlanError(f"{at}.config: best takes the config of the stage before, which compares on the base "
                        "config; use config: base, or move this stage right after the search or final stage")
    seeds = integer(data.get("seeds", 3), f"{at}.seeds", low=2)  # an interval needs two values
    variants = _variants(data.get("variants"), f"{at}.variants", {**base, **overrides}, schema)
    return Stage(name, StageKind.COMPARE, len(variants) * seeds, overrides, seeds=seeds, variants=variants,
                 compare_on=on)


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


def stage_to_data(s: Stage) -> dict[str, Any]:
    """The stage in the plan-file form, only the keys its kind uses: `parse_stage` reads it back equal."""
    everything = {"name": s.name, "kind": s.kind.value, "n_trials": s.n_trials, "overrides": dict(s.overrides),
                  "sampler": s.sampler.to_data(), "pruner": s.pruner.to_data(), "carry": s.carry, "top": s.top,
                  "seeds": s.seeds, "margin": s.margin, "config": s.compare_on,
                  "variants": [{"name": n, "overrides": dict(o)} for n, o in s.variants],
                  "narrow": rule_to_data(s.narrow) if s.narrow is not None else None,
                  "smooth": s.smooth or None}
    return {k: everything[k] for k in _STAGE_KEYS[s.kind] if everything[k] is not None}


def _overrides(data: Any, at: str, base: dict[str, Any], space: Space, schema: ParamSchema) -> dict[str, Any]:
    mapping(data, at, f"a mapping of {schema.name} keys (for CIFAR-10: data_fraction, epochs, width, ...)")
    for key in data:
        if key in space:
            raise PlanError(f"{at}.{key}: {key!r} is searched in the space; remove it from the overrides "
                            "or from the space")
    train_config({**base, **data}, at, schema)
    return dict(data)

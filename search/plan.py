"""The plan file: base config, search space and stages of a campaign, validated up front."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from optuna.distributions import FloatDistribution

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.objective import OBJECTIVES
from hpsearch.objectives.textfile import MAX_TEXT_BYTES, read_small_text
from hpsearch.search.narrow import NarrowRule, parse_narrow_rule, rule_to_data
from hpsearch.search.samplers import pruner_spec, sampler_spec
from hpsearch.search.space import PlanError, Space, parse_space, space_to_data

__all__ = ["Plan", "PlanError", "Stage", "load_plan", "plan_fingerprint"]



class StageKind(StrEnum):
    """What a stage does. Plans, the storage and the exports hold the value; code compares the members."""

    SEARCH = "search"  # samples the space (narrowed from the stage before), pruned by its pruner
    LR_RANGE_TEST = "lr_range_test"  # first only: one LR range test that sets the space's LR bounds
    FINAL = "final"  # last (or before compare stages): the best configs of a search stage over seeds
    COMPARE = "compare"  # named variants of the best or base config over seeds, with intervals


STAGE_KINDS = tuple(k.value for k in StageKind)
COMPARE_ON = ("best", "base")  # compare stages: the config their variants change
MAX_STAGE_TRIALS = 10_000  # a stage's slots are enqueued when it opens; more is a typo, not a budget
MAX_PLAN_BYTES = MAX_TEXT_BYTES  # a plan is a page of YAML; refuse /dev/zero or a wrong file at once
_NAME = re.compile(r"[A-Za-z0-9_-]+")  # safe inside the study name "<campaign>.<stage>"
_OBJECTIVE_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_PLAN_KEYS = ("name", "objective", "seed", "base", "space", "stages")
_STAGE_KEYS = {
    "search": ("name", "kind", "n_trials", "overrides", "sampler", "pruner", "narrow", "carry"),
    "lr_range_test": ("name", "kind", "overrides", "margin"),
    "final": ("name", "kind", "overrides", "top", "seeds"),
    "compare": ("name", "kind", "overrides", "config", "seeds", "variants"),
}


@dataclass(frozen=True)
class Stage:
    """One stage of a campaign; one Optuna study with exactly `n_trials` trials."""

    name: str
    kind: StageKind = StageKind.SEARCH
    n_trials: int = 1  # final: top * seeds; compare: variants * seeds; lr_range_test: 1
    overrides: dict[str, Any] = field(default_factory=dict)  # fidelity: TrainConfig keys not in the space
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "random"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    narrow: NarrowRule | None = None  # how this stage's space comes from the previous stage's best trials
    carry: int = 0  # best configs of the previous stage re-measured here
    top: int = 0  # final: configs re-trained
    seeds: int = 1  # final: seeds per config, ranked by their mean; compare: seeds per variant
    margin: float = 0.0  # lr_range_test: widen the found LR range by this share of its log width per side
    # compare: (name, TrainConfig overrides) per variant, the first being the reference the others are tested
    # against, and whether they change the best config so far ("best") or the plan's base config ("base")
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()
    compare_on: str = "base"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", StageKind(self.kind))  # a kind given by its value is the member


@dataclass(frozen=True)
class Plan:
    """A campaign: the objective, the base TrainConfig (all keys), the base space and the stages in order."""

    name: str
    objective: str
    base: TrainConfig
    space: Space
    stages: tuple[Stage, ...]
    seed: int = 0

    def stage(self, name: str) -> Stage:
        """The stage called `name`."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def config_for(self, stage: Stage, params: Mapping[str, Any], where: str | None = None) -> TrainConfig:
        """The TrainConfig of one trial: base, then the stage's fidelity, then `params` (sampled, per slot)."""
        return TrainConfig.from_dict({**self.base.to_dict(), **stage.overrides, **params},
                                     where=where or f"stage {stage.name}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON in the plan-file form; `from_dict` reads it back to an equal Plan."""
        return {"name": self.name, "objective": self.objective, "seed": self.seed, "base": self.base.to_dict(),
                "space": space_to_data(self.space), "stages": [_stage_to_data(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan") -> Plan:
        """Validate a plan mapping; any problem raises a one-line PlanError naming the key path."""
        _mapping(data, where, "a plan mapping with name, objective, base, space and stages")
        _known_keys(data, _PLAN_KEYS, where)
        raw = data.get("stages")
        # A plan of comparisons only searches nothing: it needs no space.
        compare_only = isinstance(raw, list) and bool(raw) and all(
            isinstance(s, dict) and s.get("kind") == "compare" for s in raw)
        for key in ("name", "objective", "space", "stages"):
            if key not in data and not (key == "space" and compare_only):
                raise PlanError(f"{where}: missing {key!r}; a plan needs name, objective, space and stages")
        name = _safe_name(data["name"], f"{where}: name")
        objective = data["objective"]
        if objective not in OBJECTIVES and not (
            isinstance(objective, str) and _OBJECTIVE_REF.fullmatch(objective)
        ):
            raise PlanError(f"{where}: objective: {objective!r} is neither one of {list(OBJECTIVES)} "
                            "nor a 'module:function' reference; use one of those forms")
        seed = _integer(data.get("seed", 0), f"{where}: seed", low=0)
        base = _config(data.get("base") or {}, f"{where}: base")
        space = parse_space(data["space"], f"{where}: space") if data.get("space") or not compare_only else Space(())
        if not isinstance(raw, list) or not raw:
            raise PlanError(f"{where}: stages: expected a non-empty list of stages, got {raw!r}")
        stages: list[Stage] = []
        for i, item in enumerate(raw):
            only_compare_after = all(isinstance(r, dict) and r.get("kind") == "compare" for r in raw[i + 1:])
            stage = _parse_stage(item, f"{where}: stages[{i}]", base.to_dict(), space, stages,
                                 last=only_compare_after)
            if any(s.name == stage.name for s in stages):
                raise PlanError(f"{where}: stages[{i}].name: {stage.name!r} is used twice; "
                                "give every stage its own name")
            stages.append(stage)
        if not any(s.kind in (StageKind.SEARCH, StageKind.COMPARE) for s in stages):
            raise PlanError(f"{where}: stages: no search stage; add one with kind: search and n_trials "
                            "(or a compare stage)")
        return cls(name, objective, base, space, tuple(stages), seed)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan YAML file."""
    where = str(path)
    text = read_small_text(path, "plan file", PlanError, MAX_PLAN_BYTES)
    try:
        data = yaml.load(text, Loader=_PlanLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise PlanError(f"{where}: invalid YAML{at}: {problem}; fix the syntax") from None
    return Plan.from_dict(data, where)


def plan_fingerprint(plan: Plan) -> str:
    """sha256 of the plan's canonical JSON: equal for equal plans, whatever the file's layout."""
    text = json.dumps(plan.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


class _PlanLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e-3 as a float (YAML 1.1 wants 1.0e-3) and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_PlanLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+|[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)


def _parse_stage(data: Any, at: str, base: dict[str, Any], space: Space, before: list[Stage],
                 *, last: bool) -> Stage:
    _mapping(data, at, "a stage mapping with at least name and n_trials")
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
    name = _safe_name(data["name"], f"{at}.name")
    overrides = _overrides(data.get("overrides") or {}, f"{at}.overrides", base, space)
    prev = before[-1] if before else None
    after_search = prev is not None and prev.kind == StageKind.SEARCH
    if kind == StageKind.LR_RANGE_TEST:
        if before:
            raise PlanError(f"{at}.kind: an lr_range_test stage must be the first stage; move it to the top")
        lr = space["lr"].distribution if "lr" in space else None
        if not (isinstance(lr, FloatDistribution) and lr.log):
            raise PlanError(f"{at}.kind: an lr_range_test stage sets the LR bounds, so the space needs "
                            "lr: {type: float, log: true, ...}; add it")
        margin = _number(data.get("margin", 0.0), f"{at}.margin")
        return Stage(name, kind, 1, overrides, margin=margin)
    if kind == StageKind.FINAL:
        if not last:
            raise PlanError(f"{at}.kind: a final stage must be the last stage (only compare stages may follow it); "
                            "move it to the end")
        if not after_search:
            raise PlanError(f"{at}.kind: a final stage re-trains the best configs of a search stage; "
                            "put a search stage before it")
        assert prev is not None
        top = _integer(data.get("top", 3), f"{at}.top", low=1)
        if top > prev.n_trials:
            raise PlanError(f"{at}.top: {top} > the previous stage's {prev.n_trials} trials; lower it")
        seeds = _integer(data.get("seeds", 3), f"{at}.seeds", low=1)
        if top * seeds > MAX_STAGE_TRIALS:
            raise PlanError(f"{at}: top x seeds = {top * seeds} trials, over the {MAX_STAGE_TRIALS} a stage may "
                            "hold; lower them")
        return Stage(name, kind, top * seeds, overrides, top=top, seeds=seeds)
    if kind == StageKind.COMPARE:
        return _parse_compare(data, at, name, overrides, base, before)
    if "n_trials" not in data:
        raise PlanError(f"{at}: missing 'n_trials'; give the stage's trial budget, e.g. n_trials: 32")
    n_trials = _integer(data["n_trials"], f"{at}.n_trials", low=1)
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
    carry = _integer(data.get("carry", 0), f"{at}.carry", low=0, high=n_trials)
    if carry and not after_search:
        raise PlanError(f"{at}.carry: there is no previous search stage to carry configs from; remove it")
    if carry and prev is not None and carry > prev.n_trials:
        raise PlanError(f"{at}.carry: {carry} > the previous stage's {prev.n_trials} trials; lower it")
    return Stage(name, kind, n_trials, overrides, sampler, pruner, rule, carry)


def _parse_compare(data: dict[str, Any], at: str, name: str, overrides: dict[str, Any], base: dict[str, Any],
                   before: list[Stage]) -> Stage:
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
    seeds = _integer(data.get("seeds", 3), f"{at}.seeds", low=2)  # an interval needs two values
    variants = _variants(data.get("variants"), f"{at}.variants", {**base, **overrides})
    return Stage(name, StageKind.COMPARE, len(variants) * seeds, overrides, seeds=seeds, variants=variants,
                 compare_on=on)


def _variants(data: Any, at: str, config: dict[str, Any]) -> tuple[tuple[str, dict[str, Any]], ...]:
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
        name = _safe_name(name, f"{at}: variant name")
        if any(name == n for n, _ in out):
            raise PlanError(f"{at}.{name}: the variant name is used twice; give every variant its own name")
        changes = {} if changes is None else changes
        _mapping(changes, f"{at}.{name}", "a mapping of TrainConfig keys to values ({} for the config as it is)")
        for key in ("seed", "device"):
            if key in changes:
                raise PlanError(f"{at}.{name}.{key}: set by the stage (seeds) and the worker (device); remove it")
        _config({**config, **changes}, f"{at}.{name}")
        out.append((name, dict(changes)))
    return tuple(out)


def _stage_to_data(s: Stage) -> dict[str, Any]:
    everything = {"name": s.name, "kind": s.kind.value, "n_trials": s.n_trials, "overrides": dict(s.overrides),
                  "sampler": dict(s.sampler), "pruner": dict(s.pruner), "carry": s.carry, "top": s.top,
                  "seeds": s.seeds, "margin": s.margin, "config": s.compare_on,
                  "variants": [{"name": n, "overrides": dict(o)} for n, o in s.variants],
                  "narrow": rule_to_data(s.narrow) if s.narrow is not None else None}
    return {k: everything[k] for k in _STAGE_KEYS[s.kind] if everything[k] is not None}


def _overrides(data: Any, at: str, base: dict[str, Any], space: Space) -> dict[str, Any]:
    _mapping(data, at, "a mapping of TrainConfig keys (data_fraction, epochs, width, classes, ...)")
    for key in data:
        if key in space:
            raise PlanError(f"{at}.{key}: {key!r} is searched in the space; remove it from the overrides "
                            "or from the space")
    _config({**base, **data}, at)
    return dict(data)


def _config(data: Any, at: str) -> TrainConfig:
    try:
        return TrainConfig.from_dict(data, where=at)
    except ConfigError as e:
        raise PlanError(str(e)) from None


def _mapping(data: Any, at: str, expected: str) -> None:
    if not isinstance(data, dict):
        raise PlanError(f"{at}: expected {expected}, got {type(data).__name__}")


def _known_keys(data: dict[str, Any], keys: tuple[str, ...], at: str) -> None:
    for key in data:
        if key not in keys:
            raise PlanError(f"{at}: unknown key {key!r}; valid keys are {', '.join(keys)}")


def _safe_name(value: Any, at: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise PlanError(f"{at}: {value!r} is not a safe name; use letters, digits, '_' and '-' only")
    return value


def _integer(value: Any, at: str, *, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise PlanError(f"{at}: must be an integer {bound}, got {value!r}")
    return value


def _number(value: Any, at: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
        raise PlanError(f"{at}: must be a number >= 0, got {value!r}")
    return float(value)

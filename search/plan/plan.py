"""The plan file: base config, search space and stages of a campaign, validated up front."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpsearch.objectives.errors import ObjectiveError
from hpsearch.objectives.objective import DIRECTIONS, OBJECTIVES, VAL_ACC, Metric, Objective, get_objective
from hpsearch.objectives.params import TRAIN_CONFIG, OpenSchema, ParamSchema
from hpsearch.objectives.textfile import MAX_TEXT_BYTES, read_small_text
from hpsearch.objectives.yamlfile import BoundedLoader
from hpsearch.search.plan.space import PlanError, Space, parse_space, space_to_data
from hpsearch.search.plan.stage_parse import parse_stage
from hpsearch.search.plan.stages import COMPARE_ON, MAX_STAGE_TRIALS, STAGE_KINDS, Stage, StageKind, stage_to_data
from hpsearch.search.plan.validate import integer, known_keys, mapping, safe_name, train_config

# The stage types live in `stages` (read by `stage_parse`); a plan's users find them here too.
__all__ = ["COMPARE_ON", "MAX_STAGE_TRIALS", "STAGE_KINDS", "Plan", "PlanError", "Stage", "StageKind", "load_plan_file",
           "plan_fingerprint"]

MAX_PLAN_BYTES = MAX_TEXT_BYTES  # a plan is a page of YAML; refuse /dev/zero or a wrong file at once
_OBJECTIVE_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_PLAN_KEYS = ("name", "objective", "seed", "metric", "fail_fast", "base", "space", "stages")


@dataclass(frozen=True)
class Plan:
    """A campaign: the objective, its metric, the base config, the base space and the stages in order.

    `base` is the objective's config for the built-in objectives (a TrainConfig with every key), else the mapping
    the plan gives; `schema` says what the objective's parameters are, `objective_fn` is the objective itself
    (None when a stored plan's module cannot be imported here: a command that only reads the campaign still works).
    """

    name: str
    objective: str
    base: Any
    space: Space
    stages: tuple[Stage, ...]
    seed: int = 0
    metric: Metric = VAL_ACC
    fail_fast: int | None = None  # a stage whose first N trials all fail stops the campaign (None: max(3, 10%))
    schema: ParamSchema = field(default=TRAIN_CONFIG, compare=False, repr=False)
    objective_fn: Objective | None = field(default=None, compare=False, repr=False)
    metric_given: bool = field(default=False, compare=False, repr=False)

    def stage(self, name: str) -> Stage:
        """The stage called `name`."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def cost_unit(self) -> str:
        """What the objective's trials' work is counted in (epoch-equivalents for the built-in objectives)."""
        if self.objective_fn is not None:
            return self.objective_fn.unit
        return "epoch-equivalents" if self.objective in OBJECTIVES else "steps"

    @property
    def base_params(self) -> dict[str, Any]:
        """The base config as a plain mapping."""
        return self.schema.dump(self.base) if not isinstance(self.base, dict) else dict(self.base)

    def config_for(self, stage: Stage, params: Mapping[str, Any], where: str | None = None) -> Any:
        """The config of one trial: base, then the stage's fidelity, then `params` (sampled, per slot)."""
        return self.schema.build({**self.base_params, **stage.overrides, **params}, where or f"stage {stage.name}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON in the plan-file form; `from_dict` reads it back to an equal Plan."""
        out = {"name": self.name, "objective": self.objective, "seed": self.seed, "base": self.base_params,
               "space": space_to_data(self.space), "stages": [stage_to_data(s) for s in self.stages]}
        if self.metric_given:
            out["metric"] = {"name": self.metric.name, "direction": self.metric.direction}
        if self.fail_fast is not None:
            out["fail_fast"] = self.fail_fast
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan", *, search_path: tuple[str | Path, ...] = (),
                  stored: bool = False) -> Plan:
        """Validate a plan mapping; any problem raises a one-line PlanError naming the key path.

        The objective is imported to check the plan against its parameters (its module looked for in
        `search_path`, then the working directory); for a `stored` plan, one `init` already checked, an objective
        that cannot be imported here leaves the parameters unchecked instead of failing."""
        mapping(data, where, "a plan mapping with name, objective, base, space and stages")
        known_keys(data, _PLAN_KEYS, where)
        raw = data.get("stages")
        # A plan of comparisons only searches nothing: it needs no space.
        compare_only = isinstance(raw, list) and bool(raw) and all(
            isinstance(s, dict) and s.get("kind") == "compare" for s in raw)
        for key in ("name", "objective", "space", "stages"):
            if key not in data and not (key == "space" and compare_only):
                raise PlanError(f"{where}: missing {key!r}; a plan needs name, objective, space and stages")
        name = safe_name(data["name"], f"{where}: name")
        spec = data["objective"]
        if spec not in OBJECTIVES and not (isinstance(spec, str) and _OBJECTIVE_REF.fullmatch(spec)):
            raise PlanError(f"{where}: objective: {spec!r} is neither one of {list(OBJECTIVES)} "
                            "nor a 'module:function' reference; use one of those forms")
        objective = _objective(spec, search_path, stored)
        schema = objective.schema if objective is not None else (TRAIN_CONFIG if spec in OBJECTIVES else OpenSchema())
        metric, given = _metric(data.get("metric"), f"{where}: metric", objective, stored)
        seed = integer(data.get("seed", 0), f"{where}: seed", low=0, high=MAX_SEED)
        fail_fast = (integer(data["fail_fast"], f"{where}: fail_fast", low=0, high=MAX_STAGE_TRIALS)
                     if data.get("fail_fast") is not None else None)
        base = train_config(data.get("base") or {}, f"{where}: base", schema)
        base_params = schema.dump(base) if not isinstance(base, dict) else base
        space = (parse_space(data["space"], f"{where}: space", schema) if data.get("space") or not compare_only
                 else Space(()))
        if not isinstance(raw, list) or not raw:
            raise PlanError(f"{where}: stages: expected a non-empty list of stages, got {raw!r}")
        stages: list[Stage] = []
        for i, item in enumerate(raw):
            only_compare_after = all(isinstance(r, dict) and r.get("kind") == "compare" for r in raw[i + 1:])
            stage = parse_stage(item, f"{where}: stages[{i}]", base_params, space, stages,
                                last=only_compare_after, schema=schema)
            if any(s.name == stage.name for s in stages):
                raise PlanError(f"{where}: stages[{i}].name: {stage.name!r} is used twice; "
                                "give every stage its own name")
            stages.append(stage)
        if not any(s.kind in (StageKind.SEARCH, StageKind.COMPARE) for s in stages):
            raise PlanError(f"{where}: stages: no search stage; add one with kind: search and n_trials "
                            "(or a compare stage)")
        return cls(name, spec, base, space, tuple(stages), seed, metric, fail_fast, schema, objective, given)


MAX_SEED = 2**32 - 1  # what numpy and torch seed with


def _objective(spec: str, search_path: tuple[str | Path, ...], stored: bool) -> Objective | None:
    try:
        return get_objective(spec, search_path)
    except ObjectiveError as e:
        if stored:  # checked at init; this machine only reads the campaign
            return None
        raise PlanError(str(e)) from None


def _metric(data: Any, at: str, objective: Objective | None, stored: bool) -> tuple[Metric, bool]:
    """The plan's metric, or the objective's default; (metric, whether the plan gave one)."""
    if data is None:
        default = objective.default_metric if objective is not None else None
        if default is None and not stored:
            raise PlanError(f"{at}: missing; a simple objective returns one number, so say what it is and which "
                            "way is better, e.g. metric: {name: loss, direction: minimize}")
        return default or Metric("value", "maximize"), False
    mapping(data, at, "a mapping like {name: val_loss, direction: minimize}")
    known_keys(data, ("name", "direction"), at)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PlanError(f"{at}.name: must be the metric's name, e.g. val_loss, got {name!r}")
    direction = data.get("direction")
    if direction not in DIRECTIONS:
        raise PlanError(f"{at}.direction: must be maximize or minimize, got {direction!r}")
    return Metric(name, direction), True


def load_plan_file(path: str | Path) -> Plan:
    """Read and validate a plan YAML file; a `module:function` objective is looked for beside it first."""
    where = str(path)
    text = read_small_text(path, "plan file", PlanError, MAX_PLAN_BYTES)
    try:
        data = yaml.load(text, Loader=_PlanLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise PlanError(f"{where}: invalid YAML{at}: {problem}; fix the syntax") from None
    keys = set(data) if isinstance(data, dict) else set()
    if not keys & {"stages", "space", "base"} and keys & {"config", "lr", "epochs"}:  # a config, not a broken plan
        raise PlanError(f"{where} is a training config, not a plan (a plan has name, space and stages): train it "
                        f"with 'hpsearch train --config {where}'")
    return Plan.from_dict(data, where, search_path=(Path(path).resolve().parent,))


def plan_fingerprint(plan: Plan) -> str:
    """sha256 of the plan's canonical JSON: equal for equal plans, whatever the file's layout."""
    text = json.dumps(plan.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def first_difference(stored: dict[str, Any], given: dict[str, Any]) -> str | None:
    """Where two plans in `to_dict` form first differ, as 'key.path: A stored, B in this plan'; None if equal."""
    return _difference(json.loads(json.dumps(stored)), json.loads(json.dumps(given)), "")  # tuples as lists


def _difference(stored: Any, given: Any, at: str) -> str | None:
    if isinstance(stored, dict) and isinstance(given, dict):
        for key in sorted(set(stored) | set(given), key=str):
            if key not in stored or key not in given:
                return (f"{at}{key}: {'absent' if key not in stored else 'set'} in the stored plan, "
                        f"{'absent' if key not in given else 'set'} in this one")
            found = _difference(stored[key], given[key], f"{at}{key}.")
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(given, list):
        if len(stored) != len(given):
            return f"{at.rstrip('.')}: {len(stored)} entries stored, {len(given)} in this plan"
        for i, (a, b) in enumerate(zip(stored, given, strict=True)):
            found = _difference(a, b, f"{at.rstrip('.')}[{i}].")
            if found:
                return found
        return None
    if stored == given:
        return None
    return f"{at.rstrip('.')}: {_short(stored)} stored, {_short(given)} in this plan"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _PlanLoader(BoundedLoader):
    """A bounded SafeLoader that reads 1e-3 as a float (YAML 1.1 wants 1.0e-3) and refuses duplicate keys."""

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

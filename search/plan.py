"""The plan file: base config, search space and stages of a campaign, validated up front."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.objective import OBJECTIVES
from hpsearch.objectives.textfile import MAX_TEXT_BYTES, read_small_text
from hpsearch.objectives.yamlfile import BoundedLoader
from hpsearch.search.space import PlanError, Space, parse_space, space_to_data
from hpsearch.search.stages import (
    COMPARE_ON,
    MAX_STAGE_TRIALS,
    STAGE_KINDS,
    Stage,
    StageKind,
    parse_stage,
    stage_to_data,
)
from hpsearch.search.validate import integer, known_keys, mapping, safe_name, train_config

# The stage types live in `stages`; a plan's users find them here too.
__all__ = ["COMPARE_ON", "MAX_STAGE_TRIALS", "STAGE_KINDS", "Plan", "PlanError", "Stage", "StageKind", "load_plan",
           "plan_fingerprint"]

MAX_PLAN_BYTES = MAX_TEXT_BYTES  # a plan is a page of YAML; refuse /dev/zero or a wrong file at once
_OBJECTIVE_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_PLAN_KEYS = ("name", "objective", "seed", "base", "space", "stages")


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
                "space": space_to_data(self.space), "stages": [stage_to_data(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan") -> Plan:
        """Validate a plan mapping; any problem raises a one-line PlanError naming the key path."""
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
        objective = data["objective"]
        if objective not in OBJECTIVES and not (
            isinstance(objective, str) and _OBJECTIVE_REF.fullmatch(objective)
        ):
            raise PlanError(f"{where}: objective: {objective!r} is neither one of {list(OBJECTIVES)} "
                            "nor a 'module:function' reference; use one of those forms")
        seed = integer(data.get("seed", 0), f"{where}: seed", low=0, high=2**32 - 1)  # what numpy and torch seed with
        base = train_config(data.get("base") or {}, f"{where}: base")
        space = parse_space(data["space"], f"{where}: space") if data.get("space") or not compare_only else Space(())
        if not isinstance(raw, list) or not raw:
            raise PlanError(f"{where}: stages: expected a non-empty list of stages, got {raw!r}")
        stages: list[Stage] = []
        for i, item in enumerate(raw):
            only_compare_after = all(isinstance(r, dict) and r.get("kind") == "compare" for r in raw[i + 1:])
            stage = parse_stage(item, f"{where}: stages[{i}]", base.to_dict(), space, stages,
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

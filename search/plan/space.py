"""The search space as data: named Optuna distributions, each maybe conditional on categorical parents."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import BaseTrial

from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.params import TRAIN_CONFIG, ParamSchema
from hpsearch.search.errors import PlanError

Distribution = FloatDistribution | IntDistribution | CategoricalDistribution

# Float steps are left out on purpose: narrowing would have to keep bounds on a float grid,
# and every discrete float knob we have reads better as a categorical.
_KEYS = {
    "float": ("type", "low", "high", "log", "condition"),
    "int": ("type", "low", "high", "step", "log", "condition"),
    "categorical": ("type", "choices", "condition"),
}
SPACE_JSON_VERSION = 1


@dataclass(frozen=True)
class Param:
    """One searched parameter of the objective: its distribution and when it is active."""

    name: str
    distribution: Distribution
    # parent name -> allowed parent values; active only when every parent is active and matches
    condition: dict[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Space:
    """Params in dependency order: every condition's parent comes before its children."""

    params: tuple[Param, ...]

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def with_distribution(self, name: str, distribution: Distribution) -> Space:
        """A copy with one param's distribution replaced, its condition kept."""
        return Space(tuple(dataclasses.replace(p, distribution=distribution) if p.name == name else p
                           for p in self.params))


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1, so bool and int choices never alias."""
    return type(a) is type(b) and a == b


def is_active(param: Param, params: Mapping[str, Any]) -> bool:
    """Whether `param` is sampled given the (already sampled) values of its parents."""
    return all(parent in params and any(same_value(params[parent], v) for v in allowed)
               for parent, allowed in param.condition.items())


def active_params(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `params` that the space would sample, in the space's order."""
    out: dict[str, Any] = {}
    for p in space.params:
        if p.name in params and is_active(p, out):
            out[p.name] = params[p.name]
    return out


def sample_params(trial: BaseTrial, space: Space) -> dict[str, Any]:
    """Suggest every active param through `trial.suggest_*`, parents first; returns the sampled values."""
    out: dict[str, Any] = {}
    for p in space.params:
        if not is_active(p, out):
            continue
        d = p.distribution
        if isinstance(d, CategoricalDistribution):
            out[p.name] = trial.suggest_categorical(p.name, d.choices)
        elif isinstance(d, IntDistribution):
            out[p.name] = trial.suggest_int(p.name, d.low, d.high, step=d.step, log=d.log)
        else:
            out[p.name] = trial.suggest_float(p.name, d.low, d.high, log=d.log)
    return out


def parse_space(data: Any, where: str = "space", schema: ParamSchema = TRAIN_CONFIG) -> Space:
    """Build a Space from its plan-file form (name -> {type, low, high, log, step, choices, condition}), each
    name a parameter of the objective (`schema`; a TrainConfig key for the built-in objectives)."""
    if not isinstance(data, dict) or not data:
        raise PlanError(f"{where}: expected a non-empty mapping of {schema.name} keys to "
                        f"{{type: float|int|categorical, ...}}, got {data!r}")
    params = [_parse_param(str(name), spec, f"{where}.{name}", schema) for name, spec in data.items()]
    by_name = {p.name: p for p in params}
    for p in params:
        for parent, allowed in p.condition.items():
            at = f"{where}.{p.name}.condition.{parent}"
            if parent == p.name:
                raise PlanError(f"{at}: a param cannot depend on itself; remove this condition")
            if parent not in by_name:
                raise PlanError(f"{at}: {parent!r} is not a param of this space; "
                                f"condition on one of {sorted(by_name)}")
            parent_d = by_name[parent].distribution
            if not isinstance(parent_d, CategoricalDistribution):
                raise PlanError(f"{at}: {parent!r} is not categorical; conditions may only name "
                                "categorical params")
            for v in allowed:
                if not any(same_value(v, c) for c in parent_d.choices):
                    raise PlanError(f"{at}: {v!r} is not among {parent!r}'s choices "
                                    f"{list(parent_d.choices)}; use one of them")
    return Space(_dependency_order(params, where))


def _parse_param(name: str, spec: Any, where: str, schema: ParamSchema) -> Param:
    hint = schema.field_type(name)
    if hint is None:
        raise PlanError(f"{where}: {name!r} is not a {schema.name} key; searchable keys are "
                        f"{', '.join(sorted(schema.keys() or ()))}")
    if not isinstance(spec, dict):
        raise PlanError(f"{where}: expected a mapping like {{type: float, low: 0.1, high: 1.0}}, "
                        f"got {spec!r}")
    kind = spec.get("type")
    if kind not in _KEYS:
        raise PlanError(f"{where}.type: unknown type {kind!r}; choose from {sorted(_KEYS)}")
    unknown = sorted(set(spec) - set(_KEYS[kind]))
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]!r} for type {kind}; valid keys are "
                        f"{', '.join(_KEYS[kind])}")
    _check_field_type(name, hint, kind, where)
    if kind == "categorical":
        dist: Distribution = _categorical(spec.get("choices"), where)
        values = list(dist.choices)
    else:
        dist = _numeric(kind, spec, where)
        values = [dist.low, dist.high]
    for v in values:
        try:
            schema.check_value(name, v, where)
        except ConfigError as e:
            raise PlanError(f"{e}; keep the space inside the valid values") from None
    return Param(name, dist, _condition(spec.get("condition"), f"{where}.condition"))


def _check_field_type(name: str, hint: Any, kind: str, where: str) -> None:
    if hint is Any:  # a simple objective's params: any type
        return
    if type(None) in typing.get_args(hint):  # `float | None` (e.g. warmup_fraction): None is "not set"
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if kind == "float" and hint is not float:
        raise PlanError(f"{where}.type: {name} is not a float field; use type: int or categorical")
    if kind == "int" and hint not in (int, float):
        raise PlanError(f"{where}.type: {name} is not numeric; use type: categorical")


def _number(value: Any, where: str, *, integer: bool) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or (not integer and not math.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        hint = " (write floats like 1.0e-3: plain YAML reads 1e-3 as text)" if isinstance(value, str) else ""
        raise PlanError(f"{where}: must be {kind}, got {value!r}{hint}")
    return value if integer else float(value)


def _numeric(kind: str, spec: dict, where: str) -> Distribution:
    for key in ("low", "high"):
        if key not in spec:
            raise PlanError(f"{where}: missing {key!r}; a {kind} param needs low and high")
    integer = kind == "int"
    low = _number(spec["low"], f"{where}.low", integer=integer)
    high = _number(spec["high"], f"{where}.high", integer=integer)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise PlanError(f"{where}.log: must be true or false, got {log!r}")
    if low > high:
        raise PlanError(f"{where}: low {low} > high {high}; swap them")
    if log and low <= 0:
        raise PlanError(f"{where}.low: log scale needs low > 0, got {low}; raise low or set log: false")
    if not integer:
        return FloatDistribution(low, high, log=log)
    step = _number(spec.get("step", 1), f"{where}.step", integer=True)
    if step < 1:
        raise PlanError(f"{where}.step: must be >= 1, got {step}")
    if log and step != 1:
        raise PlanError(f"{where}.step: Optuna allows no step with log: true; drop step or log")
    if (high - low) % step:
        raise PlanError(f"{where}.high: high - low must be a multiple of step {step}; "
                        f"use high: {low + (high - low) // step * step}")
    return IntDistribution(low, high, log=log, step=step)


def _categorical(choices: Any, where: str) -> CategoricalDistribution:
    if not isinstance(choices, list) or not choices:
        raise PlanError(f"{where}.choices: must be a non-empty list, got {choices!r}; "
                        "list at least one value")
    for i, c in enumerate(choices):
        if c is not None and not isinstance(c, (bool, int, float, str)):
            raise PlanError(f"{where}.choices[{i}]: {c!r} is not a scalar; use strings, numbers or booleans")
        if any(same_value(c, d) for d in choices[:i]):
            raise PlanError(f"{where}.choices[{i}]: {c!r} is listed twice; remove the duplicate")
    return CategoricalDistribution(choices)


def _condition(data: Any, where: str) -> dict[str, tuple[Any, ...]]:
    if data is None:
        return {}
    if not isinstance(data, dict) or not data:
        raise PlanError(f"{where}: expected a mapping like {{scheduler: [plateau]}}, got {data!r}")
    out = {}
    for parent, allowed in data.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values:
            raise PlanError(f"{where}.{parent}: empty list; name at least one value of {parent!r}")
        out[str(parent)] = tuple(values)
    return out


def _dependency_order(params: list[Param], where: str) -> tuple[Param, ...]:
    """Each param right after its parents, otherwise in the order given, so sampling order is stable."""
    by_name = {p.name: p for p in params}
    placed: dict[str, Param] = {}

    def place(p: Param, path: tuple[str, ...]) -> None:
        if p.name in placed:
            return
        if p.name in path:
            cycle = " -> ".join((*path[path.index(p.name):], p.name))
            raise PlanError(f"{where}: conditions form a cycle {cycle}; remove one of those conditions")
        for parent in p.condition:
            place(by_name[parent], (*path, p.name))
        placed[p.name] = p

    for p in params:
        place(p, ())
    return tuple(placed.values())


def space_to_data(space: Space) -> dict[str, dict[str, Any]]:
    """The plan-file form of a space, which `parse_space` reads back."""
    out: dict[str, dict[str, Any]] = {}
    for p in space.params:
        d = p.distribution
        if isinstance(d, CategoricalDistribution):
            spec: dict[str, Any] = {"type": "categorical", "choices": list(d.choices)}
        else:
            kind = "int" if isinstance(d, IntDistribution) else "float"
            spec = {"type": kind, "low": d.low, "high": d.high}
            if d.log:
                spec["log"] = True
            if isinstance(d, IntDistribution) and d.step != 1:
                spec["step"] = d.step
        if p.condition:
            spec["condition"] = {k: list(v) for k, v in p.condition.items()}
        out[p.name] = spec
    return out


def space_to_json(space: Space) -> dict[str, Any]:
    """Plain JSON; each distribution is Optuna's own `distribution_to_json` object, readable by any client."""
    return {
        "version": SPACE_JSON_VERSION,
        "params": [
            {"name": p.name, "distribution": json.loads(distribution_to_json(p.distribution)),
             "condition": {k: list(v) for k, v in p.condition.items()}}
            for p in space.params
        ],
    }


def space_from_json(data: Mapping[str, Any]) -> Space:
    """Inverse of `space_to_json` (input written by us: trusted, not re-validated)."""
    if data.get("version") != SPACE_JSON_VERSION:
        raise PlanError(f"stored space has version {data.get('version')!r}, this hpsearch reads "
                        f"{SPACE_JSON_VERSION}; use the hpsearch version that created the campaign")
    params = [
        Param(e["name"], typing.cast(Distribution, json_to_distribution(json.dumps(e["distribution"]))),
              {k: tuple(v) for k, v in e["condition"].items()})
        for e in data["params"]
    ]
    return Space(_dependency_order(params, "stored space"))

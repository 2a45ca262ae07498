"""Checks the plan's parsers share: each raises a one-line PlanError naming the key path and the fix."""

from __future__ import annotations

import re
from typing import Any

from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.params import TRAIN_CONFIG, ParamSchema
from hpsearch.search.plan.space import PlanError

_NAME = re.compile(r"[A-Za-z0-9_-]+")  # safe inside the study name "<campaign>.<stage>"
# Optuna keeps a study name in 512 characters: "<campaign>.<stage>" of two names at most this long fits.
MAX_NAME = 100


def train_config(data: Any, at: str, schema: ParamSchema = TRAIN_CONFIG) -> Any:
    """`data` checked as (part of) the objective's config: a whole TrainConfig for the built-in objectives, the
    names and values given for others; its problems as PlanErrors."""
    if data is None:
        data = {}
    mapping(data, at, f"a mapping of {schema.name} keys")
    try:
        return schema.check_part(data, at)
    except ConfigError as e:
        raise PlanError(str(e)) from None


def mapping(data: Any, at: str, expected: str) -> None:
    """`data` is a mapping, or PlanError saying what was `expected`."""
    if not isinstance(data, dict):
        raise PlanError(f"{at}: expected {expected}, got {type(data).__name__}")


def known_keys(data: dict[str, Any], keys: tuple[str, ...], at: str) -> None:
    """Every key of `data` is one of `keys`."""
    for key in data:
        if key not in keys:
            raise PlanError(f"{at}: unknown key {key!r}; valid keys are {', '.join(keys)}")


def safe_name(value: Any, at: str) -> str:
    """A name that is safe in a study name."""
    if isinstance(value, str) and len(value) > MAX_NAME:
        raise PlanError(f"{at}: {value[:20]!r}... is {len(value):,} characters long; use at most {MAX_NAME}")
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise PlanError(f"{at}: {value!r} is not a safe name; use letters, digits, '_' and '-' only")
    return value


def integer(value: Any, at: str, *, low: int, high: int | None = None) -> int:
    """An int (not a bool) in [low, high]."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise PlanError(f"{at}: must be an integer {bound}, got {value!r}")
    return value


def number(value: Any, at: str) -> float:
    """A finite number >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
        raise PlanError(f"{at}: must be a number >= 0, got {value!r}")
    return float(value)

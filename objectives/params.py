"""What an objective's parameters are: the config type it declares, or any names for a simple objective.

A `ParamSchema` turns the plain mapping a plan builds for one trial (base, then the stage's overrides, then the
sampled values) into what the objective takes, and back into plain JSON for the storage and the exports:

- `DataclassSchema(TrainConfig)`: the built-in objectives; `TrainConfig.from_dict` checks every value;
- `DataclassSchema(MyConfig)`: a full objective's own frozen dataclass; unknown keys and wrong types are refused;
- `OpenSchema()`: a simple objective's `params` dict, any names, any JSON values.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from hpsearch.objectives.config import TrainConfig, coerce_field, type_hints
from hpsearch.objectives.errors import ConfigError


class ParamSchema:
    """The parameters an objective takes; subclasses say which names exist and how values are checked."""

    name = "params"

    def build(self, data: Mapping[str, Any], where: str) -> Any:
        """The objective's config from a plain mapping; ConfigError names the key and the fix."""
        raise NotImplementedError

    def dump(self, config: Any) -> dict[str, Any]:
        """The config as plain JSON-able values (tuples as lists)."""
        raise NotImplementedError

    def field_type(self, key: str) -> Any | None:
        """The declared type of `key` (`typing.Any` when undeclared), or None when `key` is not a parameter."""
        raise NotImplementedError

    def keys(self) -> tuple[str, ...] | None:
        """Every parameter name, or None when any name is taken."""
        return None

    def check_value(self, key: str, value: Any, where: str) -> None:
        """Refuse a value `key` can never take (a space's bound, say); ConfigError."""

    def check_part(self, data: Mapping[str, Any], where: str) -> Any:
        """Check part of a config (a plan's base, a stage's overrides): the names and their values, without
        asking for the fields the space samples; returns the base as a plan keeps it."""
        return self.build(data, where)


class DataclassSchema(ParamSchema):
    """A frozen dataclass of typed fields: `TrainConfig`, or a full objective's own config type."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__
        self._fields = {f.name: f for f in dataclasses.fields(cls)}

    def build(self, data: Mapping[str, Any], where: str) -> Any:
        if self.cls is TrainConfig:
            return TrainConfig.from_dict(dict(data), where=where)
        return config_from_dict(self.cls, data, where)

    def dump(self, config: Any) -> dict[str, Any]:
        if isinstance(config, TrainConfig):
            return config.to_dict()
        return _plain(dataclasses.asdict(config))

    def field_type(self, key: str) -> Any | None:
        return type_hints(self.cls).get(key) if key in self._fields else None

    def keys(self) -> tuple[str, ...]:
        return tuple(self._fields)

    def check_part(self, data: Mapping[str, Any], where: str) -> Any:
        if self.cls is TrainConfig:  # every field has a default: the part is a whole config
            return self.build(data, where)
        unknown = sorted(set(data) - set(self._fields))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid {self.name} keys are "
                              f"{', '.join(sorted(self._fields))}")
        for key, value in data.items():
            self.check_value(key, value, where)
        return dict(data)

    def check_value(self, key: str, value: Any, where: str) -> None:
        if self.cls is TrainConfig:  # TrainConfig checks one value at a time (every field has a default)
            TrainConfig.from_dict({key: value}, where=where)
        else:
            coerce_field(key, value, type_hints(self.cls)[key], where)


class OpenSchema(ParamSchema):
    """A simple objective's `params`: a dict of any names with JSON values (numbers, strings, booleans, lists)."""

    def build(self, data: Mapping[str, Any], where: str) -> dict[str, Any]:
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: parameter names must be strings, got {key!r}")
            _json_value(key, value, where)
        return dict(data)

    def dump(self, config: Any) -> dict[str, Any]:
        return _plain(dict(config))

    def field_type(self, key: str) -> Any:
        return Any


def config_from_dict(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """An instance of dataclass `cls` from a plain mapping: unknown keys, wrong types and missing fields refused."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} keys, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid {cls.__name__} keys are "
                          f"{', '.join(sorted(fields))}")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing {missing[0]!r}, a {cls.__name__} field without a default; set it in "
                          "the plan's base")
    hints = type_hints(cls)
    values = {k: coerce_field(k, v, hints[k], where) for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:  # the dataclass's own checks (__post_init__)
        raise ConfigError(f"{where}: {cls.__name__} refused these values: {e}") from None


def _json_value(key: str, value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, string, boolean, list or mapping, got "
                          f"{type(value).__name__}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


TRAIN_CONFIG = DataclassSchema(TrainConfig)

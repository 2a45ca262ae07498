"""The versions hpsearch declares, pins in its image, and runs its tests with, agree."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, Requirement]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {Requirement(d).name.lower(): Requirement(d) for d in deps}


def _pinned() -> dict[str, str]:
    lines = (ROOT / "docker" / "constraints.txt").read_text().splitlines()
    return {n.lower(): v for n, _, v in (line.partition("==") for line in lines if line and not line.startswith("#"))}


def test_optuna_is_bounded_above_by_the_next_minor_version() -> None:
    for name in ("optuna", "optuna-dashboard"):
        spec = str(_declared()[name].specifier)
        assert "<" in spec and ">=" in spec, f"{name}{spec}: bound it above by the next untested minor version"


def test_the_image_pins_satisfy_the_declared_ranges_and_are_what_the_tests_run() -> None:
    declared, pinned = _declared(), _pinned()
    for name, version in pinned.items():
        if name in declared:
            assert declared[name].specifier.contains(version), f"{name}=={version} is outside {declared[name]}"
    for name in ("optuna", "optuna-dashboard"):  # what reads Optuna's internals is tested with the pinned minor
        minor = importlib.metadata.version(name).split(".")[:2]
        assert minor == pinned[name].split(".")[:2], f"refresh docker/constraints.txt for {name}"

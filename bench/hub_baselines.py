"""A multi-fidelity baseline from Optuna's ecosystem: DEHB (Awad, Mallik and Hutter, IJCAI 2021),
OptunaHub's `samplers/dehb` package, a sampler and a pruner that work as a pair (differential evolution over
Hyperband's brackets; the sampler reads the brackets from the study's pruner).

`register_dehb` loads the package with optunahub and registers `dehb` as a sampler name and a pruner name of the
plan language, so a single-stage baseline plan can name them like any other. optunahub fetches packages from
GitHub (`optunahub.load_module`); offline, give it a local copy of the registry with `--hub-registry DIR` (a
checkout of github.com/optuna/optunahub-registry: DIR is its `package` folder), which it reads with
`optunahub.load_local_module`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import optuna

from hpsearch.search.plan.samplers import PRUNERS, SAMPLERS, register_pruner, register_sampler
from hpsearch.storage.optuna_internals import prepare_brackets

NAME = "DEHB"
PACKAGE = "samplers/dehb"
# Hyperband's brackets as the TPE + Hyperband baseline has them: the first rung at epoch 2, a third survives each.
SPEC: tuple[Any, Any] = ({"name": "dehb"}, {"name": "dehb", "min_resource": 2, "reduction_factor": 3})


class HubUnavailable(RuntimeError):
    """The package could not be loaded: optunahub missing, no network and no local registry, or a bad folder."""


def load_dehb(registry: Path | None = None) -> Any:
    """The `samplers/dehb` module, from `registry` (a registry's `package` folder) or from GitHub."""
    try:
        import optunahub
    except ImportError:
        raise HubUnavailable("optunahub is not installed (pip install optunahub)") from None
    try:
        if registry is not None:
            if not (registry / PACKAGE / "__init__.py").is_file():
                raise HubUnavailable(f"{registry} has no {PACKAGE}/__init__.py; give the registry's package folder")
            return optunahub.load_local_module(PACKAGE, registry_root=str(registry))
        return optunahub.load_module(PACKAGE)
    except HubUnavailable:
        raise
    except Exception as e:  # network errors, rate limits, a package that does not import
        raise HubUnavailable(f"optunahub could not load {PACKAGE}: {type(e).__name__}: {e}; "
                             "offline, pass --hub-registry with a local copy of the registry") from None


def register_dehb(registry: Path | None = None) -> None:
    """Register `dehb` as a sampler and a pruner name (once per process); raises HubUnavailable."""
    if "dehb" in SAMPLERS and "dehb" in PRUNERS:
        return
    module = load_dehb(registry)

    class Sampler(module.DEHBSampler):  # type: ignore[misc, name-defined]
        """DEHB's sampler with the study's pruner set up first: a worker builds its pruner per stage, and the
        package expects the pruner to have pruned a trial in this process before the sampler asks it. The
        package also places a trial in its iteration by its number, assuming trials are numbered in the order
        they are sampled; a stage's slots are numbered when they are queued, so a slot of the first iteration
        can be sampled after that iteration ended, which the package refuses (an assertion): such a trial
        samples at random, as the whole first iteration does."""

        def sample_relative(self, study: optuna.Study, trial: Any, search_space: Any) -> dict[str, Any]:
            prepare_brackets(study.pruner, study)
            try:
                return super().sample_relative(study, trial, search_space)
            except AssertionError:
                return {}

    @register_sampler("dehb")
    def _sampler(seed: int | None, *, scaling_factor: float = 0.5, crossover_prob: float = 0.5) -> Any:
        return Sampler(scaling_factor=scaling_factor, crossover_prob=crossover_prob, seed=seed)

    @register_pruner("dehb")
    def _pruner(*, min_resource: int = 1, max_resource: int | Literal["auto"] = "auto",
                reduction_factor: int = 3) -> Any:
        return module.DEHBPruner(min_resource=min_resource, max_resource=max_resource,
                                 reduction_factor=reduction_factor)


def usable_baselines(names: list[str], known: Mapping[str, Any], registry: Path | None) -> list[str]:
    """`names` less the ones that cannot run here (DEHB without optunahub or its package), each said on stderr
    in one line; a name not in `known` exits 2 with a one-line error."""
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"error: unknown baseline {unknown[0]!r}; choose from {', '.join(known)}", file=sys.stderr)
        raise SystemExit(2)
    if NAME in names:
        try:
            register_dehb(registry)
        except HubUnavailable as e:
            print(f"{NAME} not run: {e}", file=sys.stderr, flush=True)
            return [n for n in names if n != NAME]
    return names


def add_hub_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub-registry", type=Path, default=None,
                        help="a local copy of OptunaHub's registry (its package folder), for DEHB offline")

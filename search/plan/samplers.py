"""Sampler and pruner registries: a plan names one (`tpe`, or `{name: tpe, n_startup_trials: 8}`)."""

from __future__ import annotations

import importlib.util
import inspect
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from hpsearch.objectives.registry import registrar
from hpsearch.search.plan.space import PlanError


@dataclass(frozen=True)
class Spec:
    """A sampler or pruner as a plan names it, checked once against its registry: the name and its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The plan-file form: `{name: ..., option: value, ...}`."""
        return {"name": self.name, **self.options}


SamplerFactory = Callable[..., BaseSampler]  # (seed, **options)
PrunerFactory = Callable[..., BasePruner]  # (**options)
SAMPLERS: dict[str, SamplerFactory] = {}
PRUNERS: dict[str, PrunerFactory] = {}
# Optuna runs these on scipy (QMC engines, GP fitting), which is imported only when sampling starts.
_NEEDS_SCIPY = frozenset({"qmc", "gp"})
# A scrambled Sobol sequence is one sequence only if every worker scrambles it with the same seed.
_SHARED_SEED = frozenset({"qmc"})


register_sampler = registrar(SAMPLERS, "sampler")  # factories `(seed, *, options...)`
register_pruner = registrar(PRUNERS, "pruner")  # factories `(*, options...)`


@register_sampler("random")
def _random(seed: int | None) -> BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@register_sampler("qmc")
def _qmc(
    seed: int | None, *, qmc_type: Literal["sobol", "halton"] = "sobol", scramble: bool = True
) -> BaseSampler:
    # Conditional params fall back to random sampling by design; the per-trial warning is noise.
    return optuna.samplers.QMCSampler(qmc_type=qmc_type, scramble=scramble, seed=seed,
                                      warn_independent_sampling=False)


@register_sampler("tpe")
def _tpe(
    seed: int | None,
    *,
    n_startup_trials: int = 10,
    n_ei_candidates: int = 24,
    multivariate: bool = True,
    group: bool = True,
    constant_liar: bool = True,
) -> BaseSampler:
    # multivariate models lr x momentum jointly; group keeps that working in a conditional space;
    # constant_liar stops parallel workers from all proposing the same point.
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=n_startup_trials, n_ei_candidates=n_ei_candidates,
        # Optuna refuses group without multivariate; turning multivariate off means both.
        multivariate=multivariate, group=group and multivariate, constant_liar=constant_liar,
    )


@register_sampler("gp")
def _gp(seed: int | None, *, n_startup_trials: int = 10) -> BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)


@register_pruner("none")
def _none() -> BasePruner:
    return optuna.pruners.NopPruner()


@register_pruner("median")
def _median(*, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1,
            n_min_trials: int = 1) -> BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials, n_warmup_steps, interval_steps,
                                       n_min_trials=n_min_trials)


@register_pruner("percentile")
def _percentile(*, percentile: float, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                interval_steps: int = 1, n_min_trials: int = 1) -> BasePruner:
    return optuna.pruners.PercentilePruner(percentile, n_startup_trials, n_warmup_steps, interval_steps,
                                           n_min_trials=n_min_trials)


@register_pruner("successive_halving")
def _successive_halving(*, min_resource: int | Literal["auto"] = "auto", reduction_factor: int = 4,
                        min_early_stopping_rate: int = 0, bootstrap_count: int = 0) -> BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource, reduction_factor, min_early_stopping_rate,
                                                  bootstrap_count)


@register_pruner("hyperband")
def _hyperband(*, min_resource: int = 1, max_resource: int | Literal["auto"] = "auto",
               reduction_factor: int = 3, bootstrap_count: int = 0) -> BasePruner:
    # Optuna checks these only when the first trial is pruned; a plan should fail at load time.
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
    if min_resource < 1 or (max_resource != "auto" and max_resource < min_resource):
        raise ValueError(f"need 1 <= min_resource <= max_resource, got {min_resource} and {max_resource}")
    return optuna.pruners.HyperbandPruner(min_resource, max_resource, reduction_factor, bootstrap_count)


def sampler_spec(value: Any, where: str = "sampler") -> Spec:
    """Parse a sampler spec (a name or {name, options}, or a Spec) and run Optuna's own argument checks."""
    if isinstance(value, Spec):
        return value
    spec = _spec(value, SAMPLERS, "sampler", where)
    _build_sampler(spec, 0, where)
    return _typed(spec)


def pruner_spec(value: Any, where: str = "pruner") -> Spec:
    """Parse a pruner spec; `patient: N` wraps it in Optuna's PatientPruner (N epochs without gain)."""
    if isinstance(value, Spec):
        return value
    spec = dict(value) if isinstance(value, dict) else value
    patient = spec.pop("patient", None) if isinstance(spec, dict) else None
    out = _spec(spec, PRUNERS, "pruner", where)
    if patient is not None:
        if not isinstance(patient, int) or isinstance(patient, bool) or patient < 0:
            raise PlanError(f"{where}.patient: must be an integer >= 0 (epochs without improvement), "
                            f"got {patient!r}")
        out["patient"] = patient
    _build_pruner(out, where)
    return _typed(out)


def make_sampler(spec: Spec | str | dict[str, Any], seed: int | None, where: str = "sampler") -> BaseSampler:
    """Build a sampler; `qmc` wants the same seed on every worker, the others one seed per worker."""
    data = spec.to_data() if isinstance(spec, Spec) else _spec(spec, SAMPLERS, "sampler", where)
    if data["name"] in _NEEDS_SCIPY and importlib.util.find_spec("scipy") is None:
        raise PlanError(f"{where}: sampler {data['name']!r} needs scipy, which is not installed; "
                        "pip install scipy, or use sampler: random (coarse) or tpe (fine)")
    return _build_sampler(data, seed, where)


def make_pruner(spec: Spec | str | dict[str, Any], where: str = "pruner") -> BasePruner:
    """Build a pruner from its spec, wrapped in PatientPruner when the spec has `patient`."""
    return _build_pruner(pruner_spec(spec, where).to_data(), where)


def _typed(data: dict[str, Any]) -> Spec:
    return Spec(data["name"], {k: v for k, v in data.items() if k != "name"})


def _build_sampler(spec: dict[str, Any], seed: int | None, where: str) -> BaseSampler:
    options = {k: v for k, v in spec.items() if k != "name"}
    return _build(lambda: SAMPLERS[spec["name"]](seed, **options), where)


def _build_pruner(spec: dict[str, Any], where: str) -> BasePruner:
    options = {k: v for k, v in spec.items() if k not in ("name", "patient")}
    pruner = _build(lambda: PRUNERS[spec["name"]](**options), where)
    if "patient" not in spec:
        return pruner
    # Wrapping `none` means: prune on patience alone.
    wrapped = None if spec["name"] == "none" else pruner
    return _build(lambda: optuna.pruners.PatientPruner(wrapped, spec["patient"]), where)


def shares_seed(spec: Spec | str | dict[str, Any]) -> bool:
    """Whether all workers of a stage must build this sampler with one seed (else: a seed per worker)."""
    return sampler_spec(spec).name in _SHARED_SEED


def _build(build: Callable[[], Any], where: str) -> Any:
    try:
        with warnings.catch_warnings():
            # QMC and PatientPruner are marked experimental; we chose them knowingly.
            warnings.simplefilter("ignore", ExperimentalWarning)
            return build()
    except ValueError as e:
        message = " ".join(str(e).split()).rstrip(".")
        raise PlanError(f"{where}: {message}; fix the option") from None


def _spec(value: Any, registry: dict[str, Callable[..., Any]], kind: str, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise PlanError(f"{where}: expected a {kind} name or {{name: ..., options}}, got {value!r}; "
                        f"choose from {sorted(registry)}")
    name = value["name"]
    if name not in registry:
        raise PlanError(f"{where}: unknown {kind} {name!r}; choose from {sorted(registry)}")
    factory = registry[name]
    params = {n: p for n, p in inspect.signature(factory).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
    hints = typing.get_type_hints(factory)
    extra = ["patient"] if kind == "pruner" else []
    for key, option in value.items():
        if key == "name":
            continue
        if key not in params:
            valid = ", ".join([*params, *extra]) or "none"
            raise PlanError(f"{where}: unknown option {key!r} for {kind} {name!r}; valid options: {valid}")
        if not _matches(option, hints[key]):
            raise PlanError(f"{where}.{key}: {option!r} is not a valid {key} for {kind} {name!r}; "
                            f"expected {_describe(hints[key])}")
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in value]
    if missing:
        raise PlanError(f"{where}: {kind} {name!r} needs option {missing[0]!r}; add it")
    return dict(value)


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))

"""Sampler and pruner registries: names and options from a plan become configured Optuna objects."""

from __future__ import annotations

import importlib.util

import optuna
import pytest

from hpsearch.search.plan.samplers import (
    PRUNERS,
    SAMPLERS,
    make_pruner,
    make_sampler,
    pruner_spec,
    register_sampler,
    sampler_spec,
    shares_seed,
)
from hpsearch.search.plan.space import PlanError, parse_space, sample_params
from hpsearch.storage import optuna_internals as internals

HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def test_registries_hold_the_documented_names() -> None:
    assert sorted(SAMPLERS) == ["gp", "qmc", "random", "tpe"]
    assert sorted(PRUNERS) == ["hyperband", "median", "none", "percentile", "successive_halving"]


def test_tpe_defaults_suit_parallel_workers_and_options_apply() -> None:
    tpe = make_sampler("tpe", seed=0)
    assert isinstance(tpe, optuna.samplers.TPESampler)
    options = internals.sampler_options(tpe)
    assert (options["constant_liar"], options["multivariate"], options["group"]) == (True, True, True)
    assert internals.sampler_options(make_sampler({"name": "tpe", "n_startup_trials": 8}, seed=0))[
        "n_startup_trials"] == 8
    assert internals.sampler_options(make_sampler({"name": "tpe", "constant_liar": False}, seed=0))[
        "constant_liar"] is False


def test_same_seed_same_samples() -> None:
    def first_params(seed: int) -> list[float]:
        study = optuna.create_study(sampler=make_sampler("random", seed))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        return [t.params["x"] for t in study.trials]

    assert first_params(7) == first_params(7) != first_params(8)


@pytest.mark.parametrize("name", ["qmc", "gp"])
def test_scipy_samplers_build_or_say_what_is_missing(name: str) -> None:
    if HAS_SCIPY:
        assert isinstance(make_sampler(name, seed=0), optuna.samplers.BaseSampler)
    else:
        with pytest.raises(PlanError, match=f"sampler '{name}' needs scipy"):
            make_sampler(name, seed=0)
    # A plan may name them either way: the check happens where the sampler is built.
    assert sampler_spec(name).to_data() == {"name": name}


def test_qmc_shares_its_seed_across_workers_others_do_not() -> None:
    assert shares_seed({"name": "qmc", "scramble": True})
    assert not shares_seed("tpe") and not shares_seed("random")


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("none", optuna.pruners.NopPruner),
        ({"name": "median", "n_startup_trials": 3, "n_warmup_steps": 2}, optuna.pruners.MedianPruner),
        ({"name": "percentile", "percentile": 25.0}, optuna.pruners.PercentilePruner),
        ({"name": "successive_halving", "min_resource": 2}, optuna.pruners.SuccessiveHalvingPruner),
        ({"name": "hyperband", "min_resource": 2, "max_resource": 8}, optuna.pruners.HyperbandPruner),
        ({"name": "median", "patient": 2}, optuna.pruners.PatientPruner),
    ],
)
def test_pruners_build(spec: object, cls: type) -> None:
    assert isinstance(make_pruner(spec), cls)


def test_patient_wraps_the_named_pruner_or_stands_alone() -> None:
    wrapped = make_pruner({"name": "median", "n_warmup_steps": 1, "patient": 3})
    inner, patience = internals.pruner_parts(wrapped)
    assert isinstance(inner, optuna.pruners.MedianPruner) and patience == 3
    assert internals.pruner_parts(make_pruner({"name": "none", "patient": 2}))[0] is None
    assert pruner_spec({"name": "median", "patient": 3}).to_data() == {"name": "median", "patient": 3}


def test_median_pruner_from_a_spec_prunes_a_clearly_worse_trial() -> None:
    study = optuna.create_study(
        direction="maximize", pruner=make_pruner({"name": "median", "n_startup_trials": 2})
    )
    for acc in (0.8, 0.9):
        trial = study.ask()
        trial.report(acc, 0)
        study.tell(trial, acc)
    loser = study.ask()
    loser.report(0.1, 0)
    assert loser.should_prune()


BAD = [
    pytest.param(
        make_sampler,
        "tpee",
        "plan.yaml: stages[1].sampler: unknown sampler 'tpee'; choose from ['gp', 'qmc', 'random', 'tpe']",
        id="unknown-sampler",
    ),
    pytest.param(
        make_sampler,
        {"name": "tpe", "n_startup": 3},
        "unknown option 'n_startup' for sampler 'tpe'",
        id="unknown-sampler-option",
    ),
    pytest.param(
        make_sampler,
        {"name": "tpe", "constant_liar": "yes"},
        ".constant_liar: 'yes' is not a valid",
        id="bad-option-type",
    ),
    pytest.param(
        make_sampler, {"name": "qmc", "qmc_type": "lattice"}, "expected 'sobol' or 'halton'", id="bad-literal"
    ),
    pytest.param(make_sampler, {"n_startup_trials": 3}, "expected a sampler name", id="no-name"),
    pytest.param(
        make_pruner,
        "medain",
        "unknown pruner 'medain'; choose from ['hyperband', 'median', 'none'",
        id="unknown-pruner",
    ),
    pytest.param(
        make_pruner,
        {"name": "percentile"},
        "pruner 'percentile' needs option 'percentile'",
        id="missing-required",
    ),
    pytest.param(
        make_pruner,
        {"name": "percentile", "percentile": 120},
        "Percentile must be between 0 and 100",
        id="optuna-check-translated",
    ),
    pytest.param(
        make_pruner,
        {"name": "hyperband", "reduction_factor": 1},
        "reduction_factor must be >= 2",
        id="hyperband-checked-early",
    ),
    pytest.param(
        make_pruner, {"name": "median", "patient": -1}, ".patient: must be an integer >= 0", id="bad-patience"
    ),
    pytest.param(
        make_pruner, {"name": "none", "n_warmup_steps": 2}, "valid options: patient", id="none-has-no-options"
    ),
]


@pytest.mark.parametrize(("make", "spec", "message"), BAD)
def test_bad_spec_is_one_line_listing_the_choices(make: object, spec: object, message: str) -> None:
    where = "plan.yaml: stages[1].sampler" if make is make_sampler else "plan.yaml: stages[1].pruner"
    with pytest.raises(PlanError) as e:
        make(spec, 0, where) if make is make_sampler else make(spec, where)  # type: ignore[operator]
    assert "\n" not in str(e.value) and str(e.value).startswith(where)
    assert message in str(e.value)


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("tpe")(lambda seed: optuna.samplers.RandomSampler(seed=seed))


def test_tpe_from_a_spec_samples_a_conditional_space() -> None:
    space = parse_space(
        {
            "lr": {"type": "float", "low": 1.0e-3, "high": 1.0, "log": True},
            "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
            "momentum": {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
        }
    )
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler({"name": "tpe", "n_startup_trials": 4}, 1)
    )
    study.optimize(lambda t: sample_params(t, space)["lr"], n_trials=12)
    assert all(("momentum" in t.params) == (t.params["optimizer"] == "sgd") for t in study.trials)

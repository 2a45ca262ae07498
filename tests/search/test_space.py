"""The space as data: parsing, one-line errors, JSON that plain Optuna reads, conditional sampling."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    json_to_distribution,
)

from hpsearch.search.plan.space import (
    PlanError,
    active_params,
    parse_space,
    sample_params,
    space_from_json,
    space_to_data,
    space_to_json,
)

SPACE = {
    "lr": {"type": "float", "low": 1.0e-3, "high": 1.0, "log": True},
    "momentum": {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adamw", "nadam"]},
    "plateau_patience": {"type": "int", "low": 2, "high": 6, "condition": {"scheduler": ["plateau"]}},
    "plateau_factor": {"type": "float", "low": 0.2, "high": 0.7, "condition": {"scheduler": "plateau"}},
    "scheduler": {"type": "categorical", "choices": ["cosine", "plateau"]},
    "cutout": {"type": "int", "low": 0, "high": 16, "step": 8},
    "label_smoothing": {"type": "categorical", "choices": [0.0, 0.1]},
}


def test_parse_keeps_optuna_distributions_parents_first() -> None:
    space = parse_space(SPACE)
    assert space.names == (
        "lr",
        "optimizer",
        "momentum",
        "scheduler",
        "plateau_patience",
        "plateau_factor",
        "cutout",
        "label_smoothing",
    )
    assert space["lr"].distribution == FloatDistribution(1e-3, 1.0, log=True)
    assert space["cutout"].distribution == IntDistribution(0, 16, step=8)
    assert space["optimizer"].distribution == CategoricalDistribution(["sgd", "adamw", "nadam"])
    assert space["plateau_factor"].condition == {"scheduler": ("plateau",)}


def test_json_round_trip_and_plain_optuna_reads_it() -> None:
    space = parse_space(SPACE)
    stored = json.loads(json.dumps(space_to_json(space)))
    assert space_from_json(stored) == space
    # A client without hpsearch rebuilds every distribution with Optuna alone.
    for entry in stored["params"]:
        assert json_to_distribution(json.dumps(entry["distribution"])) == space[entry["name"]].distribution


def test_plan_file_form_round_trip() -> None:
    space = parse_space(SPACE)
    assert parse_space(space_to_data(space)) == space


def test_sample_params_suggests_a_conditional_param_only_when_its_condition_holds() -> None:
    space = parse_space(SPACE)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        params = sample_params(trial, space)
        assert params == trial.params  # nothing suggested that the dict does not report
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert (
            ("plateau_patience" in params)
            == ("plateau_factor" in params)
            == (params["scheduler"] == "plateau")
        )
        assert params["cutout"] in (0, 8, 16)  # on the grid of IntDistribution(0, 16, step=8)
        seen.add((params["optimizer"], params["scheduler"]))
        study.tell(trial, params["lr"])
    assert len(seen) == 6  # every branch was visited


def test_active_params_drops_inactive_and_unknown_keys() -> None:
    space = parse_space(SPACE)
    params = {"lr": 0.1, "optimizer": "adamw", "momentum": 0.9, "scheduler": "cosine", "epochs": 3}
    assert active_params(space, params) == {"lr": 0.1, "optimizer": "adamw", "scheduler": "cosine"}


BAD = [
    pytest.param(
        {"lr": {"type": "flaot", "low": 0.1, "high": 1.0}}, "space.lr.type: unknown type", id="type"
    ),
    pytest.param(
        {"lr": {"type": "float", "low": 1.0, "high": 0.1}}, "space.lr: low 1.0 > high 0.1", id="low>high"
    ),
    pytest.param(
        {"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
        "space.lr.low: log scale",
        id="log-low-0",
    ),
    pytest.param(
        {"lr": {"type": "float", "low": 0.1, "high": 1.0, "lgo": True}},
        "space.lr: unknown key 'lgo'",
        id="unknown-key",
    ),
    pytest.param(
        {"lr": {"type": "float", "low": "1e-3", "high": 1.0}},
        "space.lr.low: must be a finite number",
        id="string-number",
    ),
    pytest.param(
        {"optimizer": {"type": "categorical", "choices": []}}, "space.optimizer.choices", id="empty-choices"
    ),
    pytest.param(
        {"optimizer": {"type": "categorical", "choices": ["sgd", "sgdd"]}},
        "unknown optimizer 'sgdd'",
        id="choice-not-valid-for-trainconfig",
    ),
    pytest.param(
        {"lrr": {"type": "float", "low": 0.1, "high": 1.0}},
        "space.lrr: 'lrr' is not a TrainConfig key",
        id="not-a-field",
    ),
    pytest.param(
        {"momentum": {"type": "float", "low": 0.8, "high": 1.0}},
        "momentum must be in [0, 1)",
        id="outside-trainconfig-range",
    ),
    pytest.param(
        {"batch_size": {"type": "float", "low": 64, "high": 256}}, "space.batch_size.type", id="float-on-int"
    ),
    pytest.param(
        {"cutout": {"type": "int", "low": 0, "high": 10, "step": 4}},
        "space.cutout.high: high - low",
        id="int-off-grid",
    ),
    pytest.param(
        {"momentum": {**SPACE["momentum"]}},
        "space.momentum.condition.optimizer: 'optimizer' is not a param",
        id="condition-unknown-parent",
    ),
    pytest.param(
        {"lr": SPACE["lr"], "momentum": {**SPACE["momentum"], "condition": {"lr": [0.1]}}},
        "space.momentum.condition.lr: 'lr' is not categorical",
        id="condition-non-categorical",
    ),
    pytest.param(
        {
            "optimizer": SPACE["optimizer"],
            "momentum": {**SPACE["momentum"], "condition": {"optimizer": "sdg"}},
        },
        "space.momentum.condition.optimizer: 'sdg' is not among",
        id="condition-value-not-a-choice",
    ),
    pytest.param(
        {
            "optimizer": {**SPACE["optimizer"], "condition": {"scheduler": ["plateau"]}},
            "scheduler": {**SPACE["scheduler"], "condition": {"optimizer": ["sgd"]}},
        },
        "cycle optimizer -> scheduler -> optimizer",
        id="condition-cycle",
    ),
    pytest.param({}, "space: expected a non-empty mapping", id="empty-space"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_space_is_one_line_naming_the_key(data: dict, message: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_space(data, "plan.yaml: space")
    text = str(e.value)
    assert "\n" not in text and text.startswith("plan.yaml: ")
    assert message in text


def test_search_modules_import_without_torch() -> None:
    code = (
        "import sys, hpsearch.search.plan.plan, hpsearch.search.plan.narrow, hpsearch.search.plan.samplers; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

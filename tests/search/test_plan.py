"""Plan files: every example loads, every mistake is one line naming the key path, JSON round trips."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpsearch.objectives.config import TrainConfig
from hpsearch.search.plan.narrow import NarrowRule
from hpsearch.search.plan.plan import Plan, first_difference, load_plan_file, plan_fingerprint
from hpsearch.search.plan.samplers import Spec, make_pruner, make_sampler
from hpsearch.search.plan.space import space_from_json, space_to_json
from hpsearch.search.plan.stages import CompareStage, FinalStage, LRRangeTestStage, SearchStage

EXAMPLES_DIR = Path(__file__).parents[2] / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.yaml") if not p.name.startswith("config-"))
CONFIGS = sorted(EXAMPLES_DIR.glob("config-*.yaml"))  # single-run TrainConfigs for `hpsearch train`

PLAN: dict[str, Any] = {
    "name": "tiny",
    "objective": "synthetic",
    "seed": 3,
    "base": {"width": 8, "data_fraction": 0.1},
    "space": {
        "lr": {"type": "float", "low": 1.0e-3, "high": 1.0, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
        "momentum": {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
    },
    "stages": [
        {"name": "coarse", "n_trials": 8, "overrides": {"epochs": 2}, "pruner": "median"},
        {"name": "fine", "n_trials": 4, "overrides": {"epochs": 3}, "narrow": {"top_k": 3}, "carry": 2},
        {"name": "final", "kind": "final", "top": 2, "seeds": 2, "overrides": {"epochs": 4}},
    ],
}


def edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(PLAN)
    change(data)
    return data


def test_valid_plan_defaults() -> None:
    plan = Plan.from_dict(PLAN)
    coarse, fine, final = plan.stages
    assert coarse.sampler == Spec("random") and fine.sampler == Spec("tpe")  # coarse covers, fine models
    assert coarse.pruner == Spec("median") and fine.pruner == Spec("none")
    assert fine.narrow == NarrowRule(top_k=3, margin=0.25, min_width=0.1) and coarse.narrow is None
    assert (final.n_trials, final.top, final.seeds) == (4, 2, 2)
    assert plan.base.width == 8 and plan.base.epochs == 30  # every TrainConfig key is recorded
    assert plan.stage("fine") is fine


def test_config_for_layers_base_then_fidelity_then_params() -> None:
    plan = Plan.from_dict(PLAN)
    config = plan.config_for(plan.stage("fine"), {"lr": 0.05, "optimizer": "adamw"})
    assert (config.width, config.data_fraction, config.epochs, config.lr, config.optimizer) == (
        8,
        0.1,
        3,
        0.05,
        "adamw",
    )


def test_json_round_trip_and_fingerprint() -> None:
    plan = Plan.from_dict(PLAN)
    stored = json.loads(json.dumps(plan.to_dict()))
    again = Plan.from_dict(stored)
    assert again == plan and plan_fingerprint(again) == plan_fingerprint(plan)
    assert space_from_json(json.loads(json.dumps(space_to_json(plan.space)))) == plan.space
    changed = Plan.from_dict(edit(lambda d: d["stages"][0].update(n_trials=9)))
    assert plan_fingerprint(changed) != plan_fingerprint(plan)


def test_fingerprint_ignores_layout_and_spelled_out_defaults(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(yaml.safe_dump(PLAN))
    b = tmp_path / "b.yaml"
    b.write_text(
        "# same plan, other layout\n" + yaml.safe_dump(Plan.from_dict(PLAN).to_dict(), sort_keys=True)
    )
    assert plan_fingerprint(load_plan_file(a)) == plan_fingerprint(load_plan_file(b))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_plans_load_and_build(path: Path) -> None:
    plan = load_plan_file(path)
    assert plan.name == path.stem
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    kinds = [s.kind for s in plan.stages]
    if set(kinds) != {"compare"}:  # practice-check compares variants of one config and searches nothing
        assert kinds[-1] == "final" and kinds.count("search") >= 2
    for stage in plan.stages:
        make_pruner(stage.study_pruner)
        make_sampler(stage.study_sampler, seed=plan.seed)
        plan.config_for(stage, {})


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_configs_are_train_configs(path: Path) -> None:
    assert TrainConfig.from_yaml_file(path).epochs >= 1


def test_examples_cover_the_documented_set() -> None:
    assert {p.stem for p in EXAMPLES} >= {"demo", "cifar10-resnet18", "long-tail"}


def test_yaml_reads_1e_minus_3_as_a_number(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN).replace("0.001", "1e-3"))
    assert "1e-3" in path.read_text()
    assert load_plan_file(path).space["lr"].distribution.low == 1e-3


def test_stage_defaults_are_buildable() -> None:
    for stage in (SearchStage("x"), LRRangeTestStage("x"), FinalStage("x"), CompareStage("x")):
        make_sampler(stage.study_sampler, seed=0)
        make_pruner(stage.study_pruner)


def test_first_difference_names_the_key_path_of_what_changed() -> None:
    plan = Plan.from_dict(PLAN).to_dict()
    assert first_difference(plan, Plan.from_dict(PLAN).to_dict()) is None
    more = {**PLAN, "stages": [{**PLAN["stages"][0], "n_trials": 99}, *PLAN["stages"][1:]]}
    assert first_difference(plan, Plan.from_dict(more).to_dict()) == \
        f"stages[0].n_trials: {PLAN['stages'][0]['n_trials']} stored, 99 in this plan"
    assert first_difference({"a": [1, 2]}, {"a": [1]}) == "a: 2 entries stored, 1 in this plan"
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "b: absent in the stored plan, set in this one"
    assert first_difference({"a": (1, 2)}, {"a": [1, 2]}) is None
    assert first_difference({"a": "x" * 100}, {"a": {"b": 1}}) == f"a: '{'x' * 56}... stored, {{'b': 1}} in this plan"

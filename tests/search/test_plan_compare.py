"""Compare stages in plan files: their variants, seeds and config, and every mistake as one line."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hpsearch.search.plan.plan import Plan, PlanError, plan_fingerprint
from hpsearch.search.plan.stage_logic import slot_templates

SPACE = {"lr": {"type": "float", "low": 1.0e-3, "high": 1.0, "log": True},
         "momentum": {"type": "float", "low": 0.5, "high": 0.99}}
COARSE = {"name": "coarse", "n_trials": 4, "overrides": {"epochs": 2}}
FLOOR = {"name": "floor", "kind": "compare", "seeds": 3, "overrides": {"epochs": 3},
         "variants": {"floor": {"min_lr_ratio": 0.01}, "no-floor": {"min_lr_ratio": 1.0e-6}}}


def plan(*stages: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = {"name": "cmp", "objective": "synthetic", "base": {"width": 8, "seed": 5}, "space": SPACE,
            "stages": list(copy.deepcopy(stages))}
    return {**data, **changes}


def test_a_compare_stage_runs_each_variant_with_each_seed_on_the_best_config() -> None:
    p = Plan.from_dict(plan(COARSE, FLOOR))
    stage = p.stage("floor")
    assert (stage.n_trials, stage.seeds, stage.compare_on) == (6, 3, "best")  # best: a search stage came before
    assert stage.variants == (("floor", {"min_lr_ratio": 0.01}), ("no-floor", {"min_lr_ratio": 1.0e-6}))
    assert Plan.from_dict(p.to_dict()) == p
    swapped = plan(COARSE, {**FLOOR, "variants": dict(reversed(list(FLOOR["variants"].items())))})
    # the first variant is the reference: order is part of the plan
    assert plan_fingerprint(Plan.from_dict(swapped)) != plan_fingerprint(p)


def test_slots_are_variant_major_with_the_base_seeds() -> None:
    p = Plan.from_dict(plan(COARSE, {**FLOOR, "config": "base"}))
    slots = slot_templates(p, 1, [])
    assert slots == [({}, {"min_lr_ratio": 0.01, "seed": 5}), ({}, {"min_lr_ratio": 0.01, "seed": 6}),
                     ({}, {"min_lr_ratio": 0.01, "seed": 7}), ({}, {"min_lr_ratio": 1.0e-6, "seed": 5}),
                     ({}, {"min_lr_ratio": 1.0e-6, "seed": 6}), ({}, {"min_lr_ratio": 1.0e-6, "seed": 7})]


def test_a_plan_of_comparisons_only_needs_no_space() -> None:
    data = plan({**FLOOR, "config": "base"}, {**FLOOR, "name": "again"})
    del data["space"]
    p = Plan.from_dict(data)
    assert len(p.space) == 0 and [s.compare_on for s in p.stages] == ["base", "base"]  # nothing searched: base
    assert Plan.from_dict(p.to_dict()) == p


def test_compare_stages_may_follow_the_final_stage() -> None:
    final = {"name": "final", "kind": "final", "top": 2, "seeds": 2}
    p = Plan.from_dict(plan(COARSE, final, FLOOR))
    assert [s.kind for s in p.stages] == ["search", "final", "compare"]


BAD = [
    (plan(COARSE, {**FLOOR, "variants": {"only": {"lr": 0.1}}}), "stages[1].variants: a comparison needs at least two"),
    (plan(COARSE, {**FLOOR, "variants": ["a", "b"]}), "stages[1].variants: expected a mapping of variant names"),
    (plan(COARSE, {**FLOOR, "variants": {"a": {}, "b": {"seed": 3}}}), "stages[1].variants.b.seed: set by the stage"),
    (plan(COARSE, {**FLOOR, "variants": {"a": {}, "b": {"nope": 3}}}), "unknown key 'nope'"),
    (plan(COARSE, {**FLOOR, "variants": {"a": {}, "b": {"lr": -1.0}}}), "lr must be > 0"),
    (plan(COARSE, {**FLOOR, "variants": {"a": {}, "b c": {}}}), "'b c' is not a safe name"),
    (plan(COARSE, {**FLOOR, "seeds": 1}), "stages[1].seeds: must be an integer >= 2"),
    (plan(COARSE, {**FLOOR, "config": "worst"}), "stages[1].config: must be best"),
    (plan({**FLOOR, "config": "best"}), "stages[0].config: there is no best config yet"),
    (plan(COARSE, {**FLOOR, "config": "base"}, {**FLOOR, "name": "f2", "config": "best"}),
     "stages[2].config: best takes the config of the stage before"),
    (plan(COARSE, {**FLOOR, "n_trials": 6}), "stages[1].n_trials: is not used by a compare stage"),
    (plan(COARSE, {**FLOOR, "overrides": {"lr": 0.1}}), "'lr' is searched"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_compare_stages_are_one_line_naming_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as e:
        Plan.from_dict(data, "plan.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_practice_check_compares_what_practitioners_report() -> None:
    from pathlib import Path

    from hpsearch.objectives.config import TrainConfig
    from hpsearch.search.plan.plan import load_plan_file

    p = load_plan_file(Path(__file__).parents[2] / "examples" / "practice-check.yaml")
    assert len(p.space) == 0 and all(s.kind == "compare" and s.compare_on == "base" for s in p.stages)
    variants = {s.name: dict(s.variants) for s in p.stages}
    assert variants["plateau-mode"]["max"]["plateau_mode"] == "max"  # the reference: mode max on accuracy
    assert variants["plateau-mode"]["min"]["plateau_mode"] == "min"
    assert variants["sgd-vs-adam"]["adamw-1e-3"] == {"optimizer": "adamw", "lr": 1.0e-3}
    large, small = variants["momentum-at-large-lr"].values()
    assert large["lr"] == small["lr"] and large["momentum"] > small["momentum"]
    assert variants["cosine-floor"]["floor"]["min_lr_ratio"] > variants["cosine-floor"]["no-floor"]["min_lr_ratio"]
    for stage in p.stages:  # every variant is a valid TrainConfig small enough for a CPU
        for _, changes in stage.variants:
            config = TrainConfig.from_dict({**p.base.to_dict(), **stage.overrides, **changes})
            assert config.width <= 16 and config.data_fraction <= 0.05

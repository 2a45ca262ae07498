"""Stage kinds: each parses to its own record type, writes the plan-file form stored campaigns were fingerprinted
from, and reads it back equal."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from hpsearch.search.plan.plan import Plan, load_plan_file, plan_fingerprint
from hpsearch.search.plan.samplers import Spec
from hpsearch.search.plan.stages import (
    CompareStage,
    FinalStage,
    LRRangeTestStage,
    SearchStage,
    StageKind,
    stage_to_data,
)

EXAMPLES_DIR = Path(__file__).parents[2] / "examples"
PLANS = sorted(p for p in EXAMPLES_DIR.rglob("*.yaml") if not p.name.startswith("config-"))

KINDS: dict[str, Any] = {
    "name": "kinds", "objective": "synthetic", "seed": 7, "base": {"width": 8, "seed": 5},
    "space": {"lr": {"type": "float", "low": 1.0e-4, "high": 1.0, "log": True},
              "momentum": {"type": "float", "low": 0.5, "high": 0.99}},
    "stages": [
        {"name": "range", "kind": "lr_range_test", "margin": 0.25},
        {"name": "coarse", "n_trials": 8, "overrides": {"epochs": 2}, "pruner": {"name": "median", "patient": 1}},
        {"name": "fine", "n_trials": 6, "narrow": {"top_k": 3, "smooth": 0.2}, "carry": 2, "sampler": "qmc"},
        {"name": "final", "kind": "final", "top": 2, "seeds": 3, "smooth": 0.1, "overrides": {"epochs": 4}},
        {"name": "floor", "kind": "compare", "seeds": 2,
         "variants": {"floor": {"min_lr_ratio": 0.01}, "no-floor": {"min_lr_ratio": 1.0e-6}}},
        {"name": "widths", "kind": "compare", "config": "base", "variants": {"narrow": {}, "wide": {"width": 16}}},
    ],
}
# What every stage's entry of a stored plan looks like, key order included: the fingerprint is computed from it.
WRITTEN = [
    {"name": "range", "kind": "lr_range_test", "overrides": {}, "margin": 0.25},
    {"name": "coarse", "kind": "search", "n_trials": 8, "overrides": {"epochs": 2}, "sampler": {"name": "random"},
     "pruner": {"name": "median", "patient": 1}, "carry": 0},
    {"name": "fine", "kind": "search", "n_trials": 6, "overrides": {}, "sampler": {"name": "qmc"},
     "pruner": {"name": "none"},
     "narrow": {"top_k": 3, "margin": 0.25, "min_width": 0.1, "grow": 1.0, "edge": 0.1, "smooth": 0.2}, "carry": 2},
    {"name": "final", "kind": "final", "overrides": {"epochs": 4}, "top": 2, "seeds": 3, "smooth": 0.1},
    {"name": "floor", "kind": "compare", "overrides": {}, "config": "best", "seeds": 2,
     "variants": [{"name": "floor", "overrides": {"min_lr_ratio": 0.01}},
                  {"name": "no-floor", "overrides": {"min_lr_ratio": 1e-06}}]},
    {"name": "widths", "kind": "compare", "overrides": {}, "config": "base", "seeds": 3,
     "variants": [{"name": "narrow", "overrides": {}}, {"name": "wide", "overrides": {"width": 16}}]},
]
FINGERPRINT = "5fc0edcf1b181a6ea63258669e44f9092aac7ab0e941c33303f3508b2cbc4b28"


def test_each_kind_parses_to_its_own_type_holding_only_its_fields() -> None:
    plan = Plan.from_dict(KINDS)
    types = [type(s) for s in plan.stages]
    assert types == [LRRangeTestStage, SearchStage, SearchStage, FinalStage, CompareStage, CompareStage]
    assert [s.kind for s in plan.stages] == ["lr_range_test", "search", "search", "final", "compare", "compare"]
    assert plan.stages[3].kind == StageKind.FINAL and FinalStage.kind is StageKind.FINAL
    common = ["name", "n_trials", "overrides"]
    own = {t: [f.name for f in fields(t)][len(common):] for t in set(types)}
    assert own == {SearchStage: ["sampler", "pruner", "narrow", "carry", "escalate", "escalated"],
                   LRRangeTestStage: ["margin"], FinalStage: ["top", "seeds", "smooth"],
                   CompareStage: ["seeds", "variants", "compare_on"]}
    final, floor = plan.stages[3], plan.stages[4]
    assert (final.n_trials, floor.n_trials, plan.stages[0].n_trials) == (6, 4, 1)
    assert SearchStage("a") != FinalStage("a")  # equal fields, other kinds


def test_the_plan_file_form_and_fingerprint_of_every_kind_are_unchanged() -> None:
    plan = Plan.from_dict(KINDS)
    written = [stage_to_data(s) for s in plan.stages]
    assert json.dumps(written) == json.dumps(WRITTEN)  # key order too
    assert plan_fingerprint(plan) == FINGERPRINT  # a stored campaign of this plan still loads as the same plan
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict())), stored=True) == plan


@pytest.mark.parametrize("path", PLANS, ids=[str(p.relative_to(EXAMPLES_DIR)) for p in PLANS])
def test_example_plans_read_back_equal_from_their_written_form(path: Path) -> None:
    plan = load_plan_file(path)
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())), search_path=(path.parent,))
    assert again == plan and [type(s) for s in again.stages] == [type(s) for s in plan.stages]
    assert [stage_to_data(s) for s in again.stages] == [stage_to_data(s) for s in plan.stages]


def test_only_a_search_stage_brings_its_own_sampler_and_pruner() -> None:
    plan = Plan.from_dict(KINDS)
    specs = [(s.study_sampler, s.study_pruner) for s in plan.stages]
    random, none = Spec("random"), Spec("none")
    assert specs == [(random, none), (random, Spec("median", {"patient": 1})), (Spec("qmc"), none),
                     (random, none), (random, none), (random, none)]


def test_each_kind_says_what_it_does_in_its_note() -> None:
    plan = Plan.from_dict(KINDS)
    facts = {s.name: dict(s.facts()) for s in plan.stages}
    assert facts["range"] == {"margin": "0.25 of the found LR range's log width per side"}
    assert facts["fine"]["carry"] == "2 best config(s) of the previous stage"
    assert facts["coarse"]["narrowing rule"] == "none (parent's space)"
    assert facts["final"] == {"final": "top 2 config(s) x 3 seed(s), ranked by their mean, picked by smoothed value "
                                       "(smooth 0.1)"}
    assert facts["widths"] == {"compare": "2 variant(s) of the base config x 3 seed(s); each tested against the "
                                          "first (Welch's t-test)",
                               "variant narrow": "as is", "variant wide": {"width": 16}}

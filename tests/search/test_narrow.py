"""narrow(): a table of (space, ranked trials, rule) -> child space, and properties true for any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpsearch.search.plan.narrow import NarrowRule, narrow, parse_narrow_rule, set_lr_range
from hpsearch.search.plan.space import PlanError, Space, active_params, parse_space
from tests.search.narrow_strategies import cases, contains, width, within_a_hair_of_an_edge

LR_LOG = {"type": "float", "low": 1.0e-3, "high": 1.0, "log": True}
WARMUP = {"type": "float", "low": 0.0, "high": 4.0}
OPTIMIZER = {"type": "categorical", "choices": ["sgd", "adamw", "nadam"]}
SCHEDULER = {"type": "categorical", "choices": ["cosine", "plateau"]}
MOMENTUM_SGD = {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["sgd"]}}


def rule(**kw: Any) -> NarrowRule:
    return NarrowRule(**{"top_k": None, "top_fraction": None, "margin": 0.0, "min_width": 0.0, **kw})


CASES = [
    pytest.param(
        {"warmup_epochs": WARMUP},
        [{"warmup_epochs": 1.5}, {"warmup_epochs": 2.5}, {"warmup_epochs": 4.0}],
        rule(top_k=2, margin=0.5),
        {"warmup_epochs": {"type": "float", "low": 1.0, "high": 3.0}},
        id="float-margin-widens-by-half-the-range-each-side",
    ),
    pytest.param(
        {"warmup_epochs": WARMUP},
        [{"warmup_epochs": 2.0}],
        rule(top_k=1, min_width=0.25),
        {"warmup_epochs": {"type": "float", "low": 1.5, "high": 2.5}},
        id="float-min-width-centred-on-a-single-value",
    ),
    pytest.param(
        {"warmup_epochs": WARMUP},
        [{"warmup_epochs": 0.0}],
        rule(top_k=1, min_width=0.25),
        {"warmup_epochs": {"type": "float", "low": 0.0, "high": 1.0}},
        id="float-min-width-shifted-inside-at-the-edge",
    ),
    pytest.param(
        {"warmup_epochs": WARMUP},
        [{"warmup_epochs": 1.0}, {"warmup_epochs": 3.0}],
        rule(top_k=2, margin=10.0),
        {"warmup_epochs": WARMUP},
        id="float-huge-margin-clipped-to-parent",
    ),
    pytest.param(
        {"lr": LR_LOG},
        [{"lr": 1.0e-2}, {"lr": 1.0e-1}, {"lr": 0.9}],
        rule(top_k=2, margin=0.5),
        {"lr": {"type": "float", "low": 10**-2.5, "high": 10**-0.5, "log": True}},
        id="log-float-widened-in-decades",
    ),
    pytest.param(
        {"plateau_patience": {"type": "int", "low": 1, "high": 10}},
        [{"plateau_patience": 3}, {"plateau_patience": 4}],
        rule(top_k=2, margin=0.5),
        {"plateau_patience": {"type": "int", "low": 2, "high": 5}},
        id="int-rounded-outward",
    ),
    pytest.param(
        {"cutout": {"type": "int", "low": 0, "high": 20, "step": 4}},
        [{"cutout": 8}, {"cutout": 12}],
        rule(top_k=2, min_width=0.5),
        {"cutout": {"type": "int", "low": 4, "high": 16, "step": 4}},
        id="int-step-kept-on-parent-grid",
    ),
    pytest.param(
        {"batch_size": {"type": "int", "low": 16, "high": 1024, "log": True}},
        [{"batch_size": 128}, {"batch_size": 256}],
        rule(top_k=2, margin=1.0),
        {"batch_size": {"type": "int", "low": 64, "high": 512, "log": True}},
        id="log-int-widened-by-octaves",
    ),
    pytest.param(
        {"optimizer": OPTIMIZER},
        [{"optimizer": "nadam"}, {"optimizer": "sgd"}, {"optimizer": "adamw"}],
        rule(top_k=2),
        {"optimizer": {"type": "categorical", "choices": ["sgd", "nadam"]}},
        id="categorical-keeps-used-choices-in-parent-order",
    ),
    pytest.param(
        {"optimizer": OPTIMIZER, "momentum": MOMENTUM_SGD},
        [
            {"optimizer": "adamw"},
            {"optimizer": "sgd", "momentum": 0.9},
            {"optimizer": "sgd", "momentum": 0.85},
        ],
        rule(top_k=2, min_width=0.0),
        {
            "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
            "momentum": {"type": "float", "low": 0.9, "high": 0.9, "condition": {"optimizer": ["sgd"]}},
        },
        id="conditional-narrowed-by-active-top-trials-only",
    ),
    pytest.param(
        {"optimizer": OPTIMIZER, "momentum": MOMENTUM_SGD},
        [{"optimizer": "adamw"}, {"optimizer": "nadam"}, {"optimizer": "sgd", "momentum": 0.9}],
        rule(top_k=2),
        {"optimizer": {"type": "categorical", "choices": ["adamw", "nadam"]}},
        id="conditional-dropped-when-its-parent-choice-is-dropped",
    ),
    pytest.param(
        {
            "optimizer": OPTIMIZER,
            "scheduler": SCHEDULER,
            "plateau_factor": {
                "type": "float",
                "low": 0.2,
                "high": 0.8,
                "condition": {"optimizer": ["sgd"], "scheduler": ["plateau"]},
            },
        },
        [{"optimizer": "sgd", "scheduler": "cosine"}, {"optimizer": "adamw", "scheduler": "plateau"}],
        rule(top_k=2),
        {
            "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
            "scheduler": SCHEDULER,
            "plateau_factor": {
                "type": "float",
                "low": 0.2,
                "high": 0.8,
                "condition": {"optimizer": ["sgd"], "scheduler": ["plateau"]},
            },
        },
        id="conditional-never-active-left-as-parent",
    ),
    pytest.param(
        {"warmup_epochs": WARMUP},
        [{"warmup_epochs": v} for v in (1.0, 2.0, 3.0, 0.0, 4.0, 4.0, 4.0, 4.0)],
        rule(top_fraction=0.25),
        {"warmup_epochs": {"type": "float", "low": 1.0, "high": 2.0}},
        id="top-fraction-rounds-up-a-quarter-of-eight-is-two",
    ),
    pytest.param(
        {"warmup_epochs": WARMUP},
        [{"warmup_epochs": 5.5}, {"warmup_epochs": 2.0}],
        rule(top_k=2),
        {"warmup_epochs": {"type": "float", "low": 2.0, "high": 2.0}},
        id="values-outside-the-parent-are-ignored",
    ),
    pytest.param(
        {"warmup_epochs": WARMUP, "optimizer": OPTIMIZER},
        [],
        rule(top_k=3, margin=0.1, min_width=0.1),
        {"warmup_epochs": WARMUP, "optimizer": OPTIMIZER},
        id="no-trials-no-change",
    ),
]


@pytest.mark.parametrize(("parent", "trials", "narrow_rule", "expected"), CASES)
def test_narrow_table(parent: dict, trials: list[dict], narrow_rule: NarrowRule, expected: dict) -> None:
    child = narrow(parse_space(parent), trials, narrow_rule)
    want = parse_space(expected)
    assert child.names == want.names
    for got, exp in zip(child, want, strict=True):
        assert got.condition == exp.condition
        g, e = got.distribution, exp.distribution
        if isinstance(e, FloatDistribution):
            assert (g.low, g.high, g.log) == (pytest.approx(e.low), pytest.approx(e.high), e.log)
        else:
            assert g == e


def test_keep_makes_carried_configs_fit_the_child() -> None:
    parent = parse_space({"optimizer": OPTIMIZER})
    trials = [{"optimizer": "sgd"}, {"optimizer": "nadam"}, {"optimizer": "adamw"}]
    assert narrow(parent, trials, rule(top_k=1))["optimizer"].distribution.choices == ("sgd",)
    kept = narrow(parent, trials, rule(top_k=1), keep=2)
    assert kept["optimizer"].distribution.choices == ("sgd", "nadam")


def test_top_fraction_count_is_not_fooled_by_float_error() -> None:
    assert rule(top_fraction=0.1).count(30) == 3
    assert rule(top_fraction=0.01).count(5) == 1
    assert rule(top_k=10).count(4) == 4


def test_parse_narrow_rule_defaults_and_errors() -> None:
    assert parse_narrow_rule({"top_k": 4}) == NarrowRule(top_k=4, margin=0.25, min_width=0.1)
    for bad, path in [
        ({"top_k": 2, "top_fraction": 0.5}, "narrow:"),
        ({"top_fraction": 0}, "narrow.top_fraction"),
        ({"top_k": 2, "min_width": 2}, "narrow.min_width"),
        ({"top_k": 2, "wide": 1}, "narrow:"),
    ]:
        with pytest.raises(PlanError, match=path):
            parse_narrow_rule(bad)


def test_set_lr_range_replaces_lr_bounds_in_log_scale() -> None:
    space = parse_space({"lr": LR_LOG, "optimizer": OPTIMIZER})
    d = set_lr_range(space, 1.0e-3, 1.0e-1, margin=0.5)["lr"].distribution
    assert (d.low, d.high, d.log) == (pytest.approx(1.0e-4), pytest.approx(1.0), True)


# ---- properties -------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(cases())
def test_child_lies_inside_parent(case: tuple[Space, list[dict], NarrowRule]) -> None:
    parent, trials, narrow_rule = case
    child = narrow(parent, trials, narrow_rule)
    for c in child:
        p, d = parent[c.name].distribution, c.distribution
        assert type(d) is type(p)
        if isinstance(d, CategoricalDistribution):
            assert list(d.choices) == [x for x in p.choices if x in d.choices]
        else:
            assert p.low <= d.low <= d.high <= p.high and d.log == p.log
            if isinstance(d, IntDistribution):
                assert d.step == p.step and (d.low - p.low) % p.step == 0
        for parent_name, allowed in c.condition.items():
            assert set(allowed) <= set(parent[c.name].condition[parent_name])


@settings(max_examples=150, deadline=None)
@given(cases())
def test_every_top_trial_is_a_point_of_the_child(case: tuple[Space, list[dict], NarrowRule]) -> None:
    parent, trials, narrow_rule = case
    child = narrow(parent, trials, narrow_rule)
    for trial in trials[: narrow_rule.count(len(trials))]:
        # Same active params in both spaces, each value allowed by the child.
        assert active_params(child, trial) == active_params(parent, trial)
        for name, value in active_params(parent, trial).items():
            assert contains(child[name].distribution, value), (name, value, child[name])


@settings(max_examples=150, deadline=None)
@given(cases())
def test_child_respects_min_width(case: tuple[Space, list[dict], NarrowRule]) -> None:
    parent, trials, narrow_rule = case
    child = narrow(parent, trials, narrow_rule)
    for c in child:
        if not isinstance(c.distribution, CategoricalDistribution):
            parent_width = width(parent[c.name].distribution)
            d = c.distribution  # an int box snaps to its grid within 1e-9 of a step (narrow.py says why)
            slack = 1e-9 * d.step if isinstance(d, IntDistribution) else 1e-12
            assert width(d) >= narrow_rule.min_width * parent_width * (1 - 1e-9) - slack


@settings(max_examples=150, deadline=None)
@given(cases())
def test_narrowing_is_deterministic_and_a_fixed_point(case: tuple[Space, list[dict], NarrowRule]) -> None:
    parent, trials, narrow_rule = case
    child = narrow(parent, trials, narrow_rule)
    assert narrow(parent, [dict(t) for t in trials], narrow_rule) == child
    # A value within a hair of a parent's edge is snapped onto it (that absorbs log/exp drift); the snapped
    # child cannot reproduce the snap, so the fixed point holds for values on an edge or clearly inside.
    assume(not any(within_a_hair_of_an_edge(parent, t) for t in trials))
    # Without min_width (which is relative to the parent's width), the same trials narrow the child to itself.
    flat = NarrowRule(narrow_rule.top_k, narrow_rule.top_fraction, narrow_rule.margin, 0.0)
    once = narrow(parent, trials, flat)
    assert narrow(once, trials, flat) == once

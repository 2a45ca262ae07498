"""Re-opening a side of the box (narrow's `grow` and `edge`): the box follows a best trial that sits against it,
never leaves the plan's space, and always holds the carried configs; the plan knobs and the stage note's words."""

from __future__ import annotations

import math
import re
from typing import Any

import optuna
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpsearch.search.plan.narrow import NarrowRule, narrow, parse_narrow_rule, rule_to_data, what_changed
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import PlanError, Space, active_params, is_active, parse_space
from hpsearch.search.plan.stage_logic import next_space
from tests.search.narrow_strategies import contains, spaces, values_in, width


def rule(**kw: Any) -> NarrowRule:
    return NarrowRule(**{"top_k": 3, "margin": 0.0, "min_width": 0.0, "grow": 1.0, "edge": 0.1, **kw})


PLAN_SPACE = parse_space({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                          "warmup_fraction": {"type": "float", "low": 0.0, "high": 0.2},
                          "batch_size": {"type": "int", "low": 32, "high": 512, "step": 32}})
BOX = parse_space({"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                   "warmup_fraction": {"type": "float", "low": 0.05, "high": 0.1},
                   "batch_size": {"type": "int", "low": 128, "high": 256, "step": 32}})


def test_a_best_trial_against_a_side_reopens_that_side_by_grow_widths() -> None:
    # Best trial at the top of the box in lr (log: one decade wide), at the bottom in warmup, inside in batch size.
    trials = [{"lr": 9.9e-3, "warmup_fraction": 0.05, "batch_size": 192},
              {"lr": 5e-3, "warmup_fraction": 0.07, "batch_size": 160}]
    child = narrow(BOX, trials, rule(top_k=2), bounds=PLAN_SPACE)
    lr, warm, batch = (child[n].distribution for n in ("lr", "warmup_fraction", "batch_size"))
    assert (lr.low, lr.high) == (pytest.approx(5e-3), pytest.approx(1e-1))  # up one box width (a decade)
    assert (warm.low, warm.high) == (0.0, pytest.approx(0.07))  # down 0.05, clipped at the plan's 0
    assert (batch.low, batch.high) == (160, 192)  # no side touched: narrowed as before
    assert what_changed(BOX["lr"].distribution, lr) == "moved (re-opened above)"
    assert what_changed(BOX["warmup_fraction"].distribution, warm) == "moved (re-opened below)"
    assert what_changed(BOX["batch_size"].distribution, batch) == "narrowed"


def test_no_growth_without_bounds_with_grow_zero_or_at_the_plans_edge() -> None:
    trials = [{"lr": 9.9e-3, "warmup_fraction": 0.05, "batch_size": 256}]
    assert narrow(BOX, trials, rule()) == narrow(BOX, trials, rule(grow=0.0), bounds=PLAN_SPACE)
    at_edge = narrow(PLAN_SPACE, [{"lr": 1.0, "warmup_fraction": 0.2, "batch_size": 512}], rule(), bounds=PLAN_SPACE)
    assert at_edge["lr"].distribution.high == 1.0 and at_edge["batch_size"].distribution.high == 512


def test_int_growth_stays_on_the_grid() -> None:
    child = narrow(BOX, [{"lr": 5e-3, "warmup_fraction": 0.07, "batch_size": 256}], rule(grow=0.5),
                   bounds=PLAN_SPACE)
    assert child["batch_size"].distribution == IntDistribution(256, 320, step=32)  # half of 128, up from 256


def test_what_changed_names_every_case() -> None:
    box = FloatDistribution(1.0, 2.0)
    assert what_changed(box, box) == "kept"
    assert what_changed(box, FloatDistribution(0.5, 2.5)) == "widened"
    assert what_changed(box, FloatDistribution(1.0, 3.0)) == "re-opened above"
    assert what_changed(CategoricalDistribution(["a", "b"]), CategoricalDistribution(["a"])) == \
        "narrowed (1 choice(s) dropped)"
    assert what_changed(None, box) == "added" and what_changed(box, None) == "dropped"


def test_grow_and_edge_in_the_plan_file() -> None:
    parsed = parse_narrow_rule({"top_k": 4, "grow": 0.5, "edge": 0.2})
    assert (parsed.grow, parsed.edge) == (0.5, 0.2)
    assert parse_narrow_rule(rule_to_data(parsed)) == parsed
    defaults = parse_narrow_rule({"top_k": 4})
    assert (defaults.grow, defaults.edge) == (NarrowRule.grow, NarrowRule.edge)
    for bad, message in [({"grow": -1}, "narrow.grow: must be a number in [0, 10]"),
                         ({"grow": "twice"}, "narrow.grow: must be a number in [0, 10]"),
                         ({"grow": True}, "narrow.grow"), ({"edge": 0.6}, "narrow.edge: must be a number in [0, 0.5]"),
                         ({"edge": None}, "narrow.edge")]:
        with pytest.raises(PlanError, match=re.escape(message)) as e:
            parse_narrow_rule({"top_k": 2, **bad})
        assert "\n" not in str(e.value)




# ---- properties -------------------------------------------------------------------------------------------


@st.composite
def grow_cases(draw: st.DrawFn) -> tuple[Space, Space, list[dict[str, Any]], NarrowRule, int]:
    outer = draw(spaces())

    def trials_in(space: Space, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            trial: dict[str, Any] = {}
            for p in space:
                if is_active(p, trial):
                    trial[p.name] = draw(values_in(p.distribution))
            out.append(trial)
        return out

    # The previous stage's box: any narrowing of the plan's space.
    box = narrow(outer, trials_in(outer, draw(st.integers(1, 6))),
                 rule(top_k=draw(st.integers(1, 6)), margin=draw(st.floats(0, 1)),
                      min_width=draw(st.floats(0, 0.5)), grow=0.0))
    trials = trials_in(box, draw(st.integers(1, 10)))
    narrow_rule = rule(top_k=draw(st.integers(1, 6)), margin=draw(st.floats(0, 1)),
                       min_width=draw(st.floats(0, 0.5)), grow=draw(st.floats(0, 3)), edge=draw(st.floats(0, 0.5)))
    return outer, box, trials, narrow_rule, draw(st.integers(0, 4))


@settings(max_examples=60, deadline=None)
@given(grow_cases())
def test_the_box_never_leaves_the_plans_space(case: tuple[Space, Space, list[dict], NarrowRule, int]) -> None:
    outer, box, trials, narrow_rule, keep = case
    for c in narrow(box, trials, narrow_rule, keep=keep, bounds=outer):
        o, d = outer[c.name].distribution, c.distribution
        assert type(d) is type(o)
        if isinstance(d, CategoricalDistribution):
            assert set(d.choices) <= set(o.choices)
        else:
            assert o.low <= d.low <= d.high <= o.high and d.log == o.log
            if isinstance(d, IntDistribution):
                assert (d.low - o.low) % o.step == 0 and (d.high - o.low) % o.step == 0


@settings(max_examples=60, deadline=None)
@given(grow_cases())
def test_the_box_holds_the_carried_configs(case: tuple[Space, Space, list[dict], NarrowRule, int]) -> None:
    outer, box, trials, narrow_rule, keep = case
    child = narrow(box, trials, narrow_rule, keep=keep, bounds=outer)
    for trial in trials[: max(keep, narrow_rule.count(len(trials)))]:
        assert active_params(child, trial) == active_params(box, trial)
        for name, value in active_params(box, trial).items():
            assert contains(child[name].distribution, value), (name, value, child[name])


@settings(max_examples=60, deadline=None)
@given(grow_cases())
def test_a_box_whose_best_trial_sits_at_an_edge_grows_on_that_side(
        case: tuple[Space, Space, list[dict], NarrowRule, int]) -> None:
    outer, box, trials, narrow_rule, keep = case
    assume(narrow_rule.grow > 0.01)
    child = narrow(box, trials, narrow_rule, keep=keep, bounds=outer)
    best = trials[0]
    for c in child:
        p, o, d = box[c.name].distribution, outer[c.name].distribution, c.distribution
        if isinstance(d, CategoricalDistribution) or c.name not in best or not is_active(box[c.name], best):
            continue
        to = math.log if p.log else float
        span = width(p)
        assume(span > 1e-6)
        where = to(best[c.name])
        if where - to(p.low) <= narrow_rule.edge * span and o.low < p.low:
            assert d.low < p.low, (c.name, best[c.name], p, d)
        if to(p.high) - where <= narrow_rule.edge * span and o.high > p.high:
            assert d.high > p.high, (c.name, best[c.name], p, d)


def test_next_space_reopens_within_the_plans_space() -> None:
    plan = Plan.from_dict({
        "name": "grow", "objective": "synthetic", "base": {"epochs": 2},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
        "stages": [{"name": "coarse", "n_trials": 4},
                   {"name": "fine", "n_trials": 4, "narrow": {"top_k": 2}},
                   {"name": "refine", "n_trials": 4,
                    "narrow": {"top_k": 2, "margin": 0, "min_width": 0, "grow": 1.0}}]})
    fine_box = parse_space({"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}})
    lr = FloatDistribution(1e-3, 1e-2, log=True)
    trials = [optuna.trial.create_trial(state=TrialState.COMPLETE, value=v, params={"lr": x}, distributions={"lr": lr})
              for v, x in [(0.9, 9.5e-3), (0.8, 5e-3), (0.7, 2e-3)]]
    child = next_space(plan, 2, fine_box, trials)["lr"].distribution
    assert child.low == pytest.approx(5e-3) and child.high == pytest.approx(1e-1)  # a decade up, the box's width
    trials[0] = optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.9, params={"lr": 6e-3},
                                          distributions={"lr": lr})
    assert next_space(plan, 2, fine_box, trials)["lr"].distribution.high == pytest.approx(6e-3)  # inside: no growth

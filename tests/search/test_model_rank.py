"""Narrowing around the top trials by smoothed value (narrow's `smooth`): a lucky single run among bad neighbours
loses its rank, the carried configs always lie in the box, the box never leaves the plan's space; the knob in
the plan file."""

from __future__ import annotations

import re
from typing import Any

import optuna
import optuna_dashboard
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpsearch.search.plan.model_rank import box_trials, smoothed_values
from hpsearch.search.plan.narrow import NarrowRule, narrow, parse_narrow_rule, rule_to_data
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import PlanError, Space, active_params, is_active, parse_space
from hpsearch.search.plan.stage_logic import next_space, slot_templates
from hpsearch.search.plan.stages import stage_to_data
from hpsearch.search.run.notes import write_stage_note
from tests.search.narrow_strategies import contains, spaces, values_in

SPACE = parse_space({"momentum": {"type": "float", "low": 0.0, "high": 0.99},
                     "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                     "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]}})


def test_a_lucky_run_among_bad_neighbours_loses_its_rank() -> None:
    # 0.1 is one lucky run among poor ones; 0.8 is good throughout.
    trials = [{"momentum": x, "lr": 1e-2, "optimizer": "sgd"} for x in (0.10, 0.80, 0.82, 0.78, 0.12, 0.08, 0.11)]
    values = [0.95, 0.90, 0.89, 0.88, 0.50, 0.52, 0.51]
    smoothed = smoothed_values(SPACE, trials, values, 0.05)
    assert smoothed[1] > smoothed[0]
    top = box_trials(SPACE, trials, values, count=2, carry=0, bandwidth=0.05)
    assert sorted(t["momentum"] for t in top) == [0.80, 0.82]
    # Without smoothing the lucky run leads, as before.
    assert box_trials(SPACE, trials, values, count=2, carry=0, bandwidth=0.0) == trials[:2]


def test_only_trials_with_the_same_choices_are_neighbours() -> None:
    trials = [{"momentum": 0.5, "lr": 1e-2, "optimizer": "sgd"}, {"momentum": 0.5, "lr": 1e-2, "optimizer": "adamw"}]
    assert smoothed_values(SPACE, trials, [1.0, 0.0], 0.5) == [1.0, 0.0]


def test_minimized_metrics_rank_lowest_first_and_carried_configs_join_the_top() -> None:
    trials = [{"momentum": x, "lr": 1e-2, "optimizer": "sgd"} for x in (0.1, 0.5, 0.9)]
    top = box_trials(SPACE, trials, [1.0, 2.0, 3.0], count=1, carry=2, bandwidth=0.01, minimize=True)
    assert [t["momentum"] for t in top] == [0.1, 0.5]
    # Pruned trials (after the first `done`) are never smoothed into the top, only carried.
    top = box_trials(SPACE, trials, [3.0, 2.0, 1.0], count=1, carry=0, bandwidth=0.01, done=2)
    assert [t["momentum"] for t in top] == [0.1]


def test_smooth_in_the_plan_file() -> None:
    parsed = parse_narrow_rule({"top_k": 4, "smooth": 0.1})
    assert parsed.smooth == 0.1 and parse_narrow_rule(rule_to_data(parsed)) == parsed
    assert parse_narrow_rule({"top_k": 4}).smooth == NarrowRule.smooth == 0.0
    assert "smooth" not in rule_to_data(parse_narrow_rule({"top_k": 4}))  # a plan from before keeps its form
    for bad in (-0.1, 1.5, "wide", True, None):
        with pytest.raises(PlanError, match=re.escape("narrow.smooth: must be a number in [0, 1]")) as e:
            parse_narrow_rule({"top_k": 2, "smooth": bad})
        assert "\n" not in str(e.value)


def test_next_space_centres_on_the_smoothed_best_and_keeps_the_carried_config() -> None:
    plan = Plan.from_dict({
        "name": "smooth", "objective": "synthetic", "base": {"epochs": 2},
        "space": {"momentum": {"type": "float", "low": 0.0, "high": 0.99}},
        "stages": [{"name": "coarse", "n_trials": 8},
                   {"name": "fine", "n_trials": 4, "carry": 1,
                    "narrow": {"top_k": 2, "margin": 0, "min_width": 0, "grow": 0, "smooth": 0.05}}]})
    d = FloatDistribution(0.0, 0.99)
    pairs = [(0.95, 0.1), (0.90, 0.8), (0.89, 0.82), (0.88, 0.78), (0.5, 0.12), (0.52, 0.08), (0.51, 0.11)]
    trials = [optuna.trial.create_trial(state=TrialState.COMPLETE, value=v, params={"momentum": x},
                                        distributions={"momentum": d}) for v, x in pairs]
    child = next_space(plan, 1, plan.space, trials)["momentum"].distribution
    # The box spans the smoothed best two (0.8, 0.82) and the carried raw best (0.1).
    assert (child.low, child.high) == (pytest.approx(0.1), pytest.approx(0.82))


def final_plan(smooth: Any) -> dict[str, Any]:
    return {"name": "smooth", "objective": "synthetic", "base": {"epochs": 2},
            "space": {"momentum": {"type": "float", "low": 0.0, "high": 0.99}},
            "stages": [{"name": "coarse", "n_trials": 8},
                       {"name": "final", "kind": "final", "top": 2, "seeds": 1, "smooth": smooth}]}


def test_the_final_stage_retrains_the_configs_best_by_smoothed_value() -> None:
    d = FloatDistribution(0.0, 0.99)
    pairs = [(0.95, 0.1), (0.90, 0.8), (0.89, 0.82), (0.88, 0.78), (0.5, 0.12), (0.52, 0.08), (0.51, 0.11)]
    trials = [optuna.trial.create_trial(state=TrialState.COMPLETE, value=v, params={"momentum": x},
                                        distributions={"momentum": d}) for v, x in pairs]
    picked = [fixed["momentum"] for fixed, _ in slot_templates(Plan.from_dict(final_plan(0.05)), 1, trials)]
    assert sorted(picked) == [0.8, 0.82]
    assert [fixed["momentum"] for fixed, _ in slot_templates(Plan.from_dict(final_plan(0)), 1, trials)] == [0.1, 0.8]


def test_final_smooth_in_the_plan_file() -> None:
    plan = Plan.from_dict(final_plan(0.2))
    assert plan.stages[-1].smooth == 0.2
    assert stage_to_data(plan.stages[-1])["smooth"] == 0.2 and "smooth" not in stage_to_data(
        Plan.from_dict(final_plan(0)).stages[-1])
    for bad in (-1, 2, "much", True):
        with pytest.raises(PlanError, match=re.escape("stages[1].smooth: must be a number in [0, 1]")) as e:
            Plan.from_dict(final_plan(bad))
        assert "\n" not in str(e.value)


def test_the_stage_notes_say_what_was_smoothed() -> None:
    plan = Plan.from_dict(final_plan(0.2))
    study = optuna.create_study(direction="maximize")
    write_stage_note(study, plan.stages[1], None, plan.space)
    assert "x 1 seed(s), ranked by their mean, picked by smoothed value (smooth 0.2) |" in optuna_dashboard.get_note(
        study)
    rule = parse_narrow_rule({"top_k": 2, "smooth": 0.2})
    assert rule_to_data(rule)["smooth"] == 0.2  # the search stage's note shows its narrowing rule whole


# ---- properties -------------------------------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[Space, list[dict[str, Any]], list[float], NarrowRule, int]:
    space = draw(spaces())
    trials = []
    for _ in range(draw(st.integers(1, 12))):
        trial: dict[str, Any] = {}
        for p in space:
            if is_active(p, trial):
                trial[p.name] = draw(values_in(p.distribution))
        trials.append(trial)
    values = draw(st.lists(st.floats(-10, 10), min_size=len(trials), max_size=len(trials)))
    rule = NarrowRule(top_k=draw(st.integers(1, 6)), margin=draw(st.floats(0, 1)), min_width=draw(st.floats(0, 0.5)),
                      grow=0.0, smooth=draw(st.floats(0, 1)))
    return space, trials, values, rule, draw(st.integers(0, 4))


@settings(max_examples=80, deadline=None)
@given(cases())
def test_the_smoothed_box_holds_the_carried_configs_and_stays_in_the_space(
        case: tuple[Space, list[dict], list[float], NarrowRule, int]) -> None:
    space, trials, values, rule, carry = case
    top = box_trials(space, trials, values, rule.count(len(trials)), carry, rule.smooth)
    child = narrow(space, top, rule, keep=len(top))
    for trial in trials[:carry]:
        assert trial in top
        assert active_params(child, trial) == active_params(space, trial)
        for name, value in active_params(space, trial).items():
            assert contains(child[name].distribution, value), (name, value, child[name])
    for c in child:
        o, d = space[c.name].distribution, c.distribution
        if isinstance(d, CategoricalDistribution):
            assert set(d.choices) <= set(o.choices)
        else:
            assert o.low <= d.low <= d.high <= o.high
            if isinstance(d, IntDistribution):
                assert (d.low - o.low) % o.step == 0


@settings(max_examples=80, deadline=None)
@given(cases())
def test_smoothed_values_lie_within_the_values(case: tuple[Space, list[dict], list[float], NarrowRule, int]) -> None:
    space, trials, values, rule, _ = case
    for s in smoothed_values(space, trials, values, rule.smooth):
        assert min(values) - 1e-9 <= s <= max(values) + 1e-9

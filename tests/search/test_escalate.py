"""A search stage's escalated form (`escalate`): taken where the ranking before it did not hold within its runs, or
the stage before took its own; more fidelity and fewer trials over the previous space; the plan-file knobs and
their one-line errors; what the note, the status and the views say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
import pytest

from hpsearch.objectives.objective import OBJECTIVES, Objective
from hpsearch.search.plan.agreement import Agreement
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import PlanError
from hpsearch.search.plan.stage_logic import ESCALATED, escalates
from hpsearch.search.plan.stages import Escalation, SearchStage, stage_to_data
from hpsearch.search.run.campaign import Campaign
from hpsearch.search.watch.report import write_report
from hpsearch.search.watch.status import campaign_status
from tests.watch.helpers import journal, run_campaign


def crossed(params: dict[str, Any], report: Any) -> float:
    """Ranks reverse between the middle and the end of every run: a fidelity that misleads."""
    for step in range(1, params["epochs"] + 1):
        report(params["x"] if 2 * step <= params["epochs"] else 1 - params["x"], step)
    return 1 - params["x"]


def steady(params: dict[str, Any], report: Any) -> float:
    for step in range(1, params["epochs"] + 1):
        report(params["x"] * step, step)
    return params["x"] * params["epochs"]


OBJECTIVES["test-crossed"] = Objective(crossed)
OBJECTIVES["test-steady"] = Objective(steady)
ESCALATE = {"below": 0.5, "n_trials": 3, "overrides": {"epochs": 8}, "sampler": "random", "pruner": "none"}


def plan_data(objective: str, **fine: Any) -> dict[str, Any]:
    return {"name": "esc", "objective": objective, "metric": {"name": "score", "direction": "maximize"}, "seed": 0,
            "base": {"epochs": 4, "seed": 0}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "stages": [{"name": "coarse", "n_trials": 8, "sampler": "random"},
                       {"name": "fine", "n_trials": 6, "narrow": {"top_k": 2, "margin": 0.0, "min_width": 0.05},
                        "carry": 1, "sampler": "random", "pruner": {"name": "median", "n_startup_trials": 2}, **fine},
                       {"name": "final", "kind": "final", "top": 1, "seeds": 1}]}


def test_a_ranking_that_did_not_hold_opens_the_escalated_form(tmp_path: Path) -> None:
    storage = journal(tmp_path / "j.journal")
    plan = run_campaign(storage, tmp_path / "a", plan_data("test-crossed", escalate=ESCALATE))
    fine = optuna.load_study(study_name="esc.fine", storage=storage)
    assert fine.user_attrs[ESCALATED] is True and fine.user_attrs["n_trials"] == 3
    assert len(fine.trials) == 3 and all(len(t.intermediate_values) == 8 for t in fine.trials)  # its fidelity
    assert fine.user_attrs["space"] == optuna.load_study(study_name="esc.coarse", storage=storage).user_attrs[
        "space"]  # not narrowed from the ranking that did not hold
    note = optuna_dashboard.get_note(fine)
    assert "| budget | 3 trials |" in note and "| fidelity overrides | epochs=8 |" in note
    assert "| escalated | yes: the ranking before it did not hold" in note and "rho = -1.00" in note
    view = Campaign(storage, plan).stage(1)
    assert view is not None and isinstance(view.stage, SearchStage) and view.stage.escalated
    status = {s.name: s for s in campaign_status(storage, "esc")}
    assert (status["fine"].n_trials, status["fine"].finished) == (3, 3)
    text = write_report(storage, "esc", tmp_path / "out", "hpsearch report esc", None).read_text()
    assert text.count("<p>Escalated: the ranking before it did not hold") == 1


def test_a_ranking_that_held_opens_the_planned_form(tmp_path: Path) -> None:
    storage = journal(tmp_path / "j.journal")
    run_campaign(storage, tmp_path / "a", plan_data("test-steady", escalate=ESCALATE))
    fine = optuna.load_study(study_name="esc.fine", storage=storage)
    assert ESCALATED not in fine.user_attrs and len(fine.trials) == 6
    assert "| escalation | not taken: the ranking before it was not measured below 0.5 |" in optuna_dashboard.get_note(
        fine)


def test_escalation_follows_an_escalated_stage_and_needs_a_measured_low_ranking() -> None:
    data = plan_data("test-steady", escalate=ESCALATE)
    data["stages"].insert(2, {"name": "refine", "n_trials": 4, "escalate": ESCALATE})
    plan = Plan.from_dict(data)
    coarse, fine, refine = plan.stages[:3]
    low, high = Agreement(0.1, 20, 4, 8), Agreement(0.9, 20, 4, 8)
    assert escalates(plan, 1, coarse, low) and not escalates(plan, 1, coarse, high)
    assert not escalates(plan, 1, coarse, None)  # too few trials to tell: the planned form
    assert isinstance(fine, SearchStage) and escalates(plan, 2, fine.escalated_form(), high)  # once escalated, stays
    assert not escalates(plan, 3, refine, low)  # a final stage has no escalated form
    form = fine.escalated_form()
    assert (form.n_trials, form.overrides, form.narrow, form.carry) == (3, {"epochs": 8}, None, 1)
    assert (form.sampler.name, form.pruner.name) == ("random", "none")


def test_the_plan_file_form_reads_back_and_old_plans_keep_their_data() -> None:
    plan = Plan.from_dict(plan_data("test-steady", escalate={"n_trials": 2, "overrides": {"epochs": 8}}))
    fine = plan.stages[1]
    assert isinstance(fine, SearchStage) and fine.escalate == Escalation(2, {"epochs": 8}, 0.5, None)
    assert Plan.from_dict(plan.to_dict()) == plan
    assert "escalate" not in stage_to_data(Plan.from_dict(plan_data("test-steady")).stages[1])


@pytest.mark.parametrize(("escalate", "message"), [
    ([1], "stages[1].escalate: expected a mapping like {below: 0.5"),
    ({"n_trials": 2}, "stages[1].escalate: missing 'overrides'; give the trials and the fidelity"),
    ({"overrides": {"epochs": 8}}, "stages[1].escalate: missing 'n_trials'"),
    ({**ESCALATE, "top_k": 3}, "stages[1].escalate.top_k: unknown key; valid keys are below, n_trials"),
    ({**ESCALATE, "below": 2}, "stages[1].escalate.below: must be a number in [-1, 1]"),
    ({**ESCALATE, "n_trials": 0}, "stages[1].escalate.n_trials"),
    ({**ESCALATE, "overrides": {"x": 0.5}}, "stages[1].escalate.overrides.x: 'x' is searched in the space"),
    ({**ESCALATE, "sampler": "annealing"}, "stages[1].escalate.sampler"),
    ({**ESCALATE, "pruner": "sometimes"}, "stages[1].escalate.pruner"),
])
def test_bad_escalations_are_one_line(escalate: Any, message: str) -> None:
    with pytest.raises(PlanError, match=re.escape(message)) as e:
        Plan.from_dict(plan_data("test-steady", escalate=escalate))
    assert "\n" not in str(e.value)


def test_the_first_search_stage_has_nothing_to_escalate_from() -> None:
    data = plan_data("test-steady")
    data["stages"][0]["escalate"] = ESCALATE
    with pytest.raises(PlanError, match=re.escape("stages[0].escalate: there is no search stage before it")):
        Plan.from_dict(data)

"""The plan's objective, checked against what the plan asks of it."""

from __future__ import annotations

from hpsearch.objectives.objective import Objective, get_objective
from hpsearch.search.plan import Plan, StageKind
from hpsearch.search.space import PlanError


def objective_for(plan: Plan) -> Objective:
    """The objective `plan` names; PlanError when it has an `lr_range_test` stage the objective cannot serve."""
    objective = get_objective(plan.objective)
    range_stage = next((s for s in plan.stages if s.kind == StageKind.LR_RANGE_TEST), None)
    if range_stage is not None and objective.lr_range is None:
        raise PlanError(f"stage {range_stage.name!r}: an lr_range_test stage needs a range test, and objective "
                        f"{plan.objective!r} provides none; give an Objective(train=..., lr_range=...) or drop "
                        "the stage and set the LR bounds in the space")
    return objective

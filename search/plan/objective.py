"""The plan's objective, checked against what the plan asks of it."""

from __future__ import annotations

from hpsearch.objectives.objective import Objective, get_objective
from hpsearch.search.plan.plan import Plan, StageKind
from hpsearch.search.plan.space import PlanError


def objective_for(plan: Plan) -> Objective:
    """The objective `plan` names; PlanError when it cannot be imported here, or when the plan has an
    `lr_range_test` stage the objective cannot serve."""
    objective = plan.objective_fn or get_objective(plan.objective)  # a stored plan's: import it, or say why not
    range_stage = next((s for s in plan.stages if s.kind == StageKind.LR_RANGE_TEST), None)
    if range_stage is not None and objective.lr_range is None:
        raise PlanError(f"stage {range_stage.name!r}: an lr_range_test stage needs a range test, and objective "
                        f"{plan.objective!r} provides none; give an Objective(train=..., lr_range=...) or drop "
                        "the stage and set the LR bounds in the space")
    if range_stage is not None and objective.simple:
        raise PlanError(f"stage {range_stage.name!r}: an lr_range_test stage trains a TrainConfig; objective "
                        f"{plan.objective!r} is a simple function of params, so drop the stage and set the "
                        "LR bounds in the space")
    return objective

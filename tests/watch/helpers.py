"""A tiny synthetic campaign run in-process, with the trial and stage notes the worker hooks write."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from hpsearch.objectives.objective import get_objective
from hpsearch.search.campaign import claim, init_campaign, next_space, open_stage, rank, stage_complete, stage_view
from hpsearch.search.plan import Plan
from hpsearch.search.trial_runner import run_trial
from tests.campaign.helpers import PLAN as CAMPAIGN_PLAN

# The campaign tests' plan, smaller: fewer trials keep the notes and report tests quick.
PLAN = {
    **CAMPAIGN_PLAN,
    "name": "watch",
    "stages": [
        {**CAMPAIGN_PLAN["stages"][0], "n_trials": 8},
        {**CAMPAIGN_PLAN["stages"][1], "n_trials": 5, "narrow": {"top_k": 3, "margin": 0.2, "min_width": 0.05},
         "carry": 1},
        CAMPAIGN_PLAN["stages"][2],
    ],
}


def run_campaign(storage: BaseStorage, artifacts: Path, data: dict | None = None) -> Plan:
    """Run every stage of the plan to the end through the worker's own trial runner (notes and curves too)."""
    plan = Plan.from_dict(data or PLAN)
    init_campaign(storage, plan)
    objective = get_objective(plan.objective)
    for index in range(len(plan.stages)):
        view = stage_view(storage, plan, index)
        if view is None:
            previous = stage_view(storage, plan, index - 1)
            open_stage(storage, plan, index, next_space(plan, index, previous), previous.space,
                       rank(previous.trials))
            view = stage_view(storage, plan, index)
        while not stage_complete(view, max_retry=0):
            trial = claim(view)
            assert trial is not None
            run_trial(plan, view, trial, objective, device="cpu", data_dir=None, stop=threading.Event(),
                      artifacts=artifacts)
            view = stage_view(storage, plan, index)
    return plan


def journal(path: Path) -> BaseStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))

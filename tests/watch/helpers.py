"""A tiny synthetic campaign run in-process, with the trial and stage notes the worker hooks write."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from hpsearch.objectives.objective import get_objective
from hpsearch.search.plan.plan import Plan
from hpsearch.search.run.campaign import Campaign
from hpsearch.search.run.trial_runner import run_trial
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
    campaign = Campaign(storage, plan)
    campaign.init()
    objective = get_objective(plan.objective)
    for index in range(len(plan.stages)):
        view = campaign.stage(index)
        if view is None:
            campaign.open(index)
            view = campaign.stage(index)
        while not campaign.complete(view, max_retry=0):
            claimed = campaign.claim(view)
            assert claimed is not None
            run_trial(plan, view, claimed.trial, objective, device="cpu", data_dir=None, stop=threading.Event(),
                      artifacts=artifacts)
            view = campaign.stage(index)
    return plan


def journal(path: Path) -> BaseStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))

"""A tiny synthetic campaign run in-process, with the trial and stage notes the worker hooks write."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from hpsearch.search.campaign import claim, init_campaign, next_space, open_stage, rank, stage_complete, stage_view
from hpsearch.search.objective import get_objective
from hpsearch.search.plan import Plan
from hpsearch.search.trial_runner import run_trial

PLAN = {
    "name": "watch",
    "objective": "synthetic",
    "seed": 0,
    "base": {"width": 16, "data_fraction": 0.2, "batch_size": 32, "val_fraction": 0.25, "device": "cpu"},
    "space": {
        "lr": {"type": "float", "low": 1.0e-3, "high": 3.0, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
        "momentum": {"type": "float", "low": 0.5, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
        "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-1, "log": True},
    },
    "stages": [
        {"name": "coarse", "n_trials": 8, "overrides": {"epochs": 3}, "sampler": "random",
         "pruner": {"name": "median", "n_startup_trials": 3}},
        {"name": "fine", "n_trials": 5, "overrides": {"epochs": 4}, "sampler": {"name": "tpe", "n_startup_trials": 3},
         "narrow": {"top_k": 3, "margin": 0.2, "min_width": 0.05}, "carry": 1},
        {"name": "final", "kind": "final", "top": 2, "seeds": 2, "overrides": {"epochs": 5}},
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

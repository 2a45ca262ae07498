"""Each search stage trains with its own seed, never one of the final stage's repeats: a carried config and a final
re-training are measured on fresh noise, not copies of the run that picked them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from hypothesis import given
from hypothesis import strategies as st

from hpsearch.search.plan.plan import MAX_SEED, Plan
from hpsearch.search.plan.stage_logic import slot_templates, stage_seed
from hpsearch.search.plan.stages import MAX_STAGE_TRIALS

FULL = {"epochs": 6, "data_fraction": 1.0}
STAGES = [{"name": "wide", "n_trials": 4, "overrides": FULL},
          {"name": "near", "n_trials": 3, "overrides": FULL, "carry": 2, "narrow": {"top_k": 2}},
          {"name": "final", "kind": "final", "top": 2, "seeds": 3, "overrides": FULL}]


def plan(seed: int = 7, **changes: Any) -> Plan:
    return Plan.from_dict({"name": "seeds", "objective": "synthetic", "base": {"width": 8, "seed": seed},
                           "space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
                           "stages": STAGES, **changes})


def finished(lrs: list[float], seed: int) -> list[optuna.trial.FrozenTrial]:
    return [optuna.trial.create_trial(params={"lr": lr}, value=1 - i / 10, user_attrs={"config": {"seed": seed}},
                                      distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)})
            for i, lr in enumerate(lrs)]


def test_every_slot_of_a_search_stage_has_the_stages_seed_and_carried_configs_a_fresh_one() -> None:
    p = plan()
    wide = slot_templates(p, 0, [])
    assert [o for _, o in wide] == [{"seed": stage_seed(p, 0)}] * 4
    near = slot_templates(p, 1, finished([0.1, 0.2, 0.3], stage_seed(p, 0)))
    assert [f for f, _ in near] == [{"lr": 0.1}, {"lr": 0.2}, {}]  # the best two carried, then a free slot
    assert [o for _, o in near] == [{"seed": stage_seed(p, 1)}] * 3
    assert stage_seed(p, 1) != stage_seed(p, 0)
    final = slot_templates(p, 2, finished([0.1, 0.2], stage_seed(p, 1)))
    assert [o["seed"] for _, o in final] == [7, 8, 9, 7, 8, 9]  # the base's seeds, which no search stage used
    assert stage_seed(p, 1) not in {7, 8, 9}


NO_SEED = """
from dataclasses import dataclass

@dataclass(frozen=True)
class NoSeedConfig:
    lr: float = 0.1
    epochs: int = 2
    data_fraction: float = 1.0

def train(config: NoSeedConfig, *, data_dir=None, on_epoch=None, on_step=None):
    raise NotImplementedError
"""


def test_an_objective_whose_config_has_no_seed_gets_none(tmp_path: Path) -> None:
    (tmp_path / "noseed.py").write_text(NO_SEED)
    p = Plan.from_dict({"name": "seeds", "objective": "noseed:train",
                        "metric": {"name": "acc", "direction": "maximize"}, "base": {},
                        "space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
                        "stages": STAGES[:2]}, search_path=(tmp_path,))
    assert [o for _, o in slot_templates(p, 0, [])] == [{}] * 4


@given(st.integers(0, MAX_SEED))
def test_stage_seeds_are_31_bit_distinct_and_clear_of_the_final_stages(base: int) -> None:
    seeds = [stage_seed(plan(base), i) for i in range(6)]
    assert len(set(seeds)) == 6
    assert all(0 <= s < 2**31 and not base <= s < base + MAX_STAGE_TRIALS for s in seeds)
    assert seeds == [stage_seed(plan(base), i) for i in range(6)]  # the same plan, the same seeds, on any worker

"""A PostgreSQL outage shorter than the grace period loses no trial: the running trials' reports and writes
wait for the database and go on, instead of being abandoned and retried."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from tests.campaign.faults import all_trials
from tests.campaign.helpers import PLAN, check_campaign, start_workers, wait_all, write_plan
from tests.campaign.test_workers import STEADY_SPACE

pytestmark = pytest.mark.slow
STAGES = [{**PLAN["stages"][0], "n_trials": 2, "overrides": {"epochs": 4}, "pruner": "none"},
          {**PLAN["stages"][1], "n_trials": 2, "carry": 2}, {**PLAN["stages"][2], "top": 1, "seeds": 1}]


def test_an_outage_shorter_than_the_grace_period_loses_no_trial(pg_url: str, pg_server, tmp_path: Path) -> None:
    # LRs that never diverge: a coarse stage of two diverging trials would end the campaign before the outage.
    plan = write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE, stages=STAGES)
    assert main(["init", str(plan), "--storage", pg_url]) == 0
    # Epochs of 2 s, a grace period of 12 s: a 5 s outage falls in the middle of the first trials' epochs.
    procs = start_workers(2, pg_url, sleep=2.0, log_dir=tmp_path,
                          extra=("--grace-period", "12", "--no-artifacts", "--no-checkpoints"))
    try:
        deadline = time.monotonic() + 120
        while not any(t.state == TrialState.RUNNING and t.intermediate_values for t in all_trials(pg_url)):
            assert time.monotonic() < deadline, "no trial got going"
            time.sleep(0.2)
        pg_server.stop()
        time.sleep(5)
        pg_server.start()
        assert wait_all(procs, timeout=180) == [0, 0]
    finally:
        if not pg_server.is_running():
            pg_server.start()
    logs = "".join((tmp_path / f"worker-{i}.log").read_text() for i in range(2))
    assert "storage unreachable" in logs, logs  # the outage happened while they trained
    trials = all_trials(pg_url)
    assert not [t for t in trials if t.state == TrialState.FAIL], logs  # nothing abandoned, nothing retried
    check_campaign(pg_url)

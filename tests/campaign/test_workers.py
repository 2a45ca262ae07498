"""Many worker processes on one campaign: exact budgets, race-free hand-over, recovery from kills and restarts."""

import os
import signal
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.search.watch.status import campaign_status
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from tests.campaign.faults import duplicates
from tests.campaign.helpers import PLAN, check_campaign, finished_count, start_workers, wait_all, write_plan

pytestmark = pytest.mark.slow

# SGD at LRs that never diverge (the synthetic AdamW does above 0.05): a kill or a signal then lands
# mid-trial, never just after a quick divergence, which would be a legitimate pruned result.
STEADY_SPACE = {**PLAN["space"], "lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
                "optimizer": {"type": "categorical", "choices": ["sgd"]}}


def test_eight_workers_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", pg_url]) == 0
    assert wait_all(start_workers(8, pg_url, log_dir=tmp_path)) == [0] * 8
    check_campaign(pg_url)


def test_four_workers_on_the_journal_file(tmp_path: Path) -> None:
    journal = str(tmp_path / "campaign.journal")
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", journal]) == 0
    assert wait_all(start_workers(4, journal, log_dir=tmp_path)) == [0] * 4
    check_campaign(journal)


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_a_sigkilled_worker_is_recovered_and_the_budget_holds(backend: str, pg_url: str, tmp_path: Path) -> None:
    url = pg_url if backend == "postgresql" else str(tmp_path / "c.journal")
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE)), "--storage", url]) == 0
    victim = start_workers(1, url, sleep=0.4, log_dir=tmp_path)[0]
    deadline = time.monotonic() + 60
    storage = open_storage(url)
    while not any(t.state == TrialState.RUNNING for s in storage.get_all_studies()
                  for t in storage.get_all_trials(internals.study_id(s))):
        assert time.monotonic() < deadline, "no trial ever started"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its process, mid-trial, no goodbye
    victim.wait()
    assert wait_all(start_workers(2, url, sleep=0.01)) == [0, 0]
    check_campaign(url)
    failed = [t for s in storage.get_all_studies() for t in storage.get_all_trials(internals.study_id(s))
              if t.state == TrialState.FAIL]
    assert failed, "the killed trial should have been failed and retried"
    assert duplicates(url) == []  # the retry and the orphan repair did not both queue the slot


def test_postgresql_restart_mid_campaign(pg_url: str, pg_server, tmp_path: Path) -> None:
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", pg_url]) == 0
    procs = start_workers(3, pg_url, sleep=0.05, log_dir=tmp_path)
    deadline = time.monotonic() + 60
    while finished_count(pg_url, 0) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    pg_server.restart()
    assert wait_all(procs) == [0, 0, 0]
    check_campaign(pg_url)
    for i in range(3):  # one line when the outage starts and one when it ends, no driver dumps
        log = (tmp_path / f"worker-{i}.log").read_text()
        assert "Traceback" not in log and "exceeding max length" not in log, log
        assert log.count("reachable again") <= log.count("storage unreachable") <= 2, log


@pytest.mark.parametrize("per_device", ["1", "2"])  # the worker loop in the command's process, or in children
def test_sigterm_hands_the_trial_back_and_exits_143(per_device: str, tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE)), "--storage", journal]) == 0
    proc = start_workers(1, journal, sleep=1.5, log_dir=tmp_path, extra=("--per-device", per_device))[0]
    storage = open_storage(journal)
    deadline = time.monotonic() + 60
    while not any(t.state == TrialState.RUNNING for s in storage.get_all_studies()
                  for t in storage.get_all_trials(internals.study_id(s))):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    # Not 0: the campaign is not done, and a launcher must replace the worker (a Kubernetes Indexed Job would
    # count an index that exits 0 as complete).
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    trials = [t for s in storage.get_all_studies() for t in storage.get_all_trials(internals.study_id(s))]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    handed_back = [t for t in trials if t.state == TrialState.FAIL]
    assert handed_back and "SIGTERM" in handed_back[0].user_attrs["fail_reason"]
    assert [t for t in trials if t.state == TrialState.WAITING and t.system_attrs.get("failed_trial") is not None]
    assert "handed back for a retry" in (tmp_path / "worker-0.log").read_text()
    # Status does not count a handed-back trial as failed: its retry will run it.
    coarse = campaign_status(storage, "syn")[0]
    assert coarse.counts.get("FAIL", 0) == 0 and coarse.counts["RETRIED"] == len(handed_back)

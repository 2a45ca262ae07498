"""A worker's log lines read alike on its own stderr and in `hpsearch run`'s workers.log, and say each trial's
value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hpsearch.search.cli import main
from tests.campaign.helpers import PLAN, write_plan

pytestmark = pytest.mark.slow
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d worker \d+ INFO trial \d+ of coarse: "
                  r"(COMPLETE, val_acc 0\.\d{4}|PRUNED, val_acc [\d.]+ \(pruned .*\)|PRUNED.*diverged.*)$")
STAGES = [{**PLAN["stages"][0], "n_trials": 4, "overrides": {"epochs": 2}}]


def test_worker_and_run_log_each_trial_with_its_value_in_one_format(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "plan.yaml", stages=STAGES)
    journal = str(tmp_path / "w.journal")
    assert main(["init", str(plan), "--storage", journal]) == 0
    worker = subprocess.run([sys.executable, "-m", "hpsearch.search", "worker", "syn", "--storage", journal,
                             "--devices", "cpu", "--no-artifacts"], capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr
    own = [line for line in worker.stderr.splitlines() if " trial " in line and " of coarse: " in line]
    assert len(own) == 4 and all(LINE.match(line) for line in own), own
    run = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(plan), "--storage",
                          str(tmp_path / "r.journal"), "--workers", "1", "--no-artifacts",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    relayed = [line for line in (tmp_path / "out" / "workers.log").read_text().splitlines() if " of coarse: " in line]
    assert len(relayed) == 4 and all(LINE.match(line) for line in relayed), relayed

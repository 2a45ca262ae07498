"""A slot whose retries are all used up: the stage ends under budget, and every command says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from tests.campaign.helpers import write_plan


@pytest.mark.slow
def test_a_slot_out_of_retries_ends_run_with_code_3_and_is_shown(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    journal = str(tmp_path / "c.journal")
    stages = [{"name": "momentum", "kind": "compare", "seeds": 2, "overrides": {"epochs": 2},
               "variants": {"large": {"lr": 0.5, "momentum": 0.95}, "crashes": {"lr": 0.5, "momentum": 0.5}}}]
    plan = write_plan(tmp_path / "plan.yaml", objective="tests.campaign.failing_objective:train", stages=stages)
    data = yaml.safe_load(plan.read_text())
    del data["space"]
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(plan), "--storage", journal,
                           "--workers", "1", "--max-retry", "1", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=180, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 3, proc.stderr
    assert "stage momentum ended under budget: 2 of 4 slot(s) failed on every retry" in proc.stderr, proc.stderr
    assert "injected fault" in proc.stderr
    assert "UNDER BUDGET: stage momentum" in (tmp_path / "out" / "rank-1.yaml").read_text()
    assert main(["status", "syn", "--storage", journal]) == 0
    assert "under budget: 2 of 4 slot(s)" in " ".join(capsys.readouterr().out.split())
    assert main(["export", "syn", "--storage", journal, "--out", str(tmp_path / "ex")]) == 0
    doc = yaml.safe_load((tmp_path / "ex" / "rank-1.yaml").read_text())
    assert doc["result"]["under_budget"][0].startswith("stage momentum ended under budget")

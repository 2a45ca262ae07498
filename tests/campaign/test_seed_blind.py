"""A final stage whose seeds all gave one value per config: the objective ignores its seed, and `run` and the report
say so; an objective that uses its seed gets no such note."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from hpsearch.search.watch.export import SEED_BLIND, seed_blind

OBJECTIVE = '''
def blind(params):
    return (params["x"] - 0.3) ** 2

def seeded(params):
    return (params["x"] - 0.3) ** 2 + 0.001 * params["seed"]
'''


@pytest.mark.parametrize(("values", "blind"), [
    ([[0.5, 0.5], [0.25, 0.25, 0.25]], True),
    ([[0.5, 0.5], [0.25, 0.26]], False),  # one config that moved with its seed is enough
    ([[0.5], [0.25]], False),  # nothing repeated: nothing to tell
    ([], False),
    ([[0.5, 0.5], [0.7]], True),  # a config that lost its other seeds does not hide the rest
    ([[1e6, 1e6 + 1e-9]], True),  # floating-point noise of a large value is no seed-to-seed spread
    ([[float("nan"), float("nan")]], False),
])
def test_seed_blind(values: list[list[float]], blind: bool) -> None:
    assert seed_blind(values) is blind


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["blind", "seeded"])
def test_run_and_the_report_note_an_objective_that_ignores_its_seed(tmp_path: Path, objective: str) -> None:
    (tmp_path / "quad.py").write_text(OBJECTIVE)
    plan = {"name": "quad", "objective": f"quad:{objective}", "metric": {"name": "loss", "direction": "minimize"},
            "base": {"seed": 0}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "stages": [{"name": "search", "n_trials": 4, "sampler": "random"},
                       {"name": "final", "kind": "final", "top": 2, "seeds": 2}]}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    journal = str(tmp_path / "c.journal")
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(tmp_path / "plan.yaml"), "--storage",
                           journal, "--workers", "1", "--no-artifacts", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    noted = [line for line in proc.stderr.splitlines() if line.startswith("hpsearch: note: ")]
    assert noted == ([f"hpsearch: note: {SEED_BLIND}"] if objective == "blind" else []), proc.stderr
    assert main(["report", "quad", "--storage", journal, "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "quad-report.html").read_text()
    assert ("ignore the seed it is given" in report) is (objective == "blind")

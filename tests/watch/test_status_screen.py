"""`hpsearch status` of every example plan fits one 80x24 terminal: after `init`, and at the end of a run (the
example's stages and budgets, the synthetic objective in place of training)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from hpsearch.search.run.worker import WorkerOptions, work

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLANS = sorted(p.name for p in EXAMPLES.glob("*.yaml") if "stages" in yaml.safe_load(p.read_text()))
# Small enough to run to the end here in seconds; the GPU plan's 200 trials are checked after init only.
RUN_TO_THE_END = ("demo.yaml", "practice-check.yaml")


def _screen(plan: dict, journal: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["status", plan["name"], "--storage", journal]) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert len(lines) <= 24, "\n".join(lines)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    text = "\n".join(lines)
    for stage in plan["stages"]:
        assert stage["name"] in text, f"stage name {stage['name']!r} broken across lines:\n{text}"
    assert not any(line.strip().endswith("space:") for line in lines), text
    return lines


@pytest.mark.parametrize("name", PLANS)
def test_status_of_each_example_fits_80x24(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    plan = yaml.safe_load((EXAMPLES / name).read_text())
    journal = str(tmp_path / "c.journal")
    if name in RUN_TO_THE_END:
        plan = {**plan, "objective": "synthetic"}
    (tmp_path / name).write_text(yaml.safe_dump(plan))
    assert main(["init", str(tmp_path / name), "--storage", journal]) == 0
    _screen(plan, journal, capsys)
    if name in RUN_TO_THE_END:
        work(plan["name"], WorkerOptions(storage=journal), threading.Event())
        lines = _screen(plan, journal, capsys)
        assert not any(" - " in line for line in lines[:3 + len(plan["stages"])]), "a stage never ran"

"""`hpsearch status` as a new user reads it: what each number means, and a table that fits 80 columns."""

from __future__ import annotations

import io
import re
import statistics
from pathlib import Path

import pytest
from rich.console import Console

from hpsearch.search.watch.export import best_configs
from hpsearch.search.watch.report import render_report
from hpsearch.search.watch.status import campaign_status, status_table
from tests.watch.conftest import Campaign
from tests.watch.helpers import PLAN, journal, run_campaign


def is_row(line: str, stage: str) -> bool:
    """Whether `line` is the stage's row of the counts table (its name, then its budget), not a details line."""
    return re.match(rf"{re.escape(stage)}\s+\d+\s", line) is not None


def render(campaign: str, storage, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, legacy_windows=False).print(
        status_table(campaign, campaign_status(storage, campaign)))
    return out.getvalue().splitlines()


@pytest.fixture(scope="module")
def ranged(tmp_path_factory: pytest.TempPathFactory):
    """A finished campaign that starts with an LR range test stage."""
    root = tmp_path_factory.mktemp("ranged")
    storage = journal(root / "ranged.journal")
    stages = [{"name": "lr-range", "kind": "lr_range_test"}, *PLAN["stages"][:2]]
    run_campaign(storage, root / "artifacts", {**PLAN, "name": "ranged", "stages": stages})
    return storage


@pytest.mark.slow
def test_the_range_test_stage_shows_its_range_never_a_learning_rate_as_accuracy(ranged) -> None:
    stage = campaign_status(ranged, "ranged")[0]
    low, high = stage.lr_range
    assert stage.best_value is None and low < high
    text = "\n".join(render("ranged", ranged, 120))
    row = next(line for line in text.splitlines() if is_row(line, "lr-range"))
    assert row.rstrip().endswith("-"), row  # the accuracy column is empty for this stage
    assert f"LR range test: found {low:.3g} to {high:.3g}" in text
    section = render_report(ranged, "ranged", "hpsearch report ranged").split("<section id='stage-lr-range'")[1]
    section = section.split("<section")[0]
    assert "Best validation accuracy" not in section and f"{high:.4f}" not in section
    assert f"useful learning rates {low:.3g} to {high:.3g}" in section


def test_the_final_stage_shows_the_mean_over_seeds_that_export_ranks_by(campaign: Campaign) -> None:
    final = campaign_status(campaign.storage, "watch")[-1]
    exported = best_configs(campaign.storage, "watch", top=1)[0]
    assert final.best_runs == len(exported.values) == PLAN["stages"][2]["seeds"]
    assert final.best_value == pytest.approx(exported.mean)
    assert final.best_std == pytest.approx(statistics.stdev(exported.values))
    row = next(line for line in render("watch", campaign.storage, 120) if line.startswith("final "))
    assert f"{exported.mean:.4f} ±{statistics.stdev(exported.values):.4f}" in row


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("which", ["watch", "ranged"])
def test_status_is_readable_at_80_columns(campaign: Campaign, ranged, which: str, width: int) -> None:
    storage = campaign.storage if which == "watch" else ranged
    lines = render(which, storage, width)
    assert all(len(line) <= width for line in lines)
    stages = campaign_status(storage, which)
    # each searched value sits whole on one line, never folded into fragments
    for s in stages:
        for key, value in s.best_params.items():
            token = f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
            assert any(token in line for line in lines), token
    # one line per stage in the table: counts and best accuracy are not wrapped either
    for s in stages:
        assert sum(is_row(line, s.name) for line in lines) == 1, s.name


def test_status_of_the_cli_prints_the_table(campaign: Campaign, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    from hpsearch.search.cli import main

    assert main(["status", "watch", "--storage", str(campaign.path)]) == 0
    out = capsys.readouterr().out
    assert "best val acc" in out and "best (mean ± std of 2 seeds)" in out


@pytest.mark.parametrize(("unit", "header"), [
    ("steps", ["cost", "trials", "steps", "device-h", "pruned", "failed"]),
    ("GPU-seconds", ["cost", "trials", "steps", "device-h", "GPU-seconds", "pruned", "failed"]),
])
def test_a_user_objectives_cost_table_names_each_column_once(unit: str, header: list[str]) -> None:
    """Counted in steps (no cost function), the work column would repeat the steps column; whole steps print as
    counts."""
    from hpsearch.search.run.cost import Cost
    from hpsearch.search.watch.status import cost_table
    from hpsearch.search.watch.summary import StageSummary

    costs = {"complete": Cost(4, 40, 3.6, 40.0 if unit == "steps" else 2.5, unit=unit),
             "pruned": Cost(12, 12, 1.2, 12.0 if unit == "steps" else 0.75, unit=unit)}
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(cost_table([StageSummary("coarse", "search", True, costs)],
                                                                     unit))
    lines = out.getvalue().splitlines()
    assert lines[0].split() == header
    row = lines[1].split()
    assert row[:3] == ["coarse", "16", "52"] and row[-2:] == (["12", "0"] if unit == "steps" else ["0.75", "0"])

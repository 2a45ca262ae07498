"""bench/search_quality_suite.py still runs end to end: one repetition of every search per family kind, on a tiny
version of the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.bench.scripts import ROOT, bench_script


@pytest.mark.slow
def test_search_quality_suite_prints_one_row_per_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = yaml.safe_load((ROOT / "examples" / "cifar10-resnet18.yaml").read_text())
    _, coarse, fine, refine, final = example["stages"]
    coarse.update(n_trials=4, overrides={**coarse["overrides"], "epochs": 3},
                  pruner={"name": "median", "n_startup_trials": 2})
    for later in (fine, refine):
        later.update(n_trials=3, carry=1, overrides={**later["overrides"], "epochs": 3},
                     pruner={"name": "median", "n_startup_trials": 2})
    final.update(top=1, seeds=2, overrides={**final["overrides"], "epochs": 3})
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(example))
    bench = bench_script("search_quality_suite")
    saved = tmp_path / "run.json"
    bench.main(["--families", "shift-lr,mfh3-good", "--reps", "1", "--example", str(tiny), "--dense-points", "4",
                "--baselines", "TPE + Hyperband,GP", "--save", str(saved)])
    table = capsys.readouterr().out.splitlines()
    header = next(line for line in table if line.startswith("family"))
    assert "coarse-to-fine" in header and "TPE + Hyperband" in header and "GP" in header
    for family in ("shift-lr", "mfh3-good", "pooled (normalised)"):
        row = next(line for line in table if line.startswith(family))
        assert row.count("±") == 3, row
    bench.main(["--merge", str(saved), "--example", str(tiny)])  # the same table from the saved run
    again = capsys.readouterr().out.splitlines()
    assert [line for line in again if line.startswith("shift-lr")] == [line for line in table
                                                                      if line.startswith("shift-lr")]


def test_unknown_family_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="--families: unknown family 'nope'; choose from synthetic"):
        bench_script("search_quality_suite").main(["--families", "nope"])


def test_the_agreement_table_summarises_what_the_stages_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    results = {"shift-lr": {"coarse-to-fine": [(0.01, 0.1, 600.0, {"fine": 0.9, "refine": 0.5}),
                                               (0.02, 0.2, 610.0, {"fine": 0.7})],
                            "GP": [(0.03, 0.3, 600.0, {}), (0.01, 0.1, 610.0, {})]},
               "mfh3-good": {"coarse-to-fine": [(0.5, 0.2, 700.0), (0.4, 0.1, 700.0)]}}  # saved before it existed
    bench_script("search_quality_suite").print_agreement(results)
    out = capsys.readouterr().out.splitlines()
    assert out[-3].split() == ["family", "before", "fine", "before", "refine"]
    assert out[-2].split() == ["shift-lr", "0.80", "[", "0.70,", "0.90]", "0.50", "[", "0.50,", "0.50]"]
    assert out[-1].split() == ["mfh3-good", "—", "—"]


def test_dehb_is_left_out_with_its_reason_where_it_cannot_load(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    quality, hub = bench_script("search_quality"), bench_script("hub_baselines")
    # no optunahub here, or no package in that folder
    assert hub.usable_baselines(["GP", "DEHB"], quality.BASELINES, tmp_path) == ["GP"]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("DEHB not run: ") and ("pip install optunahub" in line or "samplers/dehb" in line)
    with pytest.raises(SystemExit) as stopped:
        hub.usable_baselines(["BOHB"], quality.BASELINES, None)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown baseline 'BOHB'; choose from TPE + median, ")


def test_a_table_without_baselines_shows_a_dash_for_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    results = {"shift-lr": {"coarse-to-fine": [(0.01, 0.1, 600.0), (0.02, 0.2, 610.0)]}}
    bench_script("search_quality_suite").print_table(results, Path("plan.yaml"))
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("shift-lr", "pooled"))]
    assert rows == [["shift-lr", "0.0150", "±", "0.0635", "—", "605"], ["pooled", "(normalised)", "0.1500", "±",
                                                                        "0.6353", "—"]]

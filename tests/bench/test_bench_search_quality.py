"""bench/search_quality.py still runs end to end: one repetition of every search on a tiny version of the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.bench.scripts import ROOT, bench_script


@pytest.mark.slow
def test_search_quality_prints_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = yaml.safe_load((ROOT / "examples" / "cifar10-resnet18.yaml").read_text())
    # The same stages, a few trials and epochs each: the code path, not the figures.
    _, coarse, fine, refine, final = example["stages"]
    coarse.update(n_trials=4, overrides={**coarse["overrides"], "epochs": 3},
                  pruner={"name": "median", "n_startup_trials": 2})
    for later in (fine, refine):
        later.update(n_trials=3, carry=1, overrides={**later["overrides"], "epochs": 3},
                     pruner={"name": "median", "n_startup_trials": 2})
    final.update(top=1, seeds=2, overrides={**final["overrides"], "epochs": 3})
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(example))
    bench = bench_script("search_quality")
    bench.main(["--reps", "1", "--example", str(tiny), "--dense-points", "8"])
    captured = capsys.readouterr()
    table = captured.out
    ran = [n for n in bench.BASELINES if n != "DEHB" or "DEHB not run: " not in captured.err]  # OptunaHub's
    for name in ("coarse-to-fine", *ran):
        row = next(line for line in table.splitlines() if line.startswith(name))
        assert len(row.split()) >= 8, row
    assert "best known true value 0.9500" in table  # the synthetic optimum, found by the dense optimisation

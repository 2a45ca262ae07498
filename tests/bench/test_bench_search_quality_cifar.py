"""bench/search_quality_cifar.py still runs end to end: one repetition on real CIFAR-format files, a tiny plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.bench.scripts import ROOT, bench_script
from tests.cifar_files import write_cifar

pytestmark = pytest.mark.slow


def test_search_quality_on_cifar_prints_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text())
    # The demo's stages with two trials each and one epoch, on 20 images a class: the code path, not the figures.
    example["base"].update(width=4, data_fraction=1.0, batch_size=32)
    # LRs that never diverge here: each stage trains with its own seed, so a carried config may diverge where it
    # did not before, and a stage of two trials must keep one
    example["space"]["lr"].update(low=1.0e-3, high=0.05)
    coarse, fine, final = example["stages"]
    coarse.update(n_trials=2, overrides={"epochs": 1}, pruner="none")
    fine.update(n_trials=2, carry=1, overrides={"epochs": 1}, pruner="none", narrow={"top_k": 1})
    final.update(top=1, seeds=1, overrides={"epochs": 1, "width": 4})
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(example))
    cifar = write_cifar(tmp_path / "cifar", per_class_train=20, per_class_test=5)
    bench_script("search_quality_cifar").main(["--data-dir", str(cifar), "--reps", "1", "--seeds", "1",
                                               "--example", str(tiny), "--baselines", "random + median"])
    table = capsys.readouterr().out
    for name in ("coarse-to-fine", "random + median"):
        row = next(line for line in table.splitlines() if line.startswith(name))
        accuracy = float(row.split()[-7])
        assert 0.0 <= accuracy <= 1.0, row  # a test accuracy, from the held-out split

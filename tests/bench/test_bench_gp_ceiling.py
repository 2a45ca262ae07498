"""bench/gp_ceiling.py: a GP study's best-so-far regret on Hartmann, the curve its table is read from."""

from __future__ import annotations

import itertools

import pytest

from tests.bench.scripts import bench_script


@pytest.mark.parametrize("dims", [3, 6])
def test_regret_curve_is_the_best_so_far_above_the_global_minimum(dims: int) -> None:
    curve = bench_script("gp_ceiling").regret_curve(dims, startup=2, seed=0, trials=4)
    assert len(curve) == 4
    assert all(r >= 0 for r in curve)
    assert all(later <= earlier for earlier, later in itertools.pairwise(curve))


def test_one_repetition_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        bench_script("gp_ceiling").main(["--reps", "1"])
    assert stopped.value.code == 2
    assert "--reps must be at least 2" in capsys.readouterr().err

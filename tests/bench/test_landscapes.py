"""bench/landscapes.py and bench/mf_hartmann.py: each family's truth and behaviour, MF-Hartmann against its
published definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.objectives.config import TrainConfig
from tests.bench.scripts import bench_script

mfh = bench_script("mf_hartmann")
landscapes = bench_script("landscapes")

COARSE = {"data_fraction": 0.2, "epochs": 8}
BASE = TrainConfig(optimizer="sgd", momentum=0.9, weight_decay=10**-3.3, scheduler="cosine", min_lr_ratio=0.01,
                   device="cpu")


def test_the_split_is_fixed_and_covers_every_family_once() -> None:
    assert landscapes.TUNING == ("synthetic", "shift-lr", "narrow-optimizer", "mfh3-good", "mfh6-terrible")
    assert landscapes.HELD_OUT == ("shift-wd", "shift-both", "late-categorical", "ridge", "mfh3-bad",
                                   "mfh3-terrible", "mfh6-good", "mfh6-bad")
    assert not set(landscapes.TUNING) & set(landscapes.HELD_OUT)


# Hartmann 3-D and 6-D written out term by term from the published formula (Dixon and Szego; mf-prior-bench's
# alpha' = alpha - bias (1 - s), s = log z / log 100), as a check on the vectorised version.
ALPHA = (1.0, 1.2, 3.0, 3.2)


def by_hand(x: tuple[float, ...], z: float, bias: float) -> float:
    a, p = mfh.A[len(x)], mfh.P[len(x)]
    s = math.log(z) / math.log(100)
    total = 0.0
    for i in range(4):
        inner = sum(a[i][j] * (x[j] - p[i][j]) ** 2 for j in range(len(x)))
        total += (ALPHA[i] - bias * (1 - s)) * math.exp(-inner)
    return -total


@pytest.mark.parametrize("dims", [3, 6])
def test_mf_hartmann_at_full_fidelity_is_the_hartmann_function(dims: int) -> None:
    assert mfh.hartmann(mfh.OPTIMUM[dims]) == pytest.approx(mfh.MINIMUM[dims], abs=1e-5)
    # Its published minima: -3.86278 (3-D), -3.32237 (6-D); z = 100 has neither bias nor noise.
    for preset in mfh.PRESETS:
        bias, noise = mfh.PRESETS[preset]
        assert mfh.mf_hartmann(mfh.OPTIMUM[dims], 100, bias=bias, noise=noise) == pytest.approx(mfh.MINIMUM[dims],
                                                                                                 abs=1e-5)


@pytest.mark.parametrize(("x", "z", "bias"), [((0.5, 0.5, 0.5), 3, 2.5), ((0.1, 0.9, 0.3), 10, 4.0),
                                              ((0.2, 0.15, 0.48, 0.28, 0.31, 0.66), 3, 3.5),
                                              ((0.9, 0.1, 0.9, 0.1, 0.9, 0.1), 50, 2.5)])
def test_mf_hartmann_matches_the_published_definition(x: tuple[float, ...], z: int, bias: float) -> None:
    assert mfh.mf_hartmann(x, z, bias=bias, noise=0.0) == pytest.approx(by_hand(x, z, bias), rel=1e-12)
    # The noise: |N(0, 1)| x noise x (1 - s), drawn from default_rng(abs(1337 * z * hash(x))).
    draw = abs(np.random.default_rng(abs(1337 * z * hash(x))).normal(size=1)[0])
    s = math.log(z) / math.log(100)
    assert mfh.mf_hartmann(x, z, bias=bias, noise=2.0) == pytest.approx(by_hand(x, z, bias) + draw * 2.0 * (1 - s))
    assert mfh.query_cost(100) == pytest.approx(1.0) and mfh.query_cost(10) == pytest.approx(0.05 + 0.95 * 0.01)


def test_mf_hartmann_values_at_a_few_points() -> None:
    # Worked out from the formula: at the 3-D optimum with bias 2.5 at z = 1 every alpha drops by 2.5.
    assert by_hand(mfh.OPTIMUM[3], 1, 2.5) == pytest.approx(mfh.mf_hartmann(mfh.OPTIMUM[3], 1, bias=2.5, noise=0))
    assert mfh.mf_hartmann(mfh.OPTIMUM[3], 1, bias=0.0, noise=0.0) == pytest.approx(-3.86278, abs=1e-5)
    assert mfh.hartmann((0.5, 0.5, 0.5)) == pytest.approx(-0.62802, abs=1e-5)


def test_a_shift_familys_optimum_moves_with_fidelity() -> None:
    # The noiseless converged value at the coarse stage's fidelity, and the truth (full fidelity), over log LR.
    grid = np.linspace(-3, 0, 121)
    moved = []
    for seed in range(5):
        shift = landscapes.build("shift-lr", seed)
        coarse = grid[np.argmax([shift.top(BASE.replace(lr=10**g, **COARSE)) for g in grid])]
        full = grid[np.argmax([shift.truth(BASE.replace(lr=10**g).to_dict()) for g in grid])]
        assert full == pytest.approx(-1.0, abs=0.03)  # the synthetic objective's optimum, at full fidelity
        moved.append(coarse - full)
    assert max(abs(m) for m in moved) > 0.3 and all(abs(m) <= 1.0 for m in moved)
    assert min(moved) < 0 < max(moved)  # either direction across seeds
    # Ranks cross: the coarse optimum is worse at full fidelity than a config the coarse stage ranks lower.
    far = int(np.argmax(np.abs(moved)))
    shift = landscapes.build("shift-lr", far)
    at_coarse, at_full = BASE.replace(lr=10 ** (-1 + moved[far])), BASE.replace(lr=0.1)
    assert shift.top(at_coarse.replace(**COARSE)) > shift.top(at_full.replace(**COARSE))
    assert shift.truth(at_coarse.to_dict()) < shift.truth(at_full.to_dict())


def test_families_build_their_members_and_score_by_truth() -> None:
    for family in landscapes.FAMILIES:
        member = landscapes.build(family, 0)
        config = BASE.replace(**COARSE) if member.space is None else BASE.replace(**COARSE, momentum=0.1)
        result = member.train(config)
        assert len(result.history) == config.epochs and math.isfinite(result.final_val_acc)
        assert math.isfinite(member.truth(config.to_dict()))
    with pytest.raises(KeyError, match="unknown landscape family"):
        landscapes.build("nope", 0)


def test_late_categorical_choice_loses_coarse_and_wins_at_full_fidelity() -> None:
    top = landscapes.late_choice("label_smoothing", 0.1, gain=0.015)
    with_it, without = BASE.replace(label_smoothing=0.1), BASE.replace(label_smoothing=0.0)
    assert top(with_it.replace(**COARSE)) < top(without.replace(**COARSE))
    assert top(with_it) == pytest.approx(top(without) + 0.015)


def test_narrow_optimizer_peak_is_adamw_only_and_narrow() -> None:
    top = landscapes.narrow_peak(-2.5)
    adam = BASE.replace(optimizer="adamw", lr=10**-2.5)
    assert top(adam) > top(BASE.replace(lr=0.1)) + 0.015  # above SGD's best
    assert top(adam.replace(lr=10**-2.2)) < top(adam) - 0.015  # 0.3 decade away the peak is gone


def test_ridge_is_steep_across_and_flat_along() -> None:
    top = landscapes.ridge(0.0, 1)
    best = BASE.replace(lr=0.1)
    along = best.replace(lr=10**-0.5, weight_decay=10**-3.8)  # lr x wd kept
    across = best.replace(lr=10**-0.5, weight_decay=10**-2.8)  # both up by half a decade
    assert top(best) - top(along) < 0.005 < top(best) - top(across)

import itertools

import numpy as np
import pytest
import torch

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.schedules import LRSchedule, lr_factor


def trajectory(config: TrainConfig, steps_per_epoch: int = 10) -> list[float]:
    return [lr_factor(s, config, steps_per_epoch) * config.lr for s in range(config.epochs * steps_per_epoch)]


def test_warmup_is_linear_then_hands_over() -> None:
    c = TrainConfig(lr=0.4, epochs=5, scheduler="constant", warmup_epochs=1)
    lrs = trajectory(c)
    assert np.allclose(np.diff(lrs[:10]), 0.4 / 11)  # equal increments
    assert lrs[9] < 0.4 and lrs[10:] == [0.4] * 40


def test_cosine_ends_exactly_on_its_floor_and_never_goes_below() -> None:
    c = TrainConfig(lr=0.1, epochs=6, scheduler="cosine", warmup_epochs=1, min_lr_ratio=0.01)
    lrs = trajectory(c)
    assert lrs[10] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001)
    assert min(lrs[10:]) >= 0.001 - 1e-12 and all(a >= b for a, b in itertools.pairwise(lrs[10:]))


def test_step_multiplies_by_gamma_every_step_epochs() -> None:
    lrs = trajectory(TrainConfig(lr=1.0, epochs=6, scheduler="step", step_epochs=2, step_gamma=0.5))
    assert lrs[0] == lrs[19] == 1.0 and lrs[20] == lrs[39] == 0.5 and lrs[40] == 0.25


def test_one_cycle_rises_to_the_peak_then_falls_below_the_start() -> None:
    lrs = trajectory(TrainConfig(lr=1.0, epochs=10, scheduler="onecycle", onecycle_pct=0.3, min_lr_ratio=0.04))
    peak = int(np.argmax(lrs))
    assert peak == 30 and lrs[peak] == pytest.approx(1.0) and lrs[0] == pytest.approx(0.04)
    assert lrs[-1] == pytest.approx(0.0004)


def test_cyclic_triangles_between_base_and_max() -> None:
    lrs = trajectory(TrainConfig(lr=1.0, epochs=8, scheduler="cyclic", cycle_epochs=2, min_lr_ratio=0.1))
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == pytest.approx(1.0) and lrs[20] == pytest.approx(0.1)
    assert lrs[30] == pytest.approx(1.0) and min(lrs) >= 0.1 - 1e-12 and max(lrs) <= 1.0 + 1e-12


def run_plateau(val_accs: list[float], **kw: float | str) -> list[float]:
    c = TrainConfig(lr=1.0, epochs=len(val_accs), scheduler="plateau", optimizer="sgd", **kw)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=c.lr)
    schedule, lrs = LRSchedule(opt, c, steps_per_epoch=5), []
    for acc in val_accs:
        for _ in range(5):
            opt.step()
            schedule.after_step()
        schedule.after_epoch(acc)
        lrs.append(schedule.lr)
    return lrs


def test_plateau_does_not_cut_while_accuracy_improves() -> None:
    assert run_plateau([0.1 * i for i in range(1, 9)], plateau_patience=1) == [1.0] * 8


def test_plateau_cuts_on_stalled_accuracy_and_never_below_min_lr() -> None:
    lrs = run_plateau([0.5] * 12, plateau_patience=1, plateau_factor=0.5, min_lr_ratio=0.1)
    assert lrs[0] == 1.0 and lrs[2] == 0.5  # first epoch sets the best; two stalled epochs exceed patience 1
    assert lrs[-1] == pytest.approx(0.1) and min(lrs) >= 0.1 - 1e-12


def test_warmup_applies_before_plateau() -> None:
    c = TrainConfig(lr=1.0, epochs=3, scheduler="plateau", warmup_epochs=1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=c.lr)
    schedule, lrs = LRSchedule(opt, c, steps_per_epoch=4), []
    for _ in range(8):
        lrs.append(schedule.lr)
        opt.step()
        schedule.after_step()
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8]) and lrs[4:] == [1.0] * 4


@pytest.mark.parametrize(
    ("epoch_form", "fraction_form"),
    [
        ({"scheduler": "cosine", "warmup_epochs": 2.0}, {"scheduler": "cosine", "warmup_fraction": 0.25}),
        ({"scheduler": "step", "step_epochs": 2}, {"scheduler": "step", "step_fraction": 0.25}),
        ({"scheduler": "cyclic", "cycle_epochs": 4.0}, {"scheduler": "cyclic", "cycle_fraction": 0.5}),
        ({"scheduler": "onecycle", "warmup_epochs": 1.0}, {"scheduler": "onecycle", "warmup_fraction": 0.125}),
    ],
)
def test_a_fraction_of_the_run_gives_the_same_lr_trajectory_as_its_epoch_count(epoch_form: dict,
                                                                            fraction_form: dict) -> None:
    a = trajectory(TrainConfig(lr=1.0, epochs=8, **epoch_form))
    b = trajectory(TrainConfig(lr=1.0, epochs=8, **fraction_form))
    assert a == b and len(set(a)) > 1


def test_a_fraction_scales_with_the_run_length() -> None:
    short = trajectory(TrainConfig(lr=1.0, epochs=8, scheduler="step", step_fraction=0.25, step_gamma=0.5))
    long = trajectory(TrainConfig(lr=1.0, epochs=32, scheduler="step", step_fraction=0.25, step_gamma=0.5))
    assert short[::4] == pytest.approx(long[::16])  # the same four steps of the LR, at 8 and at 32 epochs


def test_plateau_patience_fraction_equals_its_epoch_count() -> None:
    accs = [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7]
    by_epochs = run_plateau(accs, plateau_patience=2, min_lr_ratio=0.01)
    by_fraction = run_plateau(accs, plateau_patience_fraction=0.2, min_lr_ratio=0.01)  # 0.2 x 10 epochs = 2
    assert by_epochs == by_fraction and min(by_epochs) < 1.0


def test_plateau_mode_min_cuts_when_accuracy_stops_falling() -> None:
    falling = [0.9 - 0.1 * i for i in range(6)]
    assert run_plateau(falling, plateau_patience=1, plateau_mode="min") == [1.0] * 6  # "improving" for min
    lrs = run_plateau([0.5] * 6, plateau_patience=1, plateau_mode="min", plateau_factor=0.5)
    assert lrs[0] == 1.0 and lrs[2] == 0.5
    rising = [0.1 * i for i in range(1, 7)]  # accuracy improves, which mode min reads as a worsening loss
    assert min(run_plateau(rising, plateau_patience=1, plateau_mode="min")) < 1.0
    assert run_plateau(rising, plateau_patience=1) == [1.0] * 6  # mode max (the default) does not cut

import numpy as np
import pytest
import torch

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.losses import build_loss, class_weights

COUNTS = np.array([100, 10])


@pytest.mark.parametrize(
    ("rule", "extra", "raw"),
    [
        ("none", {}, [1, 1]),
        ("inverse", {}, [1 / 100, 1 / 10]),
        ("inverse_power", {"class_weight_power": 0.5}, [0.1, 10**-0.5]),
        ("effective", {"class_weight_beta": 0.9}, [(1 - 0.9) / (1 - 0.9**100), (1 - 0.9) / (1 - 0.9**10)]),
    ],
)
def test_class_weights_follow_their_formula_normalised_to_mean_one(rule: str, extra: dict, raw: list) -> None:
    w = class_weights(COUNTS, TrainConfig(class_weights=rule, **extra))
    expected = np.array(raw) / np.mean(raw)
    assert np.allclose(w, expected) and w.mean() == pytest.approx(1.0)


def test_rare_class_weighs_more_in_the_loss() -> None:
    loss = build_loss(COUNTS, TrainConfig(class_weights="inverse", label_smoothing=0.1), torch.device("cpu"))
    assert loss.weight[1] / loss.weight[0] == pytest.approx(10) and loss.label_smoothing == 0.1

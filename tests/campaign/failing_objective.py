"""A training function for fault injection: the synthetic objective, except that momentum 0.5 crashes."""

from __future__ import annotations

from typing import Any

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import TrainResult
from hpsearch.objectives.synthetic import synthetic_train


def train(config: TrainConfig, **kwargs: Any) -> TrainResult:
    if config.momentum == 0.5:
        raise RuntimeError("injected fault: this variant always crashes")
    return synthetic_train(config, **kwargs)

"""Cross-entropy with class weights computed from the training split's counts, and label smoothing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError

# weights(counts, config) -> unnormalised weight per class
ClassWeights = Callable[[np.ndarray, TrainConfig], np.ndarray]
CLASS_WEIGHTS: dict[str, ClassWeights] = {
    "none": lambda n, c: np.ones(len(n)),
    "inverse": lambda n, c: 1.0 / n,
    # Effective number of samples (Cui et al., CVPR 2019): (1 - beta^n) / (1 - beta).
    "effective": lambda n, c: (1 - c.class_weight_beta) / (1 - np.power(c.class_weight_beta, n)),
    "inverse_power": lambda n, c: np.power(1.0 / n, c.class_weight_power),
}


def class_weights(counts: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Per-class weights normalised to mean 1, so the loss scale (and the right LR) does not move."""
    try:
        rule = CLASS_WEIGHTS[config.class_weights]
    except KeyError:
        choices = sorted(CLASS_WEIGHTS)
        raise ConfigError(f"unknown class_weights {config.class_weights!r}; choose from {choices}") from None
    w = rule(np.maximum(np.asarray(counts, dtype=np.float64), 1.0), config)
    return w / w.mean()


def build_loss(counts: np.ndarray, config: TrainConfig, device: torch.device) -> nn.Module:
    weight = None
    if config.class_weights != "none":
        weight = torch.tensor(class_weights(counts, config), dtype=torch.float32, device=device)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)

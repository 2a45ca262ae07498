"""The optimizer registry: name -> factory(param_groups, config)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.registry import registrar

# factory(param_groups, config, lr): lr is a float, or a device tensor when the step is captured in a CUDA graph
OptimizerFactory = Callable[[list[dict[str, Any]], TrainConfig, "float | torch.Tensor"], torch.optim.Optimizer]
OPTIMIZERS: dict[str, OptimizerFactory] = {}


register_optimizer = registrar(OPTIMIZERS, "optimizer")


def get_optimizer(name: str) -> OptimizerFactory:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}") from None


@register_optimizer("sgd")
def _sgd(groups: list[dict[str, Any]], c: TrainConfig, lr: float | torch.Tensor) -> torch.optim.Optimizer:
    # With a tensor LR only the fused kernel updates without reading the LR back to the host.
    fused = True if isinstance(lr, torch.Tensor) else None
    return torch.optim.SGD(groups, lr=lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0, fused=fused)


@register_optimizer("adamw")
def _adamw(groups: list[dict[str, Any]], c: TrainConfig, lr: float | torch.Tensor) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, capturable=isinstance(lr, torch.Tensor))


@register_optimizer("nadam")
def _nadam(groups: list[dict[str, Any]], c: TrainConfig, lr: float | torch.Tensor) -> torch.optim.Optimizer:
    return torch.optim.NAdam(groups, lr=lr, decoupled_weight_decay=True, capturable=isinstance(lr, torch.Tensor))


def param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights; BatchNorm and bias parameters only when asked."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if decay_norm_and_bias or p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig, *, capturable: bool = False) -> torch.optim.Optimizer:
    """The configured optimizer; `capturable` keeps the LR on the device so a CUDA graph can replay the step."""
    groups = param_groups(model, config.weight_decay, config.decay_norm_and_bias)
    lr: float | torch.Tensor = config.lr
    if capturable:
        device = next(model.parameters()).device
        lr = torch.tensor(config.lr, device=device)
        for group in groups:  # one tensor per group: ReduceLROnPlateau must not cut a shared one twice
            group["lr"] = torch.tensor(config.lr, device=device)
    return get_optimizer(config.optimizer)(groups, config, lr)

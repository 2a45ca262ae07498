"""The CUDA-graph step's warm-up puts the optimizer's state back as it found it (`objectives/step.py`): a resumed
run's restored momentum and moments, not a fresh optimizer's zeros; state the warm-up created, as a fresh one's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from hpsearch.objectives.step import optimizer_state_copy, restore_optimizer_state


def steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, n: int) -> None:
    for i in range(n):
        optimizer.zero_grad()
        model(torch.full((2, 3), float(i + 1))).square().sum().backward()
        optimizer.step()


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: torch.optim.AdamW(p, lr=0.01),
    lambda p: torch.optim.NAdam(p, lr=0.01),
], ids=["sgd", "adamw", "nadam"])
def test_a_restored_state_survives_warm_up_steps_in_place(make: Callable[[Any], torch.optim.Optimizer]) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = make(model.parameters())
    steps(model, optimizer, 3)  # the state a resumed run restores
    saved = optimizer_state_copy(optimizer)
    tensors = {(id(p), n): v for p, st in optimizer.state.items() for n, v in st.items() if torch.is_tensor(v)}
    steps(model, optimizer, 2)  # the warm-up
    restore_optimizer_state(optimizer, saved)
    for param, state in optimizer.state.items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(saved[param][name])), name
            if torch.is_tensor(value):
                assert value is tensors[(id(param), name)]  # the same tensor: a captured graph still points at it


def test_state_the_warm_up_created_is_a_fresh_optimizers() -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.NAdam(model.parameters(), lr=0.01)
    saved = optimizer_state_copy(optimizer)
    assert saved == {}  # no step yet: no state
    steps(model, optimizer, 2)
    restore_optimizer_state(optimizer, saved)
    for state in optimizer.state.values():
        for name, value in state.items():
            assert torch.all(value == (1.0 if name == "mu_product" else 0.0)), name

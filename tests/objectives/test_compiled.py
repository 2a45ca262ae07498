"""Compile once per process: a reused model is re-initialised exactly, is not recompiled, and trains like eager."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision.models.resnet import BasicBlock

from hpsearch.objectives import compiled
from hpsearch.objectives.compiled import ModelKey, build_model, clear_cache, model_for
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.losses import build_loss
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.step import TrainStep
from hpsearch.objectives.train import train


class CountingBackend:
    """A torch.compile backend that runs the captured graph as is and counts how often it was compiled."""

    def __init__(self) -> None:
        self.compiles = 0

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        self.compiles += 1
        return graph.forward


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_a_reused_model_is_reinitialised_exactly_and_not_recompiled() -> None:
    clear_cache()
    backend = CountingBackend()
    key = ModelKey(num_classes=10, width=4, batch_size=8, mode="on", device="cpu", channels_last=False)
    first = model_for(key, seed=1, backend=backend)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    optimizer = torch.optim.SGD(first.model.parameters(), lr=0.5)
    torch.nn.functional.cross_entropy(first.forward(x), y).backward()
    optimizer.step()  # the first trial moves weights and BatchNorm statistics
    compiles = backend.compiles
    assert compiles >= 1

    second = model_for(key, seed=2, backend=backend)
    assert second.model is first.model and second.uses == 2
    fresh = state(build_model(10, 4, seed=2))
    reused = state(second.model)
    assert reused.keys() == fresh.keys()
    assert all(torch.equal(reused[k], fresh[k]) for k in fresh)  # bit-identical, buffers included
    assert all(p.grad is None for p in second.model.parameters())
    torch.nn.functional.cross_entropy(second.forward(x), y).backward()
    assert backend.compiles == compiles  # the second trial compiled nothing
    clear_cache()


@pytest.mark.slow
def test_train_with_compile_on_matches_eager_and_reuses_the_model(cifar_dir: Path, tiny_config: TrainConfig,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    backend = CountingBackend()
    monkeypatch.setattr(compiled, "COMPILE_BACKEND", backend)
    eager = train(tiny_config.replace(compile="off"), data_dir=cifar_dir)
    assert backend.compiles == 0
    on = train(tiny_config.replace(compile="on"), data_dir=cifar_dir)
    compiles = backend.compiles
    again = train(tiny_config.replace(compile="on"), data_dir=cifar_dir)
    assert compiles >= 1 and backend.compiles == compiles
    assert on.config.compile == "on" and on.to_dict()["config"]["compile"] == "on"  # recorded with the trial
    for run in (on, again):
        assert [r.train_loss for r in run.history] == pytest.approx([r.train_loss for r in eager.history], rel=1e-6)
        assert [r.val_acc for r in run.history] == pytest.approx([r.val_acc for r in eager.history], abs=1e-6)
    clear_cache()


def small_resnet(seed: int) -> torch.nn.Module:
    """ResNet-18's kinds of layers (conv, BatchNorm in training mode, ReLU, a residual block with a strided
    shortcut, global pooling, a linear head) at a size inductor compiles in seconds, not a minute of C++."""
    torch.manual_seed(seed)
    shortcut = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1, stride=2, bias=False), torch.nn.BatchNorm2d(8))
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), BasicBlock(4, 8, stride=2, downsample=shortcut),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))


@pytest.mark.slow
def test_inductor_compiled_steps_match_eager_on_the_cpu() -> None:
    config = TrainConfig(width=4, batch_size=8, lr=0.1, device="cpu", channels_last=False)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(3)]
    losses = {}
    for name in ("eager", "inductor"):
        model = small_resnet(seed=0)
        forward = torch.compile(model, dynamic=False) if name == "inductor" else model
        optimizer = build_optimizer(model, config)
        step = TrainStep(model, forward, optimizer, build_loss(np.ones(10), config, torch.device("cpu")),
                         torch.autocast("cpu", enabled=False), torch.device("cpu"))
        step.start_epoch()
        sums = [0.0]
        for x, y in batches:
            step(x, y)
            sums.append(float(step.loss_sum))
        losses[name] = np.diff(sums)
    assert losses["inductor"] == pytest.approx(losses["eager"], rel=1e-4)

"""Generated data for the two example objectives: ten overlapping Gaussian classes in 20 dimensions.

Made from a fixed seed, so every worker and every rerun sees the same split; nothing to download.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def blobs(n: int = 3000, dims: int = 20, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val): 80% / 20% of `n` points."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dims, generator=gen) * 1.2
    y = torch.randint(classes, (n,), generator=gen)
    x = centres[y] + torch.randn(n, dims, generator=gen) * 1.5
    cut = int(0.8 * n)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def mlp(width: int, dropout: float, dims: int = 20, classes: int = 10) -> torch.nn.Module:
    """Two hidden layers of `width` units with dropout."""
    return torch.nn.Sequential(
        torch.nn.Linear(dims, width), torch.nn.ReLU(), torch.nn.Dropout(dropout),
        torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Dropout(dropout),
        torch.nn.Linear(width, classes),
    )


def one_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              batch: int, gen: torch.Generator) -> tuple[float, float]:
    """Train one pass in a random order; (mean loss, accuracy)."""
    model.train()
    order = torch.randperm(len(x), generator=gen)
    total, correct = 0.0, 0
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        out = model(x[idx])
        loss = torch.nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
        correct += int((out.argmax(1) == y[idx]).sum())
    return total / len(x), correct / len(x)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean loss, accuracy) on held-out points."""
    model.eval()
    out = model(x)
    return float(torch.nn.functional.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())

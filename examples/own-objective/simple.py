"""A simple objective: a function of a params dict that returns one number, as an Optuna objective does.

    def objective(params: dict, report) -> float

`params` holds the plan's base, the stage's overrides, the sampled values and `seed` (the stage's, or a final repeat's);
`report(value, step)` reports an intermediate value, as `trial.report` does, and stops a pruned trial by
raising an exception this function need not catch. It returns the last epoch's validation loss, which the
plan minimizes (`metric: {name: val_loss, direction: minimize}`).
"""

from __future__ import annotations

import torch
from blobs import blobs, evaluate, mlp, one_epoch


def objective(params: dict, report) -> float:
    torch.manual_seed(params.get("seed", 0))
    x, y, x_val, y_val = blobs()
    n = int(len(x) * params.get("data_fraction", 1.0))  # a stage's fidelity: part of the training points
    model = mlp(params["width"], params["dropout"])
    opt = torch.optim.AdamW(model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    gen = torch.Generator().manual_seed(params.get("seed", 0))
    val_loss = float("inf")
    for epoch in range(1, params["epochs"] + 1):
        one_epoch(model, opt, x[:n], y[:n], params.get("batch_size", 64), gen)
        val_loss, _ = evaluate(model, x_val, y_val)
        report(val_loss, epoch)  # the pruner compares this curve with the other trials'
    return val_loss

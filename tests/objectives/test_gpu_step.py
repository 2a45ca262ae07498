"""The CUDA-graph training step (CUDA only): same math as eager, LR changes without a recapture."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.objectives.compiled import build_model
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.losses import build_loss
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.schedules import LRSchedule
from hpsearch.objectives.step import GraphStep, TrainStep
from hpsearch.objectives.train import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def run_steps(config: TrainConfig, graph: bool, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple:
    device = torch.device("cuda")
    model = build_model(10, config.width, config.seed).to(device)
    optimizer = build_optimizer(model, config, capturable=graph)
    schedule = LRSchedule(optimizer, config, steps_per_epoch=len(batches))
    loss_fn = build_loss(np.ones(10), config, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=False, cache_enabled=not graph)
    args = (model, model, optimizer, loss_fn, autocast, device)
    step = GraphStep(*args, batches[0]) if graph else TrainStep(*args)
    step.start_epoch()
    sums, lrs = [0.0], []
    for x, y in batches:
        lrs.append(schedule.lr)
        step(x, y)
        schedule.after_step()
        sums.append(float(step.loss_sum))  # running sum of loss x batch size
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return np.diff(sums) / len(batches[0][1]), lrs, params, step


def test_graph_step_matches_eager_while_the_lr_changes_every_step() -> None:
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    config = TrainConfig(width=8, batch_size=32, epochs=1, lr=0.2, warmup_epochs=1.0, weight_decay=5e-4,
                         device="cuda", precision="fp32", channels_last=False)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(32, 3, 32, 32, generator=g).cuda(), torch.randint(0, 10, (32,), generator=g).cuda())
               for _ in range(6)]
    eager_losses, eager_lrs, eager_params, _ = run_steps(config, False, batches)
    graph_losses, graph_lrs, graph_params, step = run_steps(config, True, batches)
    assert len(set(eager_lrs)) == 6 and graph_lrs == pytest.approx(eager_lrs)  # a new LR every step
    assert isinstance(step, GraphStep)
    assert graph_losses == pytest.approx(eager_losses, rel=1e-3)
    assert torch.allclose(graph_params, eager_params, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_train_with_cudagraphs_runs_like_eager(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace(device="cuda", precision="fp32")
    eager = train(config.replace(compile="off"), data_dir=cifar_dir)
    graphs = train(config.replace(compile="cudagraphs"), data_dir=cifar_dir)
    assert graphs.status == "completed" and graphs.config.compile == "cudagraphs"
    assert graphs.history[0].train_loss == pytest.approx(eager.history[0].train_loss, rel=0.02)
    assert [r.lr for r in graphs.history] == pytest.approx([r.lr for r in eager.history])

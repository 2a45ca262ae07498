"""Fused trials on the CPU: each slot trains as its own `train()` run would, and what cannot fuse says why.

Tolerance. In float64 (the input cast up, the rest following torch's default dtype) a fused trial's history
equals its separate run's to 1e-5: no difference hides in the float32 tolerance below. In float32 whole
histories cannot match bit for bit: the vmapped convolution is a grouped one, whose sums round differently,
and in a width-4 network with BatchNorm a rounding difference that flips one ReLU changes the next gradient
by ~1%, which training carries on. The same `train()` run with oneDNN's convolutions and with torch's native
ones (`torch.backends.mkldnn.flags(enabled=False)`) differs by up to 0.015 in an epoch's mean training loss
and 0.11 in validation accuracy (11 of 100 images, after 9 steps, while the BatchNorm statistics are young);
fused and separate runs here differed by up to 0.047 and 0.11. Float32 histories are held to: mean training
loss within 0.06, training and validation accuracy within 0.12, the LR within 1e-6 (the same schedule code on
the same steps). The pieces are checked tightly on their own: a slot's forward and backward against the plain
model (1e-4 relative), the fused SGD / AdamW update against torch's on the same gradients (1e-6), the
per-slot loss against `build_loss` (1e-6).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.objectives import augment
from hpsearch.objectives.compiled import build_model
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.fused import fusable_groups, train_fused, why_not_fused
from hpsearch.objectives.fused_step import FusedOptimizer, StackedLoss, StackedModel, stack_batches
from hpsearch.objectives.losses import build_loss
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.result import EpochRecord, StopTraining, TrainResult
from hpsearch.objectives.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def short(tiny_config: TrainConfig) -> TrainConfig:
    """Half the tiny training split: 4 steps an epoch, so the epoch-end parts (schedules, plateau) come soon."""
    return tiny_config.replace(data_fraction=0.5)
LOSS_TOL, ACC_TOL = 0.06, 0.12
CPU = torch.device("cpu")


def assert_same_history(fused: TrainResult, alone: TrainResult) -> None:
    assert fused.status == alone.status and len(fused.history) == len(alone.history)
    for f, a in zip(fused.history, alone.history, strict=True):
        assert f.epoch == a.epoch and f.lr == pytest.approx(a.lr, rel=1e-6)
        assert abs(f.train_loss - a.train_loss) <= LOSS_TOL
        assert abs(f.val_acc - a.val_acc) <= ACC_TOL and abs(f.train_acc - a.train_acc) <= ACC_TOL


def test_a_slot_computes_what_its_plain_model_computes() -> None:
    stacked = StackedModel(10, 4, 3, CPU)
    plain = [build_model(10, 4, seed) for seed in range(3)]
    for k, model in enumerate(plain):
        stacked.load_slot(k, model)
    x, y = torch.randn(3, 16, 3, 32, 32), torch.randint(0, 10, (3, 16))
    logits = stacked.forward(x)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").backward()
    for k, model in enumerate(plain):
        out = model(x[k])
        torch.nn.functional.cross_entropy(out, y[k], reduction="sum").backward()
        assert torch.allclose(logits[k], out, rtol=1e-4, atol=1e-5)
        for name, p in model.named_parameters():
            assert torch.allclose(stacked.params[name].grad[k], p.grad, rtol=1e-4, atol=1e-5), name
        for name, b in model.named_buffers():  # BatchNorm statistics: each slot its own
            assert torch.allclose(stacked.buffers[name][k].float(), b.float(), atol=1e-6), name


def test_channels_last_stacks_compute_what_contiguous_ones_do_in_that_layout() -> None:
    """The layout a plain model has on a GPU. In float64, which the CPU runs with torch's own convolutions (not
    oneDNN's, whose channels-last backward `device.channels_last_on` keeps off the CPU)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        xs = [torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(k)) for k in range(3)]
        merged = stack_batches([x.contiguous(memory_format=torch.channels_last) for x in xs], channels_last=True)
        assert torch.equal(merged, torch.stack(xs))
        # what vmap's convolution reads: the slots beside the channels, a channels-last view of the same memory
        view = merged.movedim(0, 1).reshape(8, 9, 32, 32)
        assert view.is_contiguous(memory_format=torch.channels_last) and view.data_ptr() == merged.data_ptr()
        out: dict[bool, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}
        for channels_last in (False, True):
            stacked = StackedModel(10, 4, 3, CPU, channels_last)
            for k in range(3):
                stacked.load_slot(k, build_model(10, 4, k))
            strides: list[tuple[int, ...]] = []
            stacked.base.layers[0].register_forward_hook(lambda module, args, y, seen=strides: seen.append(y.stride()))
            logits = stacked.forward(stack_batches(xs, channels_last))
            logits.square().sum().backward()
            channel_stride = strides[0][1]
            assert (channel_stride == 1) == channels_last  # activations stay channels-last through the network
            weights = [p for p in stacked.params.values() if p.ndim == 5]
            layout = torch.channels_last if channels_last else torch.contiguous_format
            assert all(p.flatten(0, 1).is_contiguous(memory_format=layout) and p.grad.stride() == p.stride()
                       for p in weights)
            stacked.train(False)
            with torch.no_grad():  # validation: one batch shared by every slot, with the running statistics
                shared = stacked.forward(xs[0].contiguous(memory_format=layout), shared=True)
            assert strides[1][1] == 1 if channels_last else strides[1][1] > 1
            out[channels_last] = torch.cat([logits.detach(), shared]), {n: p.grad for n, p in stacked.params.items()}
        assert torch.allclose(out[True][0], out[False][0], rtol=1e-10, atol=1e-12)
        for name, grad in out[False][1].items():
            assert torch.allclose(out[True][1][name], grad, rtol=1e-10, atol=1e-12), name
    finally:
        torch.set_default_dtype(before)


@pytest.mark.parametrize("configs", [
    [TrainConfig(lr=0.1, momentum=0.9, nesterov=True), TrainConfig(lr=0.3, momentum=0.5, nesterov=False),
     TrainConfig(lr=0.05, momentum=0.0, weight_decay=1e-2, decay_norm_and_bias=True)],
    [TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=0.05),
     TrainConfig(optimizer="adamw", lr=3e-3, weight_decay=0.0, decay_norm_and_bias=True)],
], ids=["sgd", "adamw"])
def test_the_fused_update_is_torchs_update_per_slot(configs: list[TrainConfig]) -> None:
    plain = [build_model(10, 4, seed) for seed in range(len(configs))]
    stacked = StackedModel(10, 4, len(configs), CPU)
    fused = FusedOptimizer(stacked.params, configs[0].optimizer, len(configs), CPU)
    optimizers = [build_optimizer(model, c) for model, c in zip(plain, configs, strict=True)]
    for k, (model, config) in enumerate(zip(plain, configs, strict=True)):
        stacked.load_slot(k, model)
        fused.set_slot(k, config)
        fused.lr[k] = config.lr
    gen = torch.Generator().manual_seed(0)
    named = [dict(model.named_parameters()) for model in plain]
    for _ in range(4):  # momentum and moments carry over: several steps
        for name, stack in stacked.params.items():
            grads = [torch.randn(stack.shape[1:], generator=gen) for _ in plain]
            for params, grad in zip(named, grads, strict=True):
                params[name].grad = grad
            stack.grad = torch.stack(grads)
        for opt in optimizers:
            opt.step()
        fused.step()
        for k, model in enumerate(plain):
            for name, p in model.named_parameters():
                assert torch.allclose(stacked.params[name][k], p, atol=1e-6), (k, name)


def test_the_stacked_loss_is_each_trials_configured_loss() -> None:
    counts = np.array([5, 10, 20, 40, 80, 5, 10, 20, 40, 80])
    configs = [TrainConfig(), TrainConfig(label_smoothing=0.1),
               TrainConfig(class_weights="effective", label_smoothing=0.2, imbalance_ratio=4)]
    loss = StackedLoss(3, 10, CPU)
    for k, config in enumerate(configs):
        loss.set_slot(k, counts, config)
    logits, y = torch.randn(3, 32, 10), torch.randint(0, 10, (3, 32))
    got = loss(logits, y)
    for k, config in enumerate(configs):
        assert got[k].item() == pytest.approx(build_loss(counts, config, CPU)(logits[k], y[k]).item(), abs=1e-6)


def varied(base: TrainConfig) -> list[TrainConfig]:
    """Trials that share a shape and differ in everything the fused step keeps per trial."""
    return [
        base,
        base.replace(seed=1, lr=0.1, momentum=0.5, nesterov=False, scheduler="step", step_epochs=1, cutout=8),
        base.replace(seed=2, lr=0.02, weight_decay=1e-2, decay_norm_and_bias=True, scheduler="plateau",
                     plateau_patience=0, label_smoothing=0.1, class_weights="inverse", flip=False),
    ]


@pytest.mark.slow
def test_fused_trials_have_the_histories_of_separate_runs(cifar_dir: Path, short: TrainConfig) -> None:
    configs = varied(short)
    seen: list[tuple[int, int]] = []
    fused = train_fused(configs, data_dir=cifar_dir, on_epoch=lambda slot, r: seen.append((slot, r.epoch)))
    assert seen == [(k, e) for e in (1, 2) for k in range(3)]  # every trial reported at every epoch
    for f, config in zip(fused, configs, strict=True):
        assert f.config == config
        assert_same_history(f, train(config, data_dir=cifar_dir))


@pytest.fixture
def float64(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Train in float64: the loaders' images are cast up and new weights follow the default dtype."""
    normalize = augment.normalize
    monkeypatch.setattr(augment, "normalize", lambda images, mean, std: normalize(images, mean, std).double())
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.slow
def test_in_float64_fused_histories_equal_separate_ones(cifar_dir: Path, short: TrainConfig, float64: None) -> None:
    sgd = [short, varied(short)[1].replace(label_smoothing=0.1)]  # build_loss's class weights are float32
    adamw = [short.replace(optimizer="adamw", lr=3e-3, seed=3, epochs=1),  # one epoch: float64 is slow here
             short.replace(optimizer="adamw", lr=1e-3, weight_decay=0.05, seed=4, scheduler="onecycle", epochs=1)]
    for group in (sgd, adamw):
        for f, config in zip(train_fused(group, data_dir=cifar_dir), group, strict=True):
            alone = train(config, data_dir=cifar_dir)
            for x, y in zip(f.history, alone.history, strict=True):
                for name in ("train_loss", "train_acc", "val_loss", "val_acc", "val_bacc", "lr"):
                    assert getattr(x, name) == pytest.approx(getattr(y, name), abs=1e-5), (config, name)


@pytest.mark.slow
def test_a_stopped_or_diverged_trials_slot_takes_the_next_trial(cifar_dir: Path, short: TrainConfig) -> None:
    base = short.replace(epochs=3)
    blowup, kept, waiting = base.replace(lr=50.0, warmup_epochs=0, seed=5), base, base.replace(seed=7, lr=0.02)
    queue = [waiting]
    ends: list[tuple[int, str]] = []

    def prune_slot_1(slot: int, record: EpochRecord) -> None:
        if slot == 1 and record.epoch == 2:
            raise StopTraining("pruned at epoch 2")

    ended = train_fused([blowup, kept], data_dir=cifar_dir, on_epoch=prune_slot_1,
                        on_end=lambda slot, r: ends.append((slot, r.status)),
                        refill=lambda slot: queue.pop() if queue else None)
    assert ends[0] == (0, "diverged") and (1, "stopped") in ends and ends[-1] == (0, "completed")
    late = next(r for r in ended if r.config == waiting)
    # The diverged neighbour left no trace: the refilled trial trains as it would alone, from its own start.
    assert late.status == "completed" and [r.epoch for r in late.history] == [1, 2, 3]
    assert_same_history(late, train(waiting, data_dir=cifar_dir))
    stopped = next(r for r in ended if r.config == kept)
    assert stopped.reason == "pruned at epoch 2" and len(stopped.history) == 2


def test_what_cannot_fuse_says_why(tiny_config: TrainConfig) -> None:
    assert why_not_fused(tiny_config.replace(lr=0.3, seed=4, scheduler="step"), tiny_config) is None
    assert "optimizer 'nadam' is not covered" in why_not_fused(tiny_config.replace(optimizer="nadam"))
    for change in ({"width": 8}, {"batch_size": 16}, {"classes": (0, 1, 2)}, {"data_fraction": 0.5},
                   {"optimizer": "adamw"}):
        name = next(iter(change))
        assert f"its {name} " in why_not_fused(tiny_config.replace(**change), tiny_config)
    configs = [tiny_config, tiny_config.replace(width=8), tiny_config.replace(seed=1),
               tiny_config.replace(optimizer="nadam")]
    groups, alone = fusable_groups(configs)
    assert groups == [[0, 2], [1]] and list(alone) == [3]


def test_a_trial_that_cannot_fuse_is_refused(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    with pytest.raises(ConfigError, match="its width 8 differs"):
        train_fused([tiny_config, tiny_config.replace(width=8)], data_dir=cifar_dir)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_captured_fused_step_trains_as_the_eager_one_across_a_refill(cifar_dir: Path,
                                                                         tiny_config: TrainConfig) -> None:
    configs = varied(tiny_config.replace(device="cuda", precision="fp32", epochs=2))

    def run(compile: str) -> list[TrainResult]:
        queue = [configs[2].replace(compile=compile)]
        stopped: list[int] = []

        def stop_slot_0(slot: int, record: EpochRecord) -> None:
            if slot == 0 and not stopped:  # its first trial only: the refilled one runs to the end
                stopped.append(slot)
                raise StopTraining("pruned at epoch 1")

        return train_fused([c.replace(compile=compile) for c in configs[:2]], data_dir=cifar_dir,
                           on_epoch=stop_slot_0, refill=lambda slot: queue.pop() if queue else None)

    captured, eager = run("cudagraphs"), run("off")
    assert [r.config.seed for r in captured] == [r.config.seed for r in eager] == [0, 1, 2]
    for g, e in zip(captured, eager, strict=True):
        assert_same_history(g, e)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_trials_train_under_bf16_autocast_eager_and_captured(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    """bf16 is the CUDA default: BatchNorm under vmap must take the autocast activations (it runs them in fp32)."""
    configs = varied(tiny_config.replace(device="cuda", precision="bf16", epochs=2))[:2]
    captured, eager = (train_fused([c.replace(compile=mode) for c in configs], data_dir=cifar_dir)
                       for mode in ("cudagraphs", "off"))
    assert [r.config.seed for r in captured] == [r.config.seed for r in eager]
    for g, e in zip(captured, eager, strict=True):
        assert all(np.isfinite(r.train_loss) and np.isfinite(r.val_loss) for r in g.history)
        assert_same_history(g, e)

from pathlib import Path

import pytest
import torch

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.train import EpochRecord, StopTraining, train


def test_history_has_every_metric_per_epoch(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    result = train(tiny_config, data_dir=cifar_dir)
    assert result.status == "completed" and [r.epoch for r in result.history] == [1, 2]
    for r in result.history:
        assert 0 <= r.val_acc <= 1 and 0 <= r.val_bacc <= 1 and 0 <= r.train_acc <= 1
        assert r.train_loss > 0 and r.val_loss > 0 and r.lr > 0 and r.seconds > 0
    assert result.final_val_acc == result.history[-1].val_acc


@pytest.mark.slow
def test_a_seeded_cpu_run_is_deterministic(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    a = train(tiny_config, data_dir=cifar_dir)
    b = train(tiny_config, data_dir=cifar_dir)
    c = train(tiny_config.replace(seed=1), data_dir=cifar_dir)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.val_acc for r in a.history] == [r.val_acc for r in b.history]
    assert [r.train_loss for r in a.history] != [r.train_loss for r in c.history]


def test_lr_50_stops_as_diverged_within_two_epochs(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    seen: list[EpochRecord] = []
    result = train(tiny_config.replace(lr=50.0, epochs=6, warmup_epochs=0), data_dir=cifar_dir, on_epoch=seen.append)
    assert result.status == "diverged" and len(result.history) <= 2
    assert "learning rate is too large" in result.reason and len(seen) < len(result.history)


def test_the_callback_can_stop_the_run_with_a_reason(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    def prune(record: EpochRecord) -> None:
        raise StopTraining(f"pruned at epoch {record.epoch}")

    result = train(tiny_config.replace(epochs=5), data_dir=cifar_dir, on_epoch=prune)
    assert result.status == "stopped" and result.reason == "pruned at epoch 1" and len(result.history) == 1


@pytest.mark.slow
def test_test_set_is_read_only_when_asked(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    assert train(tiny_config, data_dir=cifar_dir).test_acc is None
    result = train(tiny_config, data_dir=cifar_dir, evaluate_test=True)
    assert 0 <= result.test_acc <= 1 and 0 <= result.test_bacc <= 1


def test_long_tail_with_class_weights_trains(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace(imbalance_ratio=5, class_weights="effective", label_smoothing=0.1, cutout=8)
    assert train(config, data_dir=cifar_dir).status == "completed"


def test_standard_width_is_the_11m_parameter_resnet18() -> None:
    model = CifarResNet18(10, 64)
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000
    assert isinstance(model.stem[0], torch.nn.Conv2d) and model.stem[0].kernel_size == (3, 3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_run(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace(device="cuda", precision="bf16", channels_last=True, compile="off")
    result = train(config, data_dir=cifar_dir)
    assert result.status == "completed" and result.device.startswith("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_syncs_with_the_host_about_once_per_epoch(cifar_dir: Path, tiny_config: TrainConfig) -> None:
    import warnings

    def syncs(epochs: int) -> int:
        config = tiny_config.replace(device="cuda", epochs=epochs, compile="off")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train(config, data_dir=cifar_dir)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message).lower() for w in caught)

    syncs(1)  # warm-up: cuDNN autotuning, allocator, data upload
    # Setting up a run (uploading the model and the data) syncs a fixed number of times; two more epochs may
    # add about one sync each.
    assert syncs(4) - syncs(2) <= 2 + 2

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hpsearch.objectives.config import TrainConfig
from tests.cifar_files import write_cifar


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def tiny_config() -> TrainConfig:
    """A run that takes well under a second on a CPU."""
    return TrainConfig(width=4, epochs=2, batch_size=32, val_fraction=0.25, device="cpu", lr=0.05,
                       scheduler="cosine", warmup_epochs=0.5, channels_last=False)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Bit-exactness holds for a given thread count; one thread also keeps these runs quick on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Balanced batches: class frequencies of the device draws, and determinism under a seed."""

import numpy as np
import pytest
import torch

from hpsearch.objectives.data import Split
from hpsearch.objectives.loader import DeviceLoader

COUNTS = np.array([800, 400, 200, 100, 50])  # a long tail, largest / smallest = 16


def long_tail_split() -> Split:
    labels = np.repeat(np.arange(len(COUNTS)), COUNTS)
    return Split(np.zeros((len(labels), 3, 32, 32), dtype=np.uint8), labels)


def drawn_labels(sampling: str, seed: int = 0, epochs: int = 20) -> np.ndarray:
    loader = DeviceLoader(long_tail_split(), 250, torch.device("cpu"), shuffle=True, seed=seed, sampling=sampling)
    return np.concatenate([y.numpy() for _ in range(epochs) for _, y in loader])


def chi_square(observed: np.ndarray, expected_share: np.ndarray) -> float:
    counts = np.bincount(observed, minlength=len(expected_share))
    expected = expected_share * len(observed)
    return float(((counts - expected) ** 2 / expected).sum())


# Chi-square with 4 degrees of freedom exceeds 23.5 with probability 1e-4; the draws are seeded, so the
# test is deterministic, and the bound leaves room for any seed a future change might pick.
BOUND = 23.5
SHARES = {
    "class_balanced": np.full(len(COUNTS), 1 / len(COUNTS)),
    "sqrt": np.sqrt(COUNTS) / np.sqrt(COUNTS).sum(),
    "uniform": COUNTS / COUNTS.sum(),
}


@pytest.mark.parametrize("sampling", ["class_balanced", "sqrt", "uniform"])
def test_draws_have_the_promised_class_frequencies(sampling: str) -> None:
    labels = drawn_labels(sampling)
    assert len(labels) == 20 * COUNTS.sum()  # an epoch keeps its length
    assert chi_square(labels, SHARES[sampling]) < BOUND
    for other, share in SHARES.items():  # and the test can tell the three apart
        if other != sampling:
            assert chi_square(labels, share) > 10 * BOUND


def test_balanced_draws_are_deterministic_under_a_seed_and_differ_across_seeds() -> None:
    a, b, c = drawn_labels("class_balanced", 3, 2), drawn_labels("class_balanced", 3, 2), drawn_labels(
        "class_balanced", 4, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_minority_samples_are_repeated_within_an_epoch() -> None:
    loader = DeviceLoader(long_tail_split(), 1550, torch.device("cpu"), shuffle=True, sampling="class_balanced")
    order = loader.epoch_order()
    rare = order[torch.from_numpy(long_tail_split().labels)[order] == 4]
    assert len(rare) > 50 and len(torch.unique(rare)) <= 50  # 50 images, drawn about 310 times


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_balanced_draws_on_cuda_keep_their_frequencies_and_seed() -> None:
    def draws(seed: int) -> np.ndarray:
        loader = DeviceLoader(long_tail_split(), 250, torch.device("cuda"), shuffle=True, seed=seed,
                              sampling="class_balanced")
        return np.concatenate([y.cpu().numpy() for _ in range(20) for _, y in loader])

    a = draws(0)
    assert chi_square(a, SHARES["class_balanced"]) < BOUND and np.array_equal(a, draws(0))

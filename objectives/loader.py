"""The device data pipeline: a split lives on the device as uint8; an epoch is a permutation plus slices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from hpsearch.objectives import augment
from hpsearch.objectives.data import MEAN, STD, Split


@dataclass(frozen=True)
class Augmentation:
    crop: bool = True
    flip: bool = True
    cutout: int = 0


class DeviceLoader:
    """Batches of normalised float images from a uint8 copy of the split held on `device`.

    The split is copied to the device once; crop, flip, cutout and normalisation run batched there.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device,
        *,
        augmentation: Augmentation | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        channels_last: bool = False,
        seed: int = 0,
        sampling: str = "uniform",
    ) -> None:
        self.images = torch.from_numpy(split.images).to(device, non_blocking=True)
        self.labels = torch.from_numpy(split.labels).to(device, non_blocking=True)
        self.batch_size = batch_size
        self.device = device
        self.augmentation = augmentation
        self.shuffle = shuffle
        # Dropping a short last batch keeps BatchNorm statistics sane; never drop the only batch.
        self.drop_last = drop_last and len(self.labels) > batch_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self._order: torch.Tensor | None = None  # the permutation of the epoch under way
        self._next_batch = 0
        self._resume: tuple[torch.Tensor, int] | None = None
        self._mean = torch.tensor(MEAN, device=device)
        self._std = torch.tensor(STD, device=device)
        self.sample_weights = sample_weights(self.labels, sampling) if shuffle and sampling != "uniform" else None

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._resume is not None:  # an epoch restored mid-way by load_state_dict
            order, start = self._resume
            self._resume = None
        else:
            order, start = self.epoch_order(), 0
        self._order = order
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch = self.transform(self.images[idx]), self.labels[idx]
            self._next_batch = b + 1
            yield batch
        self._order, self._next_batch = None, 0

    @property
    def next_batch(self) -> int:
        """Index of the next batch of the epoch under way, or of a restored one (0 between epochs)."""
        return self._resume[1] if self._resume is not None else self._next_batch

    def state_dict(self) -> dict:
        """The generator and, mid-epoch, the epoch's order and next batch: enough to resume exactly."""
        return {"generator": self.generator.get_state(), "order": self._order, "next_batch": self._next_batch}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`; a mid-epoch state makes the next iteration finish that epoch."""
        self.generator.set_state(state["generator"])
        order = state["order"]
        self._resume = (order.to(self.device), state["next_batch"]) if order is not None else None

    def epoch_order(self) -> torch.Tensor:
        """The sample indices of the next epoch, drawn on the device."""
        n = len(self.labels)
        if self.sample_weights is not None:
            # One draw per epoch on the device: n indices with replacement, rare classes repeated.
            order = torch.multinomial(self.sample_weights, n, replacement=True, generator=self.generator)
        elif self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        return order

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """Augment (when training) and normalise one uint8 batch."""
        aug = self.augmentation
        if aug is not None and aug.crop:
            images = augment.random_crop(images, self.generator)
        if aug is not None and aug.flip:
            images = augment.random_flip(images, self.generator)
        out = augment.normalize(images, self._mean, self._std)
        if aug is not None and aug.cutout:
            out = augment.random_cutout(out, self.generator, aug.cutout)
        return out.contiguous(memory_format=self.memory_format)


def sample_weights(labels: torch.Tensor, sampling: str) -> torch.Tensor:
    """Per-sample draw weights: class_balanced gives every class the same total, sqrt one proportional to
    the square root of its count (between uniform and balanced)."""
    counts = torch.bincount(labels).float()
    power = {"class_balanced": 1.0, "sqrt": 0.5}[sampling]
    per_class = torch.where(counts > 0, counts.clamp(min=1) ** -power, torch.zeros_like(counts))
    return per_class[labels]

"""Batched augmentation as pure tensor functions: `(images, generator) -> images`, no per-image Python."""

from __future__ import annotations

import torch


def crop_at(images: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Shift image i by (dx[i], dy[i]) in [-padding, padding] over a reflect-padded border: a 32x32 crop.

    out[i, :, y, x] = reflect_pad(images, padding)[i, :, y + padding + dy[i], x + padding + dx[i]]
    """
    n, c, h, w = images.shape
    # Reflect the source index instead of materialising a padded copy: one gather, any dtype.
    rows = _reflect(torch.arange(h, device=images.device).view(1, h) + dy.view(n, 1), h)
    cols = _reflect(torch.arange(w, device=images.device).view(1, w) + dx.view(n, 1), w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return images[batch, chan, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror out-of-range indices without repeating the edge pixel (numpy/torch 'reflect')."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def random_crop(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random translation by up to `padding` pixels with reflect padding (the standard CIFAR crop)."""
    n = images.shape[0]
    shifts = torch.randint(-padding, padding + 1, (2, n), generator=generator, device=images.device)
    return crop_at(images, shifts[0], shifts[1], padding)


def flip_where(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose mask entry is True."""
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(3), images)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal flip with probability 1/2 per image."""
    mask = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return flip_where(images, mask)


def random_cutout(images: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """Zero a size x size square (clipped at the border) at a random centre of each image."""
    n, _, h, w = images.shape
    centre = torch.randint(0, h, (2, n), generator=generator, device=images.device)
    ys = torch.arange(h, device=images.device).view(1, h, 1)
    xs = torch.arange(w, device=images.device).view(1, 1, w)
    top, left = (centre[0] - size // 2).view(n, 1, 1), (centre[1] - size // 2).view(n, 1, 1)
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return images.masked_fill(inside.unsqueeze(1), 0)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 to float, per-channel standardised."""
    return (images.float().div_(255) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

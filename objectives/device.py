"""Sharing one GPU between several trial processes (`hpsearch worker --per-device K`)."""

from __future__ import annotations

import torch

# The CUDA context and cuDNN workspaces live outside the caching allocator's cap: leave them room.
HEADROOM = 0.9


def cap_memory_share(device: str, share: int) -> float:
    """Cap this process's caching allocator at ~1/share of `device`'s memory, so K processes cannot push
    each other out of memory (one that outgrows its share gets its own out-of-memory error, not a neighbour).
    Returns the fraction set; 1 process or a CPU device sets nothing."""
    target = torch.device(device)
    if target.type != "cuda" or share <= 1:
        return 1.0
    fraction = HEADROOM / share
    index = target.index if target.index is not None else torch.cuda.current_device()
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return fraction


def channels_last_on(asked: bool, device: torch.device) -> bool:
    """Whether a run uses the channels-last layout: where the config asks for it and the device is a GPU.

    On the CPU the contiguous layout is kept: it is what the CPU's convolutions are fast at, and oneDNN's
    channels-last convolution backward hangs, or corrupts memory with one thread, on some CPUs (seen with torch
    2.14 on an AMD EPYC with AVX2; `objectives/compiled.py` keeps torch.compile from choosing that layout on
    such a machine). The layout never changes the math beyond float rounding.
    """
    return asked and device.type == "cuda"

"""Compile once per process: a cache of models by shape, re-initialised in place for every trial.

torch.compile costs tens of seconds per model shape; a worker trains many trials of the same shape, so the
compiled model is kept and a new trial copies fresh weights (built from its seed exactly as an uncompiled run
would build them) into the same tensors. Keeping the tensors keeps compiled code and captured graphs valid.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.model import CifarResNet18

MAX_CACHED = 4  # model shapes kept per process; a search over widths would otherwise hold every one
if not torch.cuda.is_available():
    # On a CPU-only machine torch.compile keeps the contiguous layout instead of turning convolutions to
    # channels-last, as `channels_last_on` does for eager runs: oneDNN's channels-last convolution backward hangs
    # on some CPUs (an AMD EPYC with AVX2, torch 2.14), and with one thread corrupts memory.
    import torch._inductor.config as inductor_config

    inductor_config.layout_optimization = False
# torch.compile's backend; a CPU smoke run of the GPU benchmark sets "eager" to check its code paths in seconds.
COMPILE_BACKEND: str | Callable[..., Any] = "inductor"


@dataclass(frozen=True)
class ModelKey:
    num_classes: int
    width: int
    batch_size: int
    mode: str  # off | on: a captured step (cudagraphs) runs the same compiled model
    device: str
    channels_last: bool


@dataclass
class CachedModel:
    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]  # the compiled module, or the model itself
    uses: int = 0  # trials that took it; the first one paid for the compilation


_CACHE: OrderedDict[tuple[ModelKey, Any], CachedModel] = OrderedDict()


def resolve_compile(mode: str, device: torch.device) -> str:
    """`auto` -> `cudagraphs` for CUDA and `off` for the CPU; CUDA graphs on the CPU are bad input.

    On CUDA, compiling alone does not pay at batch 128 (the step stays bound by kernel launches); the
    captured step does (bench/gpu_suite.py); on the CPU compilation costs more than short trials gain."""
    if mode == "auto":
        return "cudagraphs" if device.type == "cuda" else "off"
    if mode == "cudagraphs" and device.type != "cuda":
        raise ConfigError("compile: cudagraphs needs a CUDA device; use compile: on or off on the CPU")
    return mode


def build_model(num_classes: int, width: int, seed: int) -> nn.Module:
    """A fresh model on the CPU from `seed`: the one definition of a trial's initial weights."""
    torch.manual_seed(seed)
    return CifarResNet18(num_classes, width)


def model_for(key: ModelKey, seed: int, backend: str | Callable[..., Any] | None = None) -> CachedModel:
    """The model for `key` with weights freshly initialised from `seed`; compiled ones come from the cache."""
    backend = COMPILE_BACKEND if backend is None else backend
    if key.mode == "cudagraphs":
        key = dataclasses.replace(key, mode="on")
    device = torch.device(key.device)
    memory_format = torch.channels_last if key.channels_last else torch.contiguous_format
    fresh = build_model(key.num_classes, key.width, seed)
    if key.mode == "off":
        model = fresh.to(device, memory_format=memory_format)
        return CachedModel(model, model, uses=1)
    cache_key = (key, backend)
    entry = _CACHE.get(cache_key)
    if entry is None:
        model = fresh.to(device, memory_format=memory_format)
        # dynamic=False: every batch has the same shape (the last one is dropped or padded), so one graph each
        # for training and evaluation, never a recompile when the data fraction changes.
        entry = CachedModel(model, torch.compile(model, dynamic=False, backend=backend))
        _CACHE[cache_key] = entry
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(cache_key)
        reinitialise(entry.model, fresh)
    entry.uses += 1
    return entry


@torch.no_grad()
def reinitialise(model: nn.Module, fresh: nn.Module) -> None:
    """Copy `fresh`'s parameters and buffers into `model` in place (same tensors, same memory layout)."""
    target = dict(model.named_parameters()) | dict(model.named_buffers())
    source = dict(fresh.named_parameters()) | dict(fresh.named_buffers())
    for name, tensor in target.items():
        tensor.copy_(source[name])
        if isinstance(tensor, nn.Parameter):
            tensor.grad = None
    model.train()


def clear_cache() -> None:
    """Forget every cached model (tests; a worker keeps its cache for its whole life)."""
    _CACHE.clear()

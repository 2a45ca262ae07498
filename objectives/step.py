"""One training step, eager / compiled or replayed from a CUDA graph, with the epoch's sums kept on the device.

At batch 128 an eager ResNet-18 step launches hundreds of small kernels and is bound by launch overhead on a
large GPU. `GraphStep` captures forward, loss, backward and the optimizer step once per trial and replays them
with one launch; the LR lives in a device tensor that the schedule sets in place, so changing it every step
needs no recapture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
WARMUP_STEPS = 2  # before capture: builds optimizer state, runs the compiler and cuDNN's autotuner


class TrainStep:
    """Eager or torch.compile'd step; sums of loss and hits stay on the device until the epoch ends."""

    def __init__(self, model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                 optimizer: torch.optim.Optimizer, loss_fn: LossFn, autocast: Any, device: torch.device) -> None:
        self.model, self.forward, self.optimizer = model, forward, optimizer
        self.loss_fn, self.autocast = loss_fn, autocast
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.first_loss: torch.Tensor | None = None
        self.seen = 0

    def start_epoch(self, loss_sum: torch.Tensor | None = None, correct: torch.Tensor | None = None,
                    seen: int = 0) -> None:
        """Zero the epoch's sums, or set them to those of an epoch resumed mid-way (in place: a captured
        graph reads and writes these very tensors)."""
        self.model.train()
        if loss_sum is None or correct is None:
            self.loss_sum.zero_()
            self.correct.zero_()
        else:
            self.loss_sum.copy_(loss_sum)
            self.correct.copy_(correct)
        self.seen = seen

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with self.autocast:
            logits = self.forward(x)
            loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._accumulate(loss.detach().float(), logits.detach(), y)

    def _accumulate(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        if self.first_loss is None:
            self.first_loss = loss.clone()  # stays on the device: no sync
        self.loss_sum += loss * len(y)
        self.correct += (logits.argmax(1) == y).sum()
        self.seen += len(y)


class GraphStep(TrainStep):
    """The whole step captured in a CUDA graph; inputs are copied into static buffers before each replay."""

    def __init__(self, model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                 optimizer: torch.optim.Optimizer, loss_fn: LossFn, autocast: Any, device: torch.device,
                 example: tuple[torch.Tensor, torch.Tensor]) -> None:
        super().__init__(model, forward, optimizer, loss_fn, autocast, device)
        self.static_x = torch.empty_like(example[0])
        self.static_y = torch.empty_like(example[1])
        self.static_x.copy_(example[0])
        self.static_y.copy_(example[1])
        self._warm_up_and_capture()

    def _graph_body(self) -> tuple[torch.Tensor, torch.Tensor]:
        with self.autocast:
            logits = self.forward(self.static_x)
            loss = self.loss_fn(logits, self.static_y)
        loss.backward()
        self.optimizer.step()
        return loss.detach().float(), logits.detach()

    def _warm_up_and_capture(self) -> None:
        # Warm-up steps change weights, BatchNorm statistics and optimizer state: keep the trial's start (a
        # resumed run's restored state included) and put it back before capture (capture itself records kernels
        # without running them).
        saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        saved_state = optimizer_state_copy(self.optimizer)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_STEPS):
                self.optimizer.zero_grad(set_to_none=True)
                self._graph_body()
        torch.cuda.current_stream().wait_stream(stream)
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                v.copy_(saved[k])
            restore_optimizer_state(self.optimizer, saved_state)
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: other threads of the process (a DataLoader's pin-memory thread, a storage heartbeat)
        # may call CUDA while this thread captures; the default global mode would invalidate the capture.
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.static_loss, self.static_logits = self._graph_body()
            self.static_loss_sum = self.loss_sum + self.static_loss * self.static_y.shape[0]
            self.static_hits = self.correct + (self.static_logits.argmax(1) == self.static_y).sum()
            self.loss_sum.copy_(self.static_loss_sum)
            self.correct.copy_(self.static_hits)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        self.graph.replay()
        if self.first_loss is None:
            self.first_loss = self.static_loss.clone()
        self.seen += len(y)


OptimizerState = dict[torch.Tensor, dict[str, Any]]  # param -> its state, as `optimizer.state` holds it


@torch.no_grad()
def optimizer_state_copy(optimizer: torch.optim.Optimizer) -> OptimizerState:
    """A copy of the state the optimizer holds now: none before its first step, a resumed run's restored state."""
    return {param: {name: value.detach().clone() if isinstance(value, torch.Tensor) else value
                    for name, value in state.items()}
            for param, state in optimizer.state.items()}


@torch.no_grad()
def restore_optimizer_state(optimizer: torch.optim.Optimizer, saved: OptimizerState) -> None:
    """Put the optimizer's state back to `saved` in place (captured kernels keep the tensors' addresses).

    State that `saved` does not hold was created by the steps since: it becomes what a fresh optimizer's first
    step would create. Zero momentum / moment buffers and step counts give the same first update as lazily
    created ones (SGD: buf = momentum * 0 + grad = grad); NAdam's running product of momenta starts at one.
    """
    for param, state in optimizer.state.items():
        before = saved.get(param, {})
        for name, value in state.items():
            if name in before and isinstance(value, torch.Tensor):
                value.copy_(before[name])
            elif name in before:
                state[name] = before[name]
            elif isinstance(value, torch.Tensor):
                value.fill_(1.0 if name == "mu_product" else 0.0)

"""K trials of one shape as one model: stacked weights, a per-trial loss, one optimizer step, one training step.

Stacked weights under `torch.func.vmap` rather than a grouped-convolution rewrite of the network: torch's
batching rule for a convolution whose input and weight are both batched runs one grouped convolution
(groups = K), the kernel a hand-written grouped model would launch, while the model stays `CifarResNet18`:
slot k's weights are exactly a plain model's, built from the trial's seed as `train()` builds them, and a
trial's state_dict is a slice. BatchNorm running statistics are stacked buffers that vmap updates in place,
one set per trial. Under bf16 autocast BatchNorm runs on an fp32 copy of its input (`_FloatNorm`): under vmap
the CUDA kernel refuses a bf16 input with fp32 running statistics ("Expected running_mean to have type
BFloat16"), which a plain model's kernel takes; the output goes back to the input's dtype, as a plain
model's does. The step is eager or captured in a CUDA graph (as `step.GraphStep`); torch.compile is not
applied to the vmapped model.

Channels-last, as a plain model on a GPU runs: vmap hands a convolution the K slots' activations as one
[B, K*C, H, W] tensor, a view where K sits beside C in memory. So the stacked input is laid out [B, H, W, K, C]
(`stack_batches`) and each conv weight [K, Cout, kh, kw, Cin]: the merged input and weight are then
channels-last views, no copy, and every activation after them stays channels-last. Laid out plainly, the
merged tensors are [B, K*C, H, W] and [K*Cout, Cin, kh, kw] in the contiguous layout, and the whole network
runs in it.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.losses import class_weights
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.step import WARMUP_STEPS

FUSED_OPTIMIZERS = ("sgd", "adamw")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.AdamW's defaults, which `optim._adamw` keeps


class _FloatNorm(nn.BatchNorm2d):
    """BatchNorm on its input cast to its weights' dtype, returned in the input's (no-ops without autocast)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(self.weight.dtype)).to(x.dtype)


def stack_batches(batches: list[torch.Tensor], channels_last: bool = False) -> torch.Tensor:
    """The slots' [B, C, H, W] batches as one [K, B, C, H, W] tensor; `channels_last` lays it out [B, H, W, K, C]
    in memory, which vmap's convolution reads as a channels-last [B, K*C, H, W] without a copy."""
    if not channels_last:
        return torch.stack(batches)
    return torch.stack([b.permute(0, 2, 3, 1) for b in batches], dim=3).permute(3, 0, 4, 1, 2)


def _stacked(tensor: torch.Tensor, slots: int, channels_last: bool, device: torch.device) -> torch.Tensor:
    """`slots` copies of a tensor on `device`, a conv weight laid out [K, Cout, kh, kw, Cin] where `channels_last`."""
    if not channels_last or tensor.ndim != 4:
        return torch.stack([tensor] * slots).to(device)
    out, cin, kh, kw = tensor.shape
    laid = torch.empty_strided((slots, out, cin, kh, kw), (out * kh * kw * cin, kh * kw * cin, 1, kw * cin, cin),
                               dtype=tensor.dtype, device=device)
    return laid.copy_(torch.stack([tensor] * slots))


class _MeanPool(nn.AdaptiveAvgPool2d):
    """The global average pool as a mean over H and W: vmap has no batching rule for the channels-last path of
    `adaptive_avg_pool2d` and would run it once per slot."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1), keepdim=True)


class StackedModel:
    """`slots` ResNet-18s of one shape; `forward` takes [K, B, 3, 32, 32] (or one shared [B, ...] batch), laid out
    by `stack_batches` with the model's `channels_last`."""

    def __init__(self, num_classes: int, width: int, slots: int, device: torch.device,
                 channels_last: bool = False) -> None:
        template = CifarResNet18(num_classes, width)
        self.slots = slots
        self.params = {n: _stacked(p.detach(), slots, channels_last, device).requires_grad_()
                       for n, p in template.named_parameters()}
        self.buffers = {n: torch.stack([b] * slots).to(device) for n, b in template.named_buffers()}
        self.base = copy.deepcopy(template).to("meta")  # the architecture only: weights come from the stacks
        for module in self.base.modules():
            if type(module) is nn.BatchNorm2d:
                module.__class__ = _FloatNorm  # the same module and state names, an fp32 forward
            elif type(module) is nn.AdaptiveAvgPool2d and module.output_size in (1, (1, 1)):
                module.__class__ = _MeanPool

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Logits [K, B, classes]; `shared` feeds the same batch to every slot (validation)."""
        return vmap(self._call, in_dims=(0, 0, None if shared else 0), randomness="error")(
            self.params, self.buffers, x)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    @torch.no_grad()
    def load_slot(self, slot: int, model: nn.Module) -> None:
        """Copy a plain model's weights and BatchNorm statistics into `slot`, in place."""
        for name, tensor in model.named_parameters():
            self.params[name][slot].copy_(tensor)
        for name, tensor in model.named_buffers():
            self.buffers[name][slot].copy_(tensor)

    def state(self) -> dict[str, torch.Tensor]:
        return self.params | self.buffers


class StackedLoss:
    """Cross-entropy per slot with its own class weights and label smoothing, as `losses.build_loss` gives one
    trial: [(1 - e) sum w_y nll + e / C sum_c w_c (-log p_c)] / sum w_y over the batch."""

    def __init__(self, slots: int, num_classes: int, device: torch.device) -> None:
        self.weight = torch.ones(slots, num_classes, device=device)
        self.smoothing = torch.zeros(slots, device=device)

    def set_slot(self, slot: int, counts: Any, config: TrainConfig) -> None:
        weight = class_weights(counts, config) if config.class_weights != "none" else 1.0
        self.weight[slot] = torch.as_tensor(weight, dtype=torch.float32)
        self.smoothing[slot] = config.label_smoothing

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-slot mean losses [K] of logits [K, B, C] against labels [K, B]."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        w_y = self.weight.gather(1, y)
        nll = -logp.gather(2, y.unsqueeze(-1)).squeeze(-1)
        smooth = -(logp * self.weight.unsqueeze(1)).sum(-1) / logits.shape[-1]
        eps = self.smoothing
        return ((1 - eps) * (w_y * nll).sum(1) + eps * smooth.sum(1)) / w_y.sum(1)


class FusedOptimizer:
    """SGD (momentum, nesterov, coupled weight decay) or AdamW (decoupled) over stacked parameters, with each
    trial's LR, momentum and weight decay as [K] tensors: one update for all trials, capturable in a graph."""

    def __init__(self, params: dict[str, torch.Tensor], kind: str, slots: int, device: torch.device) -> None:
        assert kind in FUSED_OPTIMIZERS
        self.kind, self.slots = kind, slots
        self.params = list(params.values())
        self.is_weight = [p.ndim > 2 for p in self.params]  # conv and linear weights: `optim.param_groups`' rule

        def per_slot() -> torch.Tensor:
            return torch.zeros(slots, device=device)
        self.lr, self.momentum, self.weight_decay, self.decay_all = per_slot(), per_slot(), per_slot(), per_slot()
        self.nesterov, self.steps = per_slot(), per_slot()
        names = ("buf",) if kind == "sgd" else ("exp_avg", "exp_avg_sq")
        self.state = [{n: torch.zeros_like(p, memory_format=torch.preserve_format) for n in names}
                      for p in self.params]

    @torch.no_grad()
    def set_slot(self, slot: int, config: TrainConfig) -> None:
        """A fresh optimizer for `slot`'s new trial: its knobs, and zero momentum (what a first step creates)."""
        self.momentum[slot] = config.momentum
        self.weight_decay[slot] = config.weight_decay
        self.decay_all[slot] = float(config.decay_norm_and_bias)
        self.nesterov[slot] = float(config.nesterov and config.momentum > 0)
        self.steps[slot] = 0
        for state in self.state:
            for tensor in state.values():
                tensor[slot].zero_()

    @torch.no_grad()
    def reset_state(self) -> None:
        """Zero every slot's moments and step counts (after the warm-up steps before a capture)."""
        self.steps.zero_()
        for state in self.state:
            for tensor in state.values():
                tensor.zero_()

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for p, is_weight, state in zip(self.params, self.is_weight, self.state, strict=True):
            if p.grad is None:
                continue
            shape = (self.slots,) + (1,) * (p.ndim - 1)
            wd = (self.weight_decay if is_weight else self.weight_decay * self.decay_all).view(shape)
            lr = self.lr.view(shape)
            if self.kind == "sgd":  # torch.optim.SGD: a zero buffer's first update is the gradient itself
                grad = p.grad + wd * p
                buf = state["buf"].mul_(self.momentum.view(shape)).add_(grad)
                update = torch.where(self.nesterov.view(shape) > 0, grad + self.momentum.view(shape) * buf, buf)
                p.sub_(lr * update)
            else:  # torch.optim.AdamW
                b1, b2 = ADAM_BETAS
                p.mul_(1 - lr * wd)
                state["exp_avg"].lerp_(p.grad, 1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                bc1 = (1 - torch.pow(b1, self.steps)).view(shape)
                bc2 = (1 - torch.pow(b2, self.steps)).view(shape)
                denom = (state["exp_avg_sq"].sqrt() / bc2.sqrt()).add_(ADAM_EPS)
                p.sub_(lr / bc1 * state["exp_avg"] / denom)


class FusedStep:
    """Forward, per-slot losses, backward and the fused update for all slots; per-slot sums stay on the device.

    With `example` (CUDA), the step is captured once as a graph and replayed; the LR, momentum and weight decay
    are device tensors set in place, so neither a new LR nor a refilled slot needs a recapture.
    """

    def __init__(self, model: StackedModel, optimizer: FusedOptimizer, loss_fn: StackedLoss, autocast: Any,
                 device: torch.device, example: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.model, self.optimizer, self.loss_fn, self.autocast = model, optimizer, loss_fn, autocast
        k = model.slots
        self.loss_sum = torch.zeros(k, device=device)
        self.correct = torch.zeros(k, device=device, dtype=torch.long)
        self.first_loss = torch.zeros(k, device=device)
        self.fresh: set[int] = set(range(k))  # slots whose trial has not taken its first step
        self.seen = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        if example is not None:
            self.static_x = example[0].clone()
            self.static_y = example[1].clone()
            self._warm_up_and_capture()

    def start_epoch(self) -> None:
        self.model.train()
        self.loss_sum.zero_()
        self.correct.zero_()
        self.seen = 0

    def _body(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.autocast:
            logits = self.model.forward(x)
        loss = self.loss_fn(logits, y)
        loss.sum().backward()  # the slots share no weight: each slot's gradient is that of its own loss
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def _sums(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loss_sum + loss * y.shape[1], self.correct + (logits.argmax(-1) == y).sum(1)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.graph is not None:
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
            loss = self.static_loss
        else:
            self.optimizer.zero_grad()
            loss, logits = self._body(x, y)
            loss_sum, correct = self._sums(loss, logits, y)
            self.loss_sum.copy_(loss_sum)
            self.correct.copy_(correct)
        for slot in self.fresh:
            self.first_loss[slot] = loss[slot]  # a device copy: no sync
        self.fresh.clear()
        self.seen += y.shape[1]

    def _warm_up_and_capture(self) -> None:
        # As step.GraphStep: warm-up steps build the autograd graph and run cuDNN's autotuner, then the start
        # is put back (capture records kernels without running them).
        saved = {k: v.detach().clone() for k, v in self.model.state().items()}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_STEPS):
                self.optimizer.zero_grad()
                self._body(self.static_x, self.static_y)
        torch.cuda.current_stream().wait_stream(stream)
        with torch.no_grad():
            for k, v in self.model.state().items():
                v.copy_(saved[k])
        self.optimizer.reset_state()
        self.optimizer.zero_grad()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.static_loss, logits = self._body(self.static_x, self.static_y)
            loss_sum, correct = self._sums(self.static_loss, logits, self.static_y)
            self.loss_sum.copy_(loss_sum)
            self.correct.copy_(correct)


@torch.no_grad()
def evaluate_stacked(model: StackedModel, batches: Any, num_classes: int, autocast: Any,
                     device: torch.device) -> torch.Tensor:
    """[K, 3]: each slot's validation loss, accuracy and balanced accuracy, as `train._evaluate` computes them,
    on the device (the caller decides when to sync)."""
    model.train(False)
    k = model.slots
    loss_sum = torch.zeros(k, device=device)
    hits = torch.zeros(k, num_classes, device=device)
    totals = torch.zeros(num_classes, device=device)
    for x, y in batches:
        with autocast:
            logits = model.forward(x, shared=True)
        per_sample = nn.functional.cross_entropy(logits.float().flatten(0, 1), y.repeat(k), reduction="none")
        loss_sum += per_sample.view(k, -1).sum(1)
        totals.index_add_(0, y, torch.ones(len(y), device=device))
        hits.index_add_(1, y, (logits.argmax(-1) == y).to(hits.dtype))
    n = totals.sum()
    recall = hits / totals.clamp(min=1)
    present = (totals > 0).float()
    return torch.stack([loss_sum / n, hits.sum(1) / n, (recall * present).sum(1) / present.sum()], dim=1)

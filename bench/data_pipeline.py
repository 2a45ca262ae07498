"""Data pipeline benchmark: hpsearch's device-resident pipeline against torchvision's DataLoader.

Baseline: torchvision's `CIFAR10` dataset (its integrity check disabled, see below) with a `DataLoader`
(workers = cores, pinned memory on CUDA) and PIL transforms `RandomCrop(32, padding=4)`,
`RandomHorizontalFlip`, `ToTensor`, `Normalize`. Ours: `DeviceLoader`, the split held on the device as uint8,
crop / flip / normalise as batched tensor ops. Same split (the training part of the validation split), same
model, batch size, optimizer, precision and device; one table, measured in the same run.

Usage:  python bench/data_pipeline.py --data-dir DIR [--device cuda] [--width 64] [--images 45000]
On a CPU the defaults shrink the work (width 16, 5,000 images) so a run takes a couple of minutes.
GPU work is timed with CUDA events around a synchronised region, CPU work with perf_counter.

Results (CIFAR-10 JPEG copy, n=1 run each; see the closing table of a run for the exact figures):
- 2-core CPU, torch 2.15.0, width 16, 4,864 images/epoch, batch 256, fp32: data path 39,685 img/s against
  5,428 (7.3x); a training epoch 7.95 s against 16.51 s (2.08x).
- GPU: not measured yet.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import MEAN, STD, Split, make_splits
from hpsearch.objectives.device import channels_last_on
from hpsearch.objectives.loader import Augmentation, DeviceLoader
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.train import resolve_device


def baseline_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, device: torch.device,
                    workers: int) -> torch.utils.data.DataLoader:
    """torchvision's CIFAR10 dataset class over the same split, with the classic PIL transform chain."""
    import torchvision
    from torchvision import transforms

    class SplitCIFAR10(torchvision.datasets.CIFAR10):
        # The dataset class pins the official archive's MD5 sums; the offline copy differs, so skip the check
        # and hand it the already loaded split (the same arrays our pipeline gets).
        def __init__(self) -> None:
            torchvision.datasets.VisionDataset.__init__(self, root="", transform=transforms.Compose([
                transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                transforms.Normalize(MEAN, STD)]))
            self.train = True
            self.data = images.transpose(0, 2, 3, 1).copy()  # N x 32 x 32 x 3, as torchvision keeps it
            self.targets = labels.tolist()

    return torch.utils.data.DataLoader(
        SplitCIFAR10(), batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
        pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )


def timed(device: torch.device, fn: Callable[[], int]) -> tuple[float, int]:
    """Seconds and images for one call of fn, synchronised on CUDA with events."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        n = fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000, n
    t = time.perf_counter()
    n = fn()
    return time.perf_counter() - t, n


def consume(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device, channels_last: bool) -> int:
    n, fmt = 0, torch.channels_last if channels_last else torch.contiguous_format
    for x, y in batches:
        x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
        y = y.to(device, non_blocking=True)
        n += len(y)
    return n


def train_epoch(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
                optimizer: torch.optim.Optimizer, bf16: bool, channels_last: bool) -> int:
    n, fmt = 0, torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    for x, y in batches:
        x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n += len(y)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("HPSEARCH_DATA_DIR"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--width", type=int, default=None, help="default: 64 on CUDA, 16 on CPU")
    parser.add_argument("--images", type=int, default=None, help="training images; default 45000 CUDA, 5000 CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 512 on CUDA, 256 on CPU")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="baseline DataLoader workers")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    width = args.width or (64 if cuda else 16)
    n_images = args.images or (45000 if cuda else 5000)
    batch = args.batch_size or (512 if cuda else 256)
    split = make_splits(TrainConfig(), args.data_dir).train
    take = np.random.default_rng(0).permutation(len(split))[:n_images]
    images, labels = split.images[take], split.labels[take]
    layout = channels_last_on(True, device)  # as train() does: channels-last on a GPU only
    ours = DeviceLoader(Split(images, labels), batch, device, augmentation=Augmentation(), shuffle=True,
                        drop_last=True, channels_last=layout)
    base = baseline_loader(images, labels, batch, device, args.workers)
    rows = []
    for name, loader in (("torchvision DataLoader + PIL", base), ("hpsearch DeviceLoader", ours)):
        consume(loader, device, layout)  # warm-up: worker start, first upload
        data_s = min(timed(device, lambda lo=loader: consume(lo, device, layout))[0] for _ in range(args.epochs))
        torch.manual_seed(0)
        model = CifarResNet18(10, width).to(device, memory_format=torch.channels_last if layout else
                                            torch.contiguous_format)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        train_epoch(model, loader, device, opt, cuda, layout)  # warm-up epoch (cudnn autotuning, allocator)
        epoch_s = min(timed(device, lambda lo=loader, m=model, o=opt: train_epoch(m, lo, device, o, cuda, layout))[0]
                      for _ in range(args.epochs))
        n = len(loader) * batch
        rows.append((name, n / data_s, epoch_s, n / epoch_s))
    print(f"\ndevice {device} ({torch.cuda.get_device_name(device) if cuda else f'{os.cpu_count()} CPU cores'}), "
          f"torch {torch.__version__}, ResNet-18 width {width}, batch {batch}, {len(ours) * batch} images/epoch, "
          f"{'bf16' if cuda else 'fp32'}, channels_last, best of {args.epochs} epochs")
    print(f"{'pipeline':<30} {'data img/s':>12} {'epoch s':>9} {'train img/s':>12} {'speedup':>8}")
    for name, data_rate, epoch_s, train_rate in rows:
        print(f"{name:<30} {data_rate:>12,.0f} {epoch_s:>9.2f} {train_rate:>12,.0f} {train_rate / rows[0][3]:>7.2f}x")


if __name__ == "__main__":
    main()

"""Checkpoint cost: writing and reading a width-64 training state, ours against plain torch.save / torch.load.

The state is what `train` saves: the standard (width 64, 11.2M-parameter) ResNet-18's weights, SGD's momentum
buffers, the LR schedule, the loader's generator, the RNG states and a 30-epoch history (about 90 MB), built by
`TrainingCheckpoint.state` from the real objects after one training step. Baselines, measured in the same run
on the same folder: `torch.save` straight to the final path (no temporary file, no fsync: a crash mid-write
leaves half a file there) and `torch.save` + fsync (durable, still not atomic). Ours: `FileCheckpoint.save`
(temporary file beside it, fsync, `os.replace`, fsync of the folder). Reads: `torch.load` against
`FileCheckpoint.load` (weights_only, plus the checks), then the restore into the model and optimizer.
The overhead line assumes one save at the first epoch end after each interval, as `train` does.

Usage:  python bench/checkpoint.py [--dir DIR] [--device cpu|cuda] [--reps 5] [--epoch-seconds 15]
DIR defaults to runs/bench-checkpoint (local disk); each row is the median of --reps, page cache warm.

Results (median, reps run round-robin):
- 2-core CPU VM shared with other jobs (load average about 10), virtio disk, torch 2.14.1, 89.5 MB, n=9,
  `OMP_NUM_THREADS=1 python bench/checkpoint.py --reps 9`: write 0.326 s plain torch.save, 0.392 s with fsync,
  0.402 s FileCheckpoint.save (1.23x the plain save; the fsync is nearly all of the difference); read 0.135 s
  torch.load, 0.133 s FileCheckpoint.load; restore into model and optimizer 0.052 s. Overhead at the default
  120 s interval with 15 s epochs: 0.33% of the training time. An earlier run on a busier moment (n=5): write
  0.79 s plain, 0.83 s ours: still under a second.
- GPU: not measured yet.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from hpsearch.objectives.checkpoint import FileCheckpoint, TrainingCheckpoint
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import Split
from hpsearch.objectives.loader import Augmentation, DeviceLoader
from hpsearch.objectives.model import CifarResNet18
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.result import EpochRecord, TrainResult
from hpsearch.objectives.schedules import LRSchedule


def build_state(device: torch.device) -> tuple[dict, TrainingCheckpoint]:
    """The state `train` would save after epoch 30 of a width-64 run, from the real objects after one step."""
    config = TrainConfig(width=64, epochs=30, device=device.type, channels_last=False)
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (256, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 256))
    model = CifarResNet18(10, config.width).to(device)
    loader = DeviceLoader(split, 128, device, augmentation=Augmentation(), shuffle=True, seed=0)
    optimizer = build_optimizer(model, config)
    schedule = LRSchedule(optimizer, config, len(loader))
    x, y = next(iter(loader))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()  # creates the momentum buffers
    schedule.after_step()
    result = TrainResult(config=config, history=[EpochRecord(e, 1.0, 0.5, 1.0, 0.5, 0.5, 0.1, 10.0)
                                                 for e in range(1, 31)])
    keeper = TrainingCheckpoint(None, config, 120, model=model, optimizer=optimizer, schedule=schedule,
                                loader=loader, result=result)
    return keeper.state(30, loss.detach()), keeper


def timed(ops: list, reps: int, device: torch.device) -> list[list[float]]:
    """Seconds per call of each op, round-robin over the reps so that a busy moment hits every op alike."""
    out: list[list[float]] = [[] for _ in ops]
    for _ in range(reps):
        for i, fn in enumerate(ops):
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # the save copies from the device: start from an idle GPU
            start = time.perf_counter()
            fn()
            out[i].append(time.perf_counter() - start)
    return out


def fsynced_save(state: dict, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("runs/bench-checkpoint"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epoch-seconds", type=float, default=15.0, help="epoch time for the overhead line")
    parser.add_argument("--interval", type=float, default=120.0, help="checkpoint interval, seconds")
    args = parser.parse_args()
    device = torch.device(args.device)
    args.dir.mkdir(parents=True, exist_ok=True)
    state, keeper = build_state(device)
    plain, durable, ours = args.dir / "plain.pt", args.dir / "durable.pt", args.dir / "ours.pt"
    checkpoint = FileCheckpoint(ours)
    checkpoint.save(state)  # warm-up: allocator, page cache, folder entries
    size_mb = ours.stat().st_size / 1e6

    loaded = checkpoint.load()

    def restore() -> None:
        keeper.model.load_state_dict(loaded["model"])
        keeper.optimizer.load_state_dict(loaded["optimizer"])

    ops = {
        "write: torch.save to the final path (baseline)": lambda: torch.save(state, plain),
        "write: torch.save + fsync": lambda: fsynced_save(state, durable),
        "write: FileCheckpoint.save (tmp, fsync, rename)": lambda: checkpoint.save(state),
        "read: torch.load (baseline)": lambda: torch.load(plain, map_location="cpu", weights_only=True),
        "read: FileCheckpoint.load": checkpoint.load,
        "restore: weights + optimizer into the model": restore,
    }
    rows = list(zip(ops, timed(list(ops.values()), args.reps, device), strict=True))
    base_write, base_read = statistics.median(rows[0][1]), statistics.median(rows[3][1])
    print(f"checkpoint of a width-64 ResNet-18 + SGD momentum: {size_mb:.1f} MB, device {device}, "
          f"torch {torch.__version__}, folder {args.dir}, median of {args.reps}")
    print(f"{'operation':<50} {'median s':>9} {'min s':>8} {'MB/s':>8} {'vs baseline':>12}")
    for i, (name, times) in enumerate(rows):
        median = statistics.median(times)
        base = base_write if i < 3 else base_read
        ratio = f"{median / base:.2f}x" if i < 5 else "-"
        print(f"{name:<50} {median:>9.3f} {min(times):>8.3f} {size_mb / median:>8.0f} {ratio:>12}")
    save_s = statistics.median(rows[2][1])
    per = max(1, math.ceil(args.interval / args.epoch_seconds)) * args.epoch_seconds  # train saves at epoch ends
    print(f"overhead at a {args.interval:g} s interval with {args.epoch_seconds:g} s epochs: one save every "
          f"{per:g} s of training, {save_s:.3f} s each = {100 * save_s / per:.2f}% of the training time")
    for path in (plain, durable, ours):
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

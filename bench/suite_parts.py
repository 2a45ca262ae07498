"""The parts of bench/gpu_suite.py; each runs in a child process and appends its rows to a JSON-lines file."""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpsearch.objectives import compiled
from hpsearch.objectives.compiled import ModelKey, model_for
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import MEAN, STD, Split, make_splits
from hpsearch.objectives.loader import Augmentation, DeviceLoader
from hpsearch.objectives.losses import build_loss
from hpsearch.objectives.optim import build_optimizer
from hpsearch.objectives.schedules import LRSchedule
from hpsearch.objectives.step import GraphStep, TrainStep
from hpsearch.objectives.train import train

ROOT = Path(__file__).resolve().parents[1]
PEAK_FLOPS = 990e12  # dense bf16, H100 / H200 SXM
FLOP_PER_IMAGE = 3.33e9  # ResNet-18 at width 64, forward + backward, one 32x32 image
HEADER = f"{'part':<10} {'measure':<52} {'value':>10} {'unit':<10} note"
NA_CUDA = "n/a (needs CUDA)"


def emit(row: dict[str, Any], rows_file: Path | None) -> None:
    """Print one row at once and append it to the rows file (kept if the part is killed later)."""
    print(format_row(row), flush=True)
    if rows_file is not None:
        with rows_file.open("a") as f:
            f.write(json.dumps(row) + "\n")


def format_row(row: dict[str, Any]) -> str:
    value = row.get("value")
    shown = "-" if value is None else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}")
    return f"{row['part']:<10} {row['measure']:<52} {shown:>10} {row.get('unit', ''):<10} {row.get('note') or ''}"


def mps_running() -> bool:
    """Whether an NVIDIA MPS control daemon runs here (packed processes then share the GPU concurrently)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("nvidia-cuda-mps"):
                return True
        except OSError:
            continue
    return False


def environment(smoke: bool) -> dict[str, Any]:
    cuda = torch.cuda.is_available() and not smoke
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)",
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "cpu_cores": os.cpu_count(), "mps_running": mps_running(), "smoke": smoke,
    }


def environment_line(smoke: bool) -> str:
    e = environment(smoke)
    return (f"{e['device']}, torch {e['torch']} (CUDA {e['cuda']}), Python {e['python']}, {e['cpu_cores']} cores, "
            f"MPS {'running' if e['mps_running'] else 'not running'}{', SMOKE (CPU, tiny model)' if smoke else ''}")


class Settings:
    """What a part trains: the real figures on CUDA, a seconds-long stand-in in smoke mode."""

    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        self.device = torch.device("cpu" if smoke else "cuda")
        self.cuda = self.device.type == "cuda"
        self.width = 4 if smoke else 64
        self.channels_last = not smoke
        self.max_images = 128 if smoke else None  # smoke: a few batches per epoch
        self.batches = (16, 32) if smoke else (128, 512)
        self.base = TrainConfig(width=self.width, batch_size=self.batches[0], device=str(self.device),
                                precision="bf16", channels_last=self.channels_last)
        if smoke:
            compiled.COMPILE_BACKEND = "eager"  # dynamo only: the compiled code path without minutes of codegen

    def peak_note(self, images_per_s: float) -> str:
        if not self.cuda or self.width != 64:
            return ""
        return f"{100 * images_per_s * FLOP_PER_IMAGE / PEAK_FLOPS:.1f}% of dense bf16 peak"


def run(part: str, data_dir: Path, smoke: bool, rows_file: Path | None) -> None:
    """Child entry: run one part, emitting rows as they are measured."""
    s = Settings(smoke)
    if s.cuda:
        torch.backends.cudnn.benchmark = True
    if part.startswith("throughput-"):  # one process per batch size: a failure at one cannot spoil the other
        index = ["throughput-128", "throughput-512"].index(part)
        s.batches = s.batches[index:index + 1]
        part = "throughput"
    {"compile": part_compile, "throughput": part_throughput, "packing": part_packing, "fused": part_fused,
     "pytest": part_pytest}[part](s, data_dir, lambda row: emit({"part": part, **row}, rows_file))


def guarded(out: Callable[[dict[str, Any]], None], measure: str, fn: Callable[[], None]) -> bool:
    """Run one measurement; on an exception emit its error as the row and carry on with the next one."""
    try:
        fn()
        return True
    except Exception as e:  # a benchmark records every failure and goes on
        traceback.print_exc()
        out({"measure": measure, "value": None, "unit": "", "note": f"FAILED: {type(e).__name__}: {e}"[:300]})
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return False


# --- compile cost ----------------------------------------------------------------------------------------------

def part_compile(s: Settings, data_dir: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """Trials of the same shape in one process: the first pays for compilation, later ones should not."""
    config = s.base.replace(data_fraction=1.0 if s.smoke else 0.2, epochs=1, compile="on")
    splits = make_splits(config, data_dir)
    seconds: dict[str, list[float]] = {"on": [], "cudagraphs": []}
    for mode, n in (("on", 3), ("cudagraphs", 2)):
        if mode == "cudagraphs" and not s.cuda:
            out({"measure": "trials with compile: cudagraphs", "value": None, "unit": "", "note": NA_CUDA})
            continue
        for i in range(n):
            def one(mode: str = mode, i: int = i) -> None:
                result = train(config.replace(compile=mode, seed=i), splits=splits)
                seconds[mode].append(result.seconds)
                out({"measure": f"trial {i + 1} with compile: {mode} (1 epoch, data 0.2)", "value": result.seconds,
                     "unit": "s", "note": f"val acc {result.final_val_acc:.3f}"})
            if not guarded(out, f"trial {i + 1} with compile: {mode}", one):
                break
    on = seconds["on"]
    if len(on) == 3:
        out({"measure": "first trial's extra seconds (compilation)", "value": on[0] - on[2], "unit": "s",
             "note": "cold compiler cache" if not s.smoke else "smoke: eager backend"})
        out({"measure": "second trial's extra seconds (target: none)", "value": on[1] - on[2], "unit": "s",
             "note": "same shape, weights re-initialised in place"})
    graphs = seconds["cudagraphs"]
    if len(graphs) == 2 and on:
        out({"measure": "first cudagraphs trial's extra seconds", "value": graphs[0] - graphs[1], "unit": "s",
             "note": "capture per trial; the compiled model is reused"})


# --- throughput and the data path ------------------------------------------------------------------------------

def part_throughput(s: Settings, data_dir: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """Whole training epochs of the 45,000-image split: eager, compiled, CUDA graphs; then the DataLoader."""
    splits = make_splits(s.base, data_dir)
    train_split = splits.train
    if s.max_images is not None:
        train_split = Split(train_split.images[: s.max_images], train_split.labels[: s.max_images])
    best: dict[int, str] = {}
    for batch in s.batches:
        rates: dict[str, float] = {}
        for kind in ("eager", "compiled", "cudagraphs"):
            if kind == "cudagraphs" and not s.cuda:
                out({"measure": f"epoch img/s, batch {batch}, {kind}", "value": None, "unit": "", "note": NA_CUDA})
                continue

            def measure(kind: str = kind, batch: int = batch, rates: dict[str, float] = rates) -> None:
                loader = DeviceLoader(train_split, batch, s.device, augmentation=Augmentation(), shuffle=True,
                                      drop_last=True, channels_last=s.channels_last)
                rate, epoch_s, warm_s = timed_epoch(s, splits.num_classes, batch, kind, loader, train_split)
                rates[kind] = rate
                target = {128: 50_000, 512: 75_000}.get(batch) if kind != "eager" else None
                note = f"epoch {epoch_s:.2f} s; warm-up {warm_s:.1f} s; {s.peak_note(rate)}"
                if target is not None and s.cuda:
                    note += f"; target >= {target:,}"
                out({"measure": f"epoch img/s, batch {batch}, {kind}", "value": rate, "unit": "img/s",
                     "note": note})
            guarded(out, f"epoch img/s, batch {batch}, {kind}", measure)
        if rates:
            best[batch] = max(rates, key=lambda k: rates[k])
            if batch == min(Settings(s.smoke).batches):
                for kind in dict.fromkeys(("eager", best[batch])):
                    def baseline(kind: str = kind, batch: int = batch, ours: float = rates.get(kind, 0.0)) -> None:
                        loader = dataloader_baseline(train_split, batch, s)
                        rate, epoch_s, _ = timed_epoch(s, splits.num_classes, batch, kind, loader, train_split)
                        out({"measure": f"DataLoader+PIL epoch img/s, batch {batch}, {kind} step", "value": rate,
                             "unit": "img/s", "note": f"epoch {epoch_s:.2f} s; device pipeline {ours / rate:.2f}x "
                                                      "(target >= 3x)"})
                    guarded(out, f"DataLoader+PIL epoch, batch {batch}, {kind} step", baseline)


def dataloader_baseline(split: Split, batch: int, s: Settings) -> torch.utils.data.DataLoader:
    """torchvision's CIFAR10 over the same split with the classic PIL transforms; workers = the machine's cores."""
    import torchvision
    from torchvision import transforms

    class SplitCIFAR10(torchvision.datasets.CIFAR10):
        # The class checks the official archive's MD5 sums, which a locally built copy does not match: hand it
        # the already loaded split (the very arrays the device pipeline gets) instead of its files.
        def __init__(self) -> None:
            torchvision.datasets.VisionDataset.__init__(self, root="", transform=transforms.Compose([
                transforms.RandomCrop(32, padding=4, padding_mode="reflect"), transforms.RandomHorizontalFlip(),
                transforms.ToTensor(), transforms.Normalize(MEAN, STD)]))
            self.train = True
            self.data = split.images.transpose(0, 2, 3, 1).copy()  # N x 32 x 32 x 3, as torchvision keeps it
            self.targets = split.labels.tolist()

    workers = 2 if s.smoke else (os.cpu_count() or 1)
    return torch.utils.data.DataLoader(SplitCIFAR10(), batch_size=batch, shuffle=True, drop_last=True,
                                       num_workers=workers, pin_memory=s.cuda, persistent_workers=True)


def timed_epoch(s: Settings, num_classes: int, batch: int, kind: str, loader: Any,
                split: Split) -> tuple[float, float, float]:
    """(images/s, epoch seconds, warm-up seconds): a few warm-up steps, then one whole timed epoch."""
    config = s.base.replace(batch_size=batch, compile="off" if kind == "eager" else "on")
    cached = model_for(ModelKey(num_classes, s.width, batch, "on", str(s.device), s.channels_last), seed=0)
    forward = cached.model if kind == "eager" else cached.forward
    optimizer = build_optimizer(cached.model, config, capturable=kind == "cudagraphs")
    schedule = LRSchedule(optimizer, config, len(loader))
    loss_fn = build_loss(np.bincount(split.labels, minlength=num_classes), config, s.device)
    autocast = torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.cuda, cache_enabled=kind != "cudagraphs")
    fmt = torch.channels_last if s.channels_last else torch.contiguous_format
    step: TrainStep | None = None

    def batches() -> Any:
        for x, y in loader:
            yield x.to(s.device, non_blocking=True).contiguous(memory_format=fmt), y.to(s.device, non_blocking=True)

    warm_start = time.perf_counter()
    for i, (x, y) in enumerate(batches()):
        if step is None:
            args = (cached.model, forward, optimizer, loss_fn, autocast, s.device)
            step = GraphStep(*args, (x, y)) if kind == "cudagraphs" else TrainStep(*args)
        step(x, y)
        schedule.after_step()
        if i == 5:
            break
    sync(s)
    warm_s = time.perf_counter() - warm_start
    assert step is not None
    step.start_epoch()
    start, n = clock(s), 0
    for x, y in batches():
        step(x, y)
        schedule.after_step()
        n += len(y)
    epoch_s = elapsed(s, start)
    return n / epoch_s, epoch_s, warm_s


def sync(s: Settings) -> None:
    if s.cuda:
        torch.cuda.synchronize()


def clock(s: Settings) -> Any:
    if s.cuda:
        torch.cuda.synchronize()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event
    return time.perf_counter()


def elapsed(s: Settings, start: Any) -> float:
    if s.cuda:
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000
    return time.perf_counter() - start


# --- packing ---------------------------------------------------------------------------------------------------

def part_packing(s: Settings, data_dir: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """K trial processes on one GPU: trials per hour at the coarse fidelity (data 0.2, 8 epochs)."""
    from suite_packing import measure_packing

    measure_packing(s.smoke, s.base.replace(data_fraction=0.2, epochs=8, compile="auto"), data_dir, out)


# --- fused trials ----------------------------------------------------------------------------------------------

def part_fused(s: Settings, data_dir: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """K trials as one model: trials per hour at the coarse fidelity (data 0.2, 8 epochs), width 64."""
    from suite_fused import measure_fused

    measure_fused(s.smoke, s.base.replace(data_fraction=0.2, epochs=8, compile="auto"), data_dir, out, guarded)


# --- pytest -m gpu ---------------------------------------------------------------------------------------------

def part_pytest(s: Settings, data_dir: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """The GPU-marked tests of tests/objectives (files that import nothing beyond torch and the project)."""
    if s.smoke:
        out({"measure": "pytest -m gpu", "value": None, "unit": "", "note": "n/a in smoke mode"})
        return
    from suite_pytest import run_gpu_tests

    run_gpu_tests(ROOT, out)

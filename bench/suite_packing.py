"""Packing for bench/gpu_suite.py: K trial processes on one GPU, trials per hour in a common wall-clock window.

The processes are spawned once (the most K), each capping its share of GPU memory as `--per-device K` does,
and each warms up with a one-epoch trial (compilation, cuDNN autotuning) before any window opens. Then the
same windows are run with the first 1, 2 and 4 of them; a trial cut by the window's end counts the fraction
of its epochs done. On a GPU the part starts NVIDIA MPS (`nvidia-cuda-mps-control -d`) before it spawns the
processes, so their kernels run concurrently instead of time-slicing, and stops it at the end; where the
binary is missing, or MPS cannot start, the rows say so and the processes time-slice.
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch.objectives.config import TrainConfig


def packing_worker(rank: int, data_dir: str, config: dict[str, Any], share: int, commands: Any, results: Any) -> None:
    """One trial process: cap memory, warm up, then on each `run` command train back-to-back until its end."""
    try:
        import torch

        from hpsearch.objectives.data import make_splits
        from hpsearch.objectives.device import cap_memory_share
        from hpsearch.objectives.result import StopTraining
        from hpsearch.objectives.train import train

        cfg = TrainConfig.from_dict(config)
        if cfg.device.startswith("cuda"):
            cap_memory_share(cfg.device, share)
        splits = make_splits(cfg, data_dir)
        started = time.perf_counter()
        train(cfg.replace(epochs=1, seed=rank), splits=splits)
        results.put(("ready", rank, time.perf_counter() - started))
        trial = 0
        while True:
            command = commands.get()
            if command[0] == "stop":
                return
            _, start_at, end_at = command
            time.sleep(max(0.0, start_at - time.time()))
            done = 0.0

            def on_epoch(record: Any, end_at: float = end_at) -> None:
                if time.time() >= end_at:
                    raise StopTraining("window closed")

            while time.time() < end_at:
                trial += 1
                result = train(cfg.replace(seed=1000 * rank + trial), splits=splits, on_epoch=on_epoch)
                epochs = len(result.history)
                if time.time() > end_at and result.status == "stopped":
                    # Count only the epochs inside the window: the last one ran partly after its end.
                    last = result.history[-1].seconds
                    epochs -= min(1.0, (time.time() - end_at) / max(last, 1e-9))
                done += epochs / cfg.epochs
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            results.put(("done", rank, done))
    except Exception as e:  # reported to the parent, which records it as the part's error
        results.put(("error", rank, f"{type(e).__name__}: {e}"))


MPS_CONTROL = "nvidia-cuda-mps-control"


def start_mps() -> tuple[bool, str]:
    """Start the MPS control daemon; (whether this run started it, what happened, for the rows' notes)."""
    from suite_parts import mps_running

    if mps_running():
        return False, "MPS already running"
    binary = shutil.which(MPS_CONTROL)
    if binary is None:
        return False, f"MPS not running: {MPS_CONTROL} is not on this machine"
    proc = subprocess.run([binary, "-d"], capture_output=True, text=True, timeout=30)
    time.sleep(1.0)  # the daemon forks; give it a moment before the first client connects
    if proc.returncode != 0 or not mps_running():
        error = (proc.stderr or proc.stdout).strip()[-200:] or f"exit {proc.returncode}"
        return False, f"MPS not running: {MPS_CONTROL} -d failed ({error})"
    return True, f"MPS started by this run ({MPS_CONTROL} -d)"


def stop_mps() -> None:
    binary = shutil.which(MPS_CONTROL)
    if binary is not None:
        subprocess.run([binary], input="quit\n", text=True, capture_output=True, timeout=30)


def measure_packing(smoke: bool, config: TrainConfig, data_dir: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """Emit trials/hour for K = 1, 2, 4 (smoke: 1, 2) processes sharing the device."""
    ks = (1, 2) if smoke else (1, 2, 4)
    window = 3.0 if smoke else 20.0
    if smoke:
        config = config.replace(device="cpu", compile="off", data_fraction=1.0, epochs=2, width=4, batch_size=16)
    started_mps, mps = (False, "smoke: MPS not tried") if smoke else start_mps()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    commands = [ctx.Queue() for _ in range(max(ks))]
    procs = [ctx.Process(target=packing_worker, args=(r, str(data_dir), config.to_dict(), max(ks), commands[r],
                                                      results), daemon=True) for r in range(max(ks))]
    for p in procs:
        p.start()
    try:
        warm = []
        for _ in procs:
            kind, rank, value = results.get(timeout=240)
            if kind == "error":
                raise RuntimeError(f"process {rank}: {value}")
            warm.append(value)
        out({"measure": f"warm-up of {len(procs)} processes (1-epoch trial each, in parallel)", "value": max(warm),
             "unit": "s", "note": f"compile: {config.compile}; memory capped at 1/{max(ks)} of the GPU each; "
                                  + mps})
        base = None
        for k in ks:
            start_at = time.time() + 0.5
            for r in range(k):
                commands[r].put(("run", start_at, start_at + window))
            total = 0.0
            for _ in range(k):
                kind, rank, value = results.get(timeout=window + 120)
                if kind == "error":
                    raise RuntimeError(f"process {rank}: {value}")
                total += value
            per_hour = total / window * 3600
            base = per_hour if base is None else base
            out({"measure": f"trials/hour, K={k} on one device (data 0.2, 8 epochs)", "value": per_hour,
                 "unit": "trials/h", "note": f"{total:.2f} trials in {window:.0f} s; {per_hour / base:.2f}x K=1"
                                             + ("; target >= 2x at K=4" if k == 4 else "") + f"; {mps}"})
    finally:
        for c in commands:
            c.put(("stop",))
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        try:
            while True:
                results.get_nowait()
        except queue.Empty:
            pass
        if started_mps:
            stop_mps()

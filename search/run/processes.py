"""Worker processes: one per device slot, each running the worker loop with SIGTERM handing its trial back;
the launching process waits for them and passes its signals on."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import optuna

from hpsearch.search.errors import BAD_INPUT_ERRORS, CampaignFailed, OptionError
from hpsearch.search.run import worker_log
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.storage import redact_url
from hpsearch.storage.stores import hush_qmc_notice

log = logging.getLogger("hpsearch.search.run.worker")


def _child(campaign: str, options: WorkerOptions, threads: int, share: int = 1) -> None:
    """One worker process: own storage connection, own device, SIGTERM hands the trial back."""
    if options.device == "cpu":
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # read when torch is first imported
    elif share > 1:  # `share` processes on this GPU: each keeps to its part of the memory
        from hpsearch.objectives.device import cap_memory_share

        cap_memory_share(options.device, share)
    run_in_process(campaign, options)


def run_in_process(campaign: str, options: WorkerOptions) -> int:
    """The worker loop in this process, with SIGTERM / SIGINT ending the current trial for a retry; returns the
    exit status: 0 when the loop ended by itself, 128 + the signal's number when a signal stopped it."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker_log.configure(options.log_level, options.log_queue)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    hush_qmc_notice()  # QMCSampler's notice about conditional spaces: plans expect them
    if options.log_queue is None and multiprocessing.parent_process() is None:
        work(campaign, options, stop)  # `hpsearch worker` in this process: the CLI says what went wrong
        return 128 + received[0] if received else 0
    # A child process (`hpsearch run`, or `worker --per-device`): it says itself why it ended, in one line
    # (under `hpsearch run` the parent shows its last error line).
    try:
        work(campaign, options, stop)
    except CampaignFailed as e:
        log.error("%s", e)
        sys.exit(1)
    except BAD_INPUT_ERRORS as e:
        log.error("%s", e)
        sys.exit(2)
    except Exception as e:
        log.error("%s: %s", type(e).__name__, redact_url(str(e)), exc_info=True)
        sys.exit(1)
    return 128 + received[0] if received else 0


def device_slots(devices: str, per_device: int) -> list[str]:
    """`cpu`, `all` (every visible GPU, else the CPU) or `0,1` -> one device string per worker process."""
    if devices == "cpu":
        return ["cpu"] * per_device  # no torch import: a CPU or synthetic worker stays small
    import torch

    count = torch.cuda.device_count()
    if devices == "all":
        return [f"cuda:{i}" for i in range(count) for _ in range(per_device)] or ["cpu"] * per_device
    try:
        ids = [int(d) for d in devices.split(",")]
    except ValueError:
        raise OptionError(f"--devices {devices!r} is not cpu, all or a list of GPU indices like 0,1") from None
    missing = [i for i in ids if i >= count]
    if missing:
        raise OptionError(f"--devices asks for GPU {missing[0]}, but {count} GPU(s) are visible; use cpu or all")
    return [f"cuda:{i}" for i in ids for _ in range(per_device)]


def start_processes(campaign: str, options: WorkerOptions, devices: list[str]) -> list[Any]:
    """One worker process per device slot (spawned: CUDA and forked processes do not mix)."""
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // max(1, sum(d == "cpu" for d in devices)))
    procs = [ctx.Process(target=_child, args=(campaign, replace(options, device=d), threads, devices.count(d)))
             for d in devices]
    for p in procs:
        p.start()
    return procs


def wait_processes(procs: list[Any], tick: Callable[[], None] | None = None, interval: float = 1.0) -> int:
    """Wait for the workers, passing SIGTERM / SIGINT on; 0 when every one ended well, 1 when one did not,
    128 + the signal's number when a signal was passed on (143 for SIGTERM, 130 for SIGINT)."""
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=interval / len(procs))
            if tick is not None:
                tick()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        return 128 + received[0]
    return 0 if all(p.exitcode == 0 for p in procs) else 1

"""Journal-lock benchmark: trials per second on one journal file, hpsearch's append lock against Optuna's own.

W processes share one journal file and run `study.optimize` with the random sampler on a trivial objective
(one float, five reports) until 240 trials are done in all: what is measured is the journal's appends and
reads, which are a worker's coordination on the journal. `optuna` is `JournalFileBackend(path)`, Optuna's
symlink lock (broken by any waiter after 30 s without a release); `hpsearch` is the storage `open_storage`
builds, with `storage/stores/journal_lock.py`'s `flock` (never broken while its holder lives). Both run in the same
invocation, alternated, `--repeats` times each; the table gives the median and the ratio hpsearch / optuna.

Usage:  python bench/journal_lock.py [--workers 1,4,8] [--trials 240] [--repeats 3]

Figures (2-core machine): `python bench/journal_lock.py --repeats 5` gave 1.03x, 1.41x and 1.29x at W = 1,
4 and 8 (hpsearch 333, 270, 238 trials/s; optuna 322, 191, 184). Two earlier runs, before the lock recorded
long holds (a branch no append takes unless it held the lock over 1 s): 1.05x, 1.10x, 2.07x and 1.09x,
1.05x, 1.24x. Optuna's lock is the noisier one with several processes: its waiters poll with a backoff up
to 1 s, where an `flock` waiter wakes when the lock is released.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

from hpsearch.storage import open_storage

LOCKS = ("optuna", "hpsearch")


def _storage(path: str, lock: str) -> BaseStorage:
    return open_storage(path, create=True) if lock == "hpsearch" else JournalStorage(JournalFileBackend(path))


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(5):
        trial.report(x, step)
    return x


def _worker(path: str, lock: str, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="bench", storage=_storage(path, lock),
                              sampler=optuna.samplers.RandomSampler())
    study.optimize(_objective, n_trials=n_trials)


def trials_per_second(workers: int, lock: str, trials: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "bench.journal")
        optuna.create_study(study_name="bench", storage=_storage(path, lock))
        start = time.perf_counter()
        procs = [multiprocessing.Process(target=_worker, args=(path, lock, trials // workers))
                 for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit(f"a benchmark worker failed ({lock} lock, {workers} workers)")
        return workers * (trials // workers) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,4,8", help="comma-separated process counts")
    parser.add_argument("--trials", type=int, default=240, help="trials per measurement, all processes together")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per lock and process count")
    args = parser.parse_args(argv)
    try:
        counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.exit(2, f"--workers {args.workers!r} is not a list of integers; give e.g. 1,4,8\n")
    if min(counts) < 1 or args.trials < max(counts) or args.repeats < 1:
        parser.exit(2, "--workers must be >= 1, --trials at least the largest worker count, --repeats >= 1\n")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{'W':>3} {'optuna trials/s':>16} {'hpsearch trials/s':>18} {'ratio':>6}")
    for w in counts:
        rates: dict[str, list[float]] = {lock: [] for lock in LOCKS}
        for _ in range(args.repeats):
            for lock in LOCKS:
                rates[lock].append(trials_per_second(w, lock, args.trials))
        ours, theirs = statistics.median(rates["hpsearch"]), statistics.median(rates["optuna"])
        print(f"{w:>3} {theirs:>16.0f} {ours:>18.0f} {ours / theirs:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()

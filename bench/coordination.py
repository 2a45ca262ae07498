"""Coordination benchmark: `hpsearch worker` against plain Optuna on one PostgreSQL, W worker processes.

Same throwaway PostgreSQL cluster, same sampler (random), same number of intermediate reports per trial,
a zero-cost objective. Plain Optuna: W processes of `load_study` + `optimize` with `MaxTrialsCallback`
(which overshoots, optuna/optuna#3518). hpsearch: `hpsearch init` of a one-stage synthetic plan with no sleep,
then W `hpsearch worker` commands (heartbeats on, curve images off). One table: trials/s between the first
trial's start and the last one's end, claim latency (a worker's gap between finishing one trial and starting
the next) p50 / p99, the most connections the database saw, and the overshoot of the budget.

With `--paths proxy` both runners go through one `hpsearch storage-proxy` (Optuna's gRPC proxy, started per run)
instead of connecting to PostgreSQL themselves; "DB conns" is then what the proxy holds.
Every worker process imports what it runs and then waits at a start gate until all W have, so the timing leaves
out Python's start-up (about 2 s of CPU for `hpsearch worker`, 0.25 s for plain Optuna), which at W = 64 on two
cores otherwise overlapped the first half of the run.

Usage:  python bench/coordination.py [--workers 1,4,16,64] [--trials 200] [--reports 5] [--paths direct,proxy]

Results with one PostgreSQL connection per worker process (2-core CPU, PostgreSQL 15 on the same machine,
Optuna 5.0.0, 100 trials x 5 reports, n=1, on a quiet machine, before the start gate):
  python bench/coordination.py --paths direct --workers 1,4,16,64 --trials 100
  path    W  runner        trials/s  claim p50 ms  claim p99 ms  DB conns  overshoot  ours/plain
  direct  1  plain Optuna      21.0         13.5          72.5         4         +0
  direct  1  hpsearch          28.4          3.0           7.1         1         +0       1.36x
  direct  4  plain Optuna      18.7           83           486        10         +3
  direct  4  hpsearch          23.6           12            23         4         +0       1.26x
  direct 16  plain Optuna       8.6          726         2,174        34        +15
  direct 16  hpsearch          11.6           91           481        16         +0       1.34x
  direct 64  plain Optuna       5.2        8,217        10,531       130        +62
  direct 64  hpsearch           8.4        1,241         2,045        64         +0       1.62x
Through the proxy, with the start gate (same machine, quiet, 100 trials x 5 reports, n=1 each):
  python bench/coordination.py --paths proxy,direct --workers 1,4,16,64 --trials 100
  path    W  runner        trials/s  claim p50 ms  claim p99 ms  DB conns  overshoot  ours/plain
  proxy   1  plain Optuna      21.7          14.8          23.1         1         +0
  proxy   1  hpsearch          19.2           4.9          48.4         1         +0       0.88x
  proxy   4  plain Optuna      22.6          56.8          87.2         6         +2
  proxy   4  hpsearch          22.3          19.5         113.2         4         +0       0.99x
  proxy  16  plain Optuna      21.0         235.6         347.8        12        +15
  proxy  16  hpsearch          18.5          99.0         442.0        10         +0       0.88x
  proxy  64  plain Optuna      12.3       1,254.5       2,327.9        12        +39
  proxy  64  hpsearch          10.2         444.6       1,409.1        10         +0       0.83x
  direct  1  plain Optuna      29.4          10.5          46.8         4         +0
  direct  1  hpsearch          38.2           2.6           4.6         1         +0       1.30x
  direct  4  plain Optuna      41.3          35.0         136.0        10         +2
  direct  4  hpsearch          61.3           5.7          17.6         4         +0       1.49x
  direct 16  plain Optuna      24.8         262.5         805.9        34        +14
  direct 16  hpsearch          31.9          31.4          59.1        16         +0       1.29x
  direct 64  plain Optuna      13.3       3,142.3       4,107.4       130        +62
  direct 64  hpsearch           8.4         223.6       1,101.2        64         +0       0.63x
The proxy rows again (`--paths proxy`, quiet): 0.93x, 0.96x, 0.96x and 0.84x at W = 1, 4, 16 and 64 (hpsearch 18.9,
22.0, 19.8 and 11.0 trials/s; plain 20.3, 22.8, 20.5 and 13.2), at most 10 connections, no overshoot.
At W = 64 on two cores a run of 100 trials is about one trial per worker and ten seconds long, so its rate swings
with the start: nine more direct runs of hpsearch at W = 64 gave 8.0 to 11.8 trials/s, as spread with the change
below (8.0, 8.4, 9.1, 9.2, 11.6) as without it (8.5, 10.7, 11.2, 11.8); plain Optuna gave 12.9 and 14.2. The
proxy's W = 64 ratio was 0.99x in the run before. How a trial through the proxy got to about
16 calls from 20, against plain Optuna's 14 (counted at the proxy): a claimed trial is built from the copy the
worker's last read of the stage already holds (a WAITING trial is written whole when it is created and by nobody
until a claim wins it), and the trial is told from its own cached copy, which `Trial` keeps in step with its
params, reports and attributes, instead of `Study.tell`'s read of it first (storage/optuna_internals.py,
`trial_from_claimed_copy` and `tell_from_copy`); two `get_trial` calls per trial, the heaviest kind, are gone.
What is left above plain Optuna: six trial attributes and a two-part dashboard note, one call each where PostgreSQL
takes each group in one upsert (the gRPC API has no batch write), and the first heartbeat. The same command with
one `get_trial` per claim and per tell, under load (other jobs on the two cores, load average 38 to 46), gave 0.72x,
0.83x, 0.83x and 0.99x.
Before claims through the proxy came from a remembered list (storage/stores/waiting.py), that loaded run gave 0.65x,
0.64x, 0.76x and 0.53x (hpsearch 10.8, 12.4, 11.0 and 6.8 trials/s, claim p50 18, 56, 292 and 3,235 ms): Optuna's
gRPC client re-reads every unfinished trial of a study on each `get_all_trials`, and hpsearch's stages hold their
whole budget as enqueued WAITING slots, so reading the stage before each claim sent every waiting slot. Now a
worker reads the stage when its list is used up, stale (three lost races in a row) or behind (the stage gained a
trial, such as a retry, which goes first), and a claim is two small calls: a look-up of the next trial number
and `set_trial_state_values(RUNNING)`.
With the trial stores (storage/stores/) and enqueue-once on the proxy, under load (two other users' jobs on the two
cores, load average 7 to 19, `nice -n 10`, Optuna 5.1.0, 100 trials x 5 reports, n=1):
  python bench/coordination.py --paths direct,proxy --workers 1,4,16 --trials 100
  direct: 1.65x, 1.49x and 1.31x at W = 1, 4 and 16 (hpsearch 4.7, 4.8 and 4.8 trials/s; 1, 4 and 16 connections);
  proxy: 1.07x, 0.91x and 0.77x (5.3, 7.9 and 5.4 trials/s; 1, 4 and 10 connections); no overshoot. The proxy's
  W = 16 run again, at once: 1.12x (6.5 against 5.8 trials/s). Rates this low are the load's, not the code's.

With several attributes in one call through `hpsearch storage-proxy` (storage/proxy_calls.py: a trial's
attributes at its start and at its end, and its two-part dashboard note, one call each instead of eight) and idle
workers backing off while a stage's last trials run (0.5 s doubling to 2 s between looks; before, every idle
worker read the whole stage through the proxy twice a second), 2 cores, Optuna 5.1.0, 100 trials x 5 reports:
  python bench/coordination.py --paths proxy --workers 1,4,16 --trials 100
  proxy: 1.42x, 1.18x, 1.16x and 1.23x, 1.29x, 0.78x (batched writes alone; the 0.78x run's claim p99 was 1.4 s);
  1.32x, 1.23x, 1.12x and 1.32x, 1.12x, 1.09x (with the back-off); at most 10 connections, no overshoot.
  python bench/coordination.py --paths direct --workers 1,4,16 --trials 200   (two runs)
  direct: 1.10x, 1.53x, 1.60x and 1.02x, 1.35x, 1.39x; with 100 trials 0.92x, 1.54x, 0.88x and 1.17x, 1.45x, 1.17x.
  python bench/coordination.py --paths direct,proxy --workers 1,4,16 --trials 200
  direct 1.37x, 0.94x, 1.36x; proxy 1.21x, 0.79x, 1.15x (single cells swing by a fifth on two shared cores).
  At W = 1 a trial here writes its heartbeat, attributes and note besides what plain Optuna writes, so the ratio
  sits near 1 and a 100-trial run (four seconds) swings by a fifth either way.

Earlier results, before the proxy path (2-core CPU, PostgreSQL 15 on the same machine, Optuna 5.0.0,
200 trials x 5 reports; two runs, n=1 each):
  W   plain trials/s  overshoot   hpsearch trials/s  overshoot  ours/plain (run 1, run 2)
  1     26.7, 20.9       +0          30.5, 23.0          +0        1.14x, 1.10x
  4     41.1, 37.3     +3, +2        47.0, 45.4          +0        1.14x, 1.22x
 16     21.1, 19.3    +13, +15       31.4, 24.7          +0        1.49x, 1.28x
 64     13.6, 11.5    +60, +61       12.9, 12.5          +0        0.95x, 1.09x
Claim latency p50 (run 1): 2.8 / 6.4 / 35 / 247 ms for hpsearch against 12 / 37 / 314 / 3,034 ms for plain.
Why hpsearch keeps up although each of its trials also records a heartbeat, a dashboard note, its config,
provenance and curves: on PostgreSQL a claim is one transaction (`SELECT ... FOR UPDATE SKIP LOCKED` of the
lowest waiting slot, the twin check, the first heartbeat), and the attributes a trial records at its start,
at its end, and its note, go in one upsert each (storage/stores/claims.py, storage/stores/batch.py). Plain
Optuna's `ask` re-reads the study's unfinished trials on every call, and its workers all run the trials past the budget.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import optuna
import sqlalchemy
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # bench/ is a folder of scripts

from pgcluster import PostgresServer, find_postgres_bindir  # noqa: E402


def plain_worker(url: str, study_name: str, budget: int, reports: int) -> None:
    """One plain-Optuna process: the documented distributed pattern, on PostgreSQL or through a gRPC proxy."""
    import grpc  # noqa: F401 - what the gRPC client imports on first use, loaded before the gate as hpsearch's is
    import psycopg2  # noqa: F401

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    wait_for_gate()
    storage: str | optuna.storages.BaseStorage = url
    if url.startswith("grpc://"):
        host, port = url.removeprefix("grpc://").rsplit(":", 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
        storage.wait_server_ready(timeout=60)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler())

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("pid", os.getpid())
        x = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        for step in range(reports):
            trial.report(x * step, step)
        return x

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(budget, states=states)])


def wait_for_gate() -> None:
    """Say "ready" on stdout, then block until the benchmark writes to stdin: imports stay out of the timing."""
    print("ready", flush=True)
    sys.stdin.read(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nobody reads the pipe past "ready"


def start_gated(argvs: list[list[str]], env: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """Start one process per argv, wait until every one has imported what it runs, then let them all go."""
    procs = [subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL) for argv in argvs]
    for p in procs:
        if p.stdout.readline().strip() != b"ready":
            raise SystemExit(f"a worker did not start (exit {p.wait()})")
    for p in procs:
        p.stdin.write(b"g")
        p.stdin.close()
    return procs


def hpsearch_worker(args: list[str]) -> int:
    """One `hpsearch worker` process, started by `start_gated`."""
    import psycopg2  # noqa: F401 - the driver, loaded before the gate as plain Optuna's is

    from hpsearch.search.cli import main
    from hpsearch.search.run import worker  # noqa: F401 - what the worker command imports when it starts

    wait_for_gate()
    return main(["worker", *args])


def count_connections(url: str, stop: threading.Event, peak: list[int]) -> None:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    dbname = engine.url.database
    while not stop.is_set():
        with engine.connect() as conn:
            n = conn.execute(sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                             {"d": dbname}).scalar()
        peak[0] = max(peak[0], int(n) - 1)  # minus this probe
        stop.wait(0.2)
    engine.dispose()


def measure(url: str, study_name: str, budget: int, procs: list[subprocess.Popen]) -> dict[str, float]:
    peak, stop = [0], threading.Event()
    probe = threading.Thread(target=count_connections, args=(url, stop, peak), daemon=True)
    probe.start()
    for p in procs:
        if p.wait(timeout=1800) != 0:
            raise SystemExit(f"a worker failed (exit {p.returncode})")
    stop.set()
    probe.join()
    trials = [t for t in optuna.load_study(study_name=study_name, storage=url).trials
              if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    gaps = []
    by_worker: dict[object, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs.get("pid") or t.user_attrs.get("worker", {}).get("pid"), []).append(t)
    for runs in by_worker.values():
        runs.sort(key=lambda t: t.datetime_start)
        gaps += [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in itertools.pairwise(runs)]
    gaps.sort()
    return {"rate": len(trials) / max(1e-9, (end - start).total_seconds()),
            "p50": statistics.median(gaps) * 1000 if gaps else float("nan"),
            "p99": gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] * 1000 if gaps else float("nan"),
            "connections": peak[0], "overshoot": len(trials) - budget}


@contextmanager
def storage_proxy(url: str) -> Iterator[str]:
    """`hpsearch storage-proxy` for `url` in its own process; yields its grpc:// storage string."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = subprocess.Popen([sys.executable, "-m", "hpsearch.search", "storage-proxy", "--storage", url,
                              "--host", "127.0.0.1", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            client = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
        client.wait_server_ready(timeout=300)  # a loaded machine starts it slowly; workers would give up sooner
        client.close()
        yield f"grpc://127.0.0.1:{port}"
    finally:
        proxy.terminate()
        proxy.wait(timeout=60)


def run_plain(server: PostgresServer, workers: int, budget: int, reports: int, proxy: bool) -> dict[str, float]:
    url = server.url_for(server.create_database(f"plain{'proxy' if proxy else ''}{workers}"))
    optuna.create_study(study_name="bench", storage=url, direction="maximize")
    with storage_proxy(url) if proxy else nullcontext(url) as worker_url:
        procs = start_gated([[sys.executable, __file__, "--plain-worker", worker_url, str(budget), str(reports)]
                             for _ in range(workers)])
        return measure(url, "bench", budget, procs)


def run_hpsearch(server: PostgresServer, workers: int, budget: int, reports: int, tmp: Path,
                 proxy: bool) -> dict[str, float]:
    url = server.url_for(server.create_database(f"hp{'proxy' if proxy else ''}{workers}"))
    with storage_proxy(url) if proxy else nullcontext(url) as worker_url:
        return _run_hpsearch(url, worker_url, workers, budget, reports, tmp)


def _run_hpsearch(url: str, worker_url: str, workers: int, budget: int, reports: int, tmp: Path) -> dict[str, float]:
    plan = {"name": "bench", "objective": "synthetic", "base": {"lr": 0.05, "device": "cpu"},
            "space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
            "stages": [{"name": "only", "n_trials": budget, "overrides": {"epochs": reports}, "sampler": "random"}]}
    (tmp / "plan.yaml").write_text(yaml.safe_dump(plan))
    hp = [sys.executable, "-m", "hpsearch.search"]
    subprocess.run([*hp, "init", str(tmp / "plan.yaml"), "--storage", worker_url], check=True, capture_output=True)
    env = {**os.environ, "HPSEARCH_SYNTHETIC_SLEEP": "0"}
    procs = start_gated([[sys.executable, __file__, "--hpsearch-worker", "bench", "--storage", worker_url,
                          "--devices", "cpu", "--no-artifacts", "--heartbeat-interval", "5", "--grace-period", "30"]
                         for _ in range(workers)], env=env)
    return measure(url, "bench.only", budget, procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,16,64")
    parser.add_argument("--trials", type=int, default=200, help="budget per run")
    parser.add_argument("--reports", type=int, default=5, help="intermediate values per trial")
    parser.add_argument("--paths", default="direct,proxy",
                        help="direct (every worker on PostgreSQL) and/or proxy (through one hpsearch storage-proxy)")
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    bindir = find_postgres_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (initdb, pg_ctl); install postgresql")
    server = PostgresServer(bindir)
    server.init()
    server.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for path in paths:
                for w in (int(x) for x in args.workers.split(",")):
                    plain = run_plain(server, w, args.trials, args.reports, path == "proxy")
                    ours = run_hpsearch(server, w, args.trials, args.reports, Path(tmp), path == "proxy")
                    rows.append((path, w, plain, ours))
                    print(f"{path} W={w}: plain {plain}, hpsearch {ours}", file=sys.stderr, flush=True)
    finally:
        server.destroy()
    print(f"\nbudget {args.trials} trials, {args.reports} reports each, random sampler, zero-cost objective, "
          f"{os.cpu_count()} CPU cores, Optuna {optuna.__version__}")
    print(f"{'path':<7} {'W':>3} {'runner':<14} {'trials/s':>9} {'claim p50 ms':>13} {'claim p99 ms':>13} "
          f"{'DB conns':>9} {'overshoot':>10} {'ours/plain':>11}")
    for path, w, plain, ours in rows:
        for name, r in (("plain Optuna", plain), ("hpsearch", ours)):
            ratio = f"{ours['rate'] / plain['rate']:.2f}x" if name == "hpsearch" else ""
            print(f"{path:<7} {w:>3} {name:<14} {r['rate']:>9.1f} {r['p50']:>13.1f} {r['p99']:>13.1f} "
                  f"{r['connections']:>9} {r['overshoot']:>+10d} {ratio:>11}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--plain-worker":
        plain_worker(sys.argv[2], "bench", int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--hpsearch-worker":
        sys.exit(hpsearch_worker(sys.argv[2:]))
    else:
        main()

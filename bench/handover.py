"""Hand-over benchmark: how long a dead or paused worker holds up a campaign, and how many twin slots it leaves.

Three `hpsearch worker` processes run a synthetic three-stage campaign (9, 6 and 2x2 trials, 3 epochs of
--sleep seconds each) on a throwaway PostgreSQL cluster. Near the end of the first stage (no slot left
waiting) one worker is hit while it trains: `kill` sends SIGKILL, `pause` sends SIGSTOP for the grace period
plus 4 s and then SIGCONT. One table: the seconds from the fault to the start of the faulted trial's retry
(its claim by another worker) and to the start of the next stage, the twin slots retired at claim time per
stage hand-over, and the workers' exit codes. The old defaults (heartbeat 10 s, grace 60 s) and the new ones
(5 s, 20 s) are measured in the same run; "before" rows come from running this script with the code before
the change on the import path (see the README's "How a campaign is kept consistent").

Usage:  python bench/handover.py [--faults kill,pause] [--settings 5/20,10/60] [--repeats 2] [--sleep 0.5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # bench/ is a folder of scripts

from pgcluster import PostgresServer, find_postgres_bindir  # noqa: E402

SLOT, TWIN, BEAT = "hpsearch:slot", "hpsearch:duplicate", "hpsearch:heartbeat"
SPACE = {"lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
         "optimizer": {"type": "categorical", "choices": ["sgd"]},
         "momentum": {"type": "float", "low": 0.5, "high": 0.99},
         "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-1, "log": True}}
PLAN = {"name": "bench", "objective": "synthetic", "seed": 0,
        "base": {"width": 16, "data_fraction": 0.2, "batch_size": 32, "device": "cpu", "epochs": 3},
        "space": SPACE,
        "stages": [{"name": "coarse", "n_trials": 9, "sampler": "random"},
                   {"name": "fine", "n_trials": 6, "narrow": {"top_k": 3, "margin": 0.2}, "carry": 1},
                   {"name": "final", "kind": "final", "top": 2, "seeds": 2}]}


def trials_of(storage: object, name: str) -> list:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False)


def one_run(url: str, fault: str, interval: int, grace: int, sleep: float, workdir: Path) -> dict:
    from hpsearch.storage import open_storage

    plan = workdir / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN, sort_keys=False))
    env = {**os.environ, "HPSEARCH_SYNTHETIC_SLEEP": str(sleep), "HPSEARCH_STORAGE": url}
    cli = [sys.executable, "-m", "hpsearch.search"]
    subprocess.run([*cli, "init", str(plan)], env=env, check=True, capture_output=True)
    flags = ["--devices", "cpu", "--no-artifacts", "--heartbeat-interval", str(interval), "--grace-period", str(grace)]
    workers = [subprocess.Popen([*cli, "worker", "bench", *flags], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(workdir / f"worker-{i}.log", "w"), start_new_session=True)  # noqa: SIM115
               for i in range(3)]
    try:
        hit, at, codes = _fault(open_storage(url), workers, fault, grace)
    finally:
        for p in workers:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    storage = open_storage(url)
    coarse = trials_of(storage, "bench.coarse")
    retry = min((t.datetime_start for t in coarse if t.system_attrs.get("failed_trial") == hit.number
                 and t.datetime_start), default=None)
    fine_start = min(t.datetime_start for t in trials_of(storage, "bench.fine") if t.datetime_start)
    twins = sum(TWIN in t.system_attrs for s in ("coarse", "fine", "final") for t in trials_of(storage, f"bench.{s}"))
    return {"retry": (retry - at).total_seconds() if retry else float("nan"),
            "next": (fine_start - at).total_seconds(), "twins": twins / 2, "codes": codes}


def _fault(storage: object, workers: list[subprocess.Popen], fault: str, grace: int) -> tuple:
    """Hit the worker that trains one of the first stage's last trials; (its trial, when, exit codes)."""
    from optuna.trial import TrialState

    by_pid = {p.pid: p for p in workers}
    while True:  # no slot of the first stage waits any more, and a worker trains one of its trials
        trials = trials_of(storage, "bench.coarse")
        running = [t for t in trials if t.state == TrialState.RUNNING
                   and (t.system_attrs.get(BEAT) or {}).get("pid") in by_pid]
        if running and not any(t.state == TrialState.WAITING for t in trials):
            break
        if trials_of(storage, "bench.fine"):
            raise RuntimeError("the first stage ended before a fault could hit one of its last trials; raise --sleep")
        time.sleep(0.05)
    hit, at = running[0], datetime.datetime.now()
    victim = by_pid[hit.system_attrs[BEAT]["pid"]]
    if fault == "kill":
        os.killpg(victim.pid, signal.SIGKILL)
    else:
        os.killpg(victim.pid, signal.SIGSTOP)
        time.sleep(grace + 4)
        os.killpg(victim.pid, signal.SIGCONT)
    return hit, at, [p.wait(timeout=600) for p in workers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default="kill,pause")
    parser.add_argument("--settings", default="5/20,10/60", help="heartbeat/grace pairs, in seconds")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds per synthetic epoch")
    args = parser.parse_args()
    bindir = find_postgres_bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries not found; install the postgresql package")
    server = PostgresServer(bindir)
    server.init()
    server.start()
    rows = []
    try:
        for fault in args.faults.split(","):
            for setting in args.settings.split(","):
                interval, grace = (int(x) for x in setting.split("/"))
                runs = []
                for r in range(args.repeats):
                    url = server.url_for(server.create_database(f"{fault}_{interval}_{grace}_{r}"))
                    with tempfile.TemporaryDirectory() as tmp:
                        runs.append(one_run(url, fault, interval, grace, args.sleep, Path(tmp)))
                rows.append((fault, setting, runs))
    finally:
        server.destroy()
    print(f"{'fault':<6} {'beat/grace':>10} {'fault->retry s':>15} {'fault->next stage s':>20} "
          f"{'twins/hand-over':>16}  exit codes (n={args.repeats} each)")
    for fault, setting, runs in rows:
        retry = statistics.fmean(r["retry"] for r in runs)
        later = statistics.fmean(r["next"] for r in runs)
        twins = statistics.fmean(r["twins"] for r in runs)
        print(f"{fault:<6} {setting:>10} {retry:>15.1f} {later:>20.1f} {twins:>16.2f}  "
              f"{' '.join(''.join(map(str, r['codes'])) for r in runs)}")


if __name__ == "__main__":
    main()

"""At most one PostgreSQL connection per worker process, its heartbeat included, as pg_stat_activity counts them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from optuna.storages import BaseStorage

from hpsearch.storage import Heartbeat, open_storage
from hpsearch.storage.stores.stale import heartbeat_ages
from tests.campaign.helpers import check_campaign, start_workers, wait_all, worker_env, write_plan

ClaimTrials = Callable[[BaseStorage, str, int], list[int]]  # the `claim_trials` fixture
# Every hpsearch connection is named `hpsearch <pid>` (storage/postgres_open.py); the probe names itself apart.
_COUNT = ("SELECT application_name, count(*) FROM pg_stat_activity"
          " WHERE datname = current_database() AND application_name LIKE 'hpsearch %' GROUP BY 1")


@contextmanager
def peak_connections(pg_url: str) -> Iterator[dict[int, int]]:
    """While the block runs, the most connections each process (by pid) held at once, sampled every 20 ms."""
    dsn = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    peaks: dict[int, int] = {}
    stop = threading.Event()

    def sample() -> None:
        conn = psycopg2.connect(dsn, application_name="probe")
        conn.autocommit = True  # pg_stat_activity is a snapshot per transaction: one per sample
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(_COUNT)
                    for name, count in cur.fetchall():
                        pid = int(name.split()[1])
                        peaks[pid] = max(peaks.get(pid, 0), count)
                    stop.wait(0.02)
        finally:
            conn.close()

    probe = threading.Thread(target=sample, daemon=True)
    probe.start()
    try:
        yield peaks
    finally:
        stop.set()
        probe.join(timeout=10)


def test_heartbeat_shares_the_worker_connection(pg_url: str, claim_trials: ClaimTrials) -> None:
    storage = open_storage(pg_url)
    [trial_id] = claim_trials(storage, "stage", 1)
    # The main thread reports every 10 ms, a very fast epoch, while the heartbeat beats every 50 ms beside it.
    with peak_connections(pg_url) as peaks, Heartbeat(storage, trial_id, 0.05):
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            storage.set_trial_user_attr(trial_id, "step", time.monotonic())
            running = storage.get_all_trials(storage.get_study_id_from_name("stage"))
            time.sleep(0.01)
        age = heartbeat_ages(storage, running)[trial_id]
    assert peaks.get(os.getpid()) == 1, peaks
    assert age < 1.0  # the heartbeat got its turn on the shared connection, again and again


@pytest.mark.slow
def test_each_worker_process_holds_one_connection(pg_url: str, tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "hpsearch.search", "init", str(write_plan(tmp_path / "plan.yaml")),
                    "--storage", pg_url], check=True, capture_output=True)
    with peak_connections(pg_url) as peaks:
        # Epochs slow enough that heartbeats (every second) fall inside trials.
        codes = wait_all(start_workers(3, pg_url, sleep=0.1, log_dir=tmp_path))
    assert codes == [0, 0, 0]
    check_campaign(pg_url)
    assert len(peaks) >= 3 and max(peaks.values()) == 1, peaks


@pytest.mark.slow
def test_run_holds_workers_plus_one(pg_url: str, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "plan.yaml")
    # Optuna's tables first, as in a fleet: the first process to reach an empty database briefly holds a
    # second connection while it creates them (the README says so), which is not what this test counts.
    subprocess.run([sys.executable, "-m", "hpsearch.search", "init", str(plan), "--storage", pg_url],
                   check=True, capture_output=True)
    with peak_connections(pg_url) as peaks:
        run = subprocess.run(
            [sys.executable, "-m", "hpsearch.search", "run", str(plan), "--storage", pg_url, "--workers", "3",
             "--no-artifacts", "--heartbeat-interval", "1", "--grace-period", "4", "--out", str(tmp_path / "out")],
            env=worker_env(0.1), capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    check_campaign(pg_url)
    # Three workers and the parent: one each, never more, and never all four beyond N + 1.
    assert len(peaks) == 4 and max(peaks.values()) == 1, peaks

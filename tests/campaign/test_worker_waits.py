"""Bounded waits of `hpsearch worker`: started before its PostgreSQL, or before `init`, it waits and then finishes
the campaign; a wrong password or a malformed URL still fails at once with exit 2, as does a wait that runs out."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hpsearch.search.cli import main
from tests.campaign.helpers import PLAN, check_campaign, start_workers, wait_all
from tests.campaign.helpers import write_plan as write_full_plan

if TYPE_CHECKING:
    from pgcluster import PostgresServer  # bench/pgcluster.py

pytestmark = pytest.mark.slow

# The helpers' three stages with fewer trials: these tests are about starting, not about the stages.
STAGES = [{**PLAN["stages"][0], "n_trials": 5}, {**PLAN["stages"][1], "n_trials": 4}, PLAN["stages"][2]]


def write_plan(path: Path) -> Path:
    return write_full_plan(path, stages=STAGES)


def test_a_worker_started_before_its_database_waits_and_finishes(pg_server: PostgresServer, pg_url: str,
                                                                  tmp_path: Path) -> None:
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", pg_url]) == 0
    pg_server.stop()
    try:
        [worker] = start_workers(1, pg_url, log_dir=tmp_path, extra=("--wait-for-storage", "60"))
        time.sleep(10)
        assert worker.poll() is None, (tmp_path / "worker-0.log").read_text()
    finally:
        pg_server.start()
    assert wait_all([worker]) == [0], (tmp_path / "worker-0.log").read_text()[-2000:]
    check_campaign(pg_url)
    assert "waiting up to 60 s" in (tmp_path / "worker-0.log").read_text()


def test_a_worker_started_before_init_waits_for_the_campaign(pg_url: str, tmp_path: Path) -> None:
    [worker] = start_workers(1, pg_url, log_dir=tmp_path, extra=("--wait-for-campaign", "60"))
    log = tmp_path / "worker-0.log"
    deadline = time.monotonic() + 30  # a loaded machine may take seconds to start a worker
    while "for 'hpsearch init'" not in (log.read_text() if log.exists() else ""):
        assert worker.poll() is None and time.monotonic() < deadline, log.read_text() if log.exists() else ""
        time.sleep(0.1)
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", pg_url]) == 0
    assert wait_all([worker]) == [0], (tmp_path / "worker-0.log").read_text()[-2000:]
    check_campaign(pg_url)
    assert "waiting up to 60 s for 'hpsearch init'" in (tmp_path / "worker-0.log").read_text()


def _worker(storage: str, *extra: str) -> tuple[int, str, float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hpsearch.search", "worker", "syn", "--storage", storage,
                           "--devices", "cpu", "--wait-for-storage", "60", "--wait-for-campaign", "60", *extra],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr, time.monotonic() - start


@pytest.mark.parametrize("broken", ["password", "url"])
def test_bad_credentials_and_urls_fail_at_once_despite_the_waits(broken: str, pg_server: PostgresServer,
                                                                 pg_url: str) -> None:
    storage = pg_server.url_for(pg_url.rsplit("/", 1)[1], password="wrong") if broken == "password" \
        else "postgresql+psycopg2://hpsearch@127.0.0.1:notaport/db"
    code, err, took = _worker(storage)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert took < 45, f"waited {took:.0f} s for input that waiting cannot fix"  # a wait: 60 s
    assert ("password" in err) if broken == "password" else ("port" in err)


def test_a_wait_that_runs_out_is_one_line_and_exit_2(pg_url: str) -> None:
    code, err, took = _worker(pg_url, "--wait-for-campaign", "3")
    assert code == 2 and "(after waiting 3 s for it)" in err.strip().splitlines()[-1], err
    assert 3 <= took < 50  # not the 60 s of the storage wait

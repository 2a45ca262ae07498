"""`hpsearch run` as an operator meets it: a database outage mid-campaign, a SIGTERM from a scheduler."""

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.search.plan.space import PlanError
from tests.campaign.faults import SMALL_STAGES, all_trials
from tests.campaign.helpers import check_campaign, finished_count, worker_env, write_plan
from tests.campaign.test_workers import STEADY_SPACE
from tests.cifar_files import write_cifar

pytestmark = pytest.mark.slow


def start_run(url: str, tmp_path: Path, sleep: float) -> subprocess.Popen:
    plan = write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE, stages=SMALL_STAGES)
    return subprocess.Popen(
        [sys.executable, "-m", "hpsearch.search", "run", str(plan), "--storage", url, "--workers", "3",
         "--heartbeat-interval", "1", "--grace-period", "4", "--no-artifacts", "--out", str(tmp_path / "out")],
        env=worker_env(sleep), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_finished(url: str, n: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until `n` trials of the first stage finished (the campaign is created by `run` itself)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the campaign made no progress"
        if url.startswith("postgresql") or Path(url).exists():
            with contextlib.suppress(PlanError):
                if finished_count(url, 0) >= n:
                    return
        time.sleep(0.2)


def test_run_rides_out_a_database_stop_and_exports(pg_url: str, pg_server, tmp_path: Path) -> None:
    proc = start_run(pg_url, tmp_path, sleep=0.2)
    try:
        wait_finished(pg_url, 3, proc)
        pg_server.stop()
        time.sleep(5)
        pg_server.start()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "best config:" in out and (tmp_path / "out" / "rank-1.yaml").exists()
    assert "Traceback" not in err and "storage unreachable" in err and "reachable again" in err
    log = (tmp_path / "out" / "workers.log").read_text()  # every line the workers logged
    assert "Traceback" not in log and "exceeding max length" not in log, log
    assert log.count("storage unreachable") <= 6, log  # about one per worker, and one more when it ends
    check_campaign(pg_url)


def test_sigterm_to_run_hands_back_exports_nothing_and_exits_143(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    journal = str(tmp_path / "c.journal")
    proc = start_run(journal, tmp_path, sleep=0.3)
    try:
        wait_finished(journal, 2, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "best config" not in out and not (tmp_path / "out" / "rank-1.yaml").exists()
    # The parent's own line: a worker's "handed back" line is missing when the signal finds it between trials.
    assert "Continue with: hpsearch run" in err and "handed their trials back" in err and "Traceback" not in err
    assert not [t for t in all_trials(journal) if t.state == TrialState.RUNNING]
    assert main(["export", "syn", "--storage", journal, "--out", str(tmp_path / "export")]) == 0
    assert "unfinished" in capsys.readouterr().out
    text = (tmp_path / "export" / "rank-1.yaml").read_text()
    assert text.startswith("# UNFINISHED campaign (coarse ") and yaml.safe_load(text)["result"]["unfinished"]


def test_run_says_which_worker_failed_and_why(tmp_path: Path) -> None:
    # An objective that imports in `run` itself but not in its worker processes (a missing GPU library, say).
    (tmp_path / "parentonly.py").write_text(
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise RuntimeError('libcuda.so.1 not found on this node')\n"
        "from hpsearch.objectives.synthetic import synthetic_train as train\n")
    plan = write_plan(tmp_path / "plan.yaml", objective="parentonly:train")
    env = {**worker_env(0.0), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "hpsearch.search", "run", str(plan), "--storage", str(tmp_path / "c.journal"),
         "--workers", "2", "--no-artifacts", "--out", str(tmp_path / "out"),
         "--data-dir", str(write_cifar(tmp_path / "cifar"))],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "exited with code" in line]
    assert len(lines) == 2 and all("libcuda.so.1 not found on this node" in line for line in lines), proc.stderr
    assert "libcuda.so.1" in (tmp_path / "out" / "workers.log").read_text()

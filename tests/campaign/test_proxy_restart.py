"""A gRPC storage proxy killed mid-campaign and started again: the workers behind it wait and carry on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from tests.campaign.faults import SMALL_STAGES, all_trials
from tests.campaign.helpers import check_campaign, start_workers, wait_all, write_plan
from tests.storage.test_storage_proxy import wait_listening

pytestmark = pytest.mark.slow
_SERVE = "import sys; from hpsearch.storage import serve_storage_proxy as s; s(None, sys.argv[1], int(sys.argv[2]))"


def _proxy(pg_url: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SERVE, "127.0.0.1", str(port)],
                            env={**os.environ, "HPSEARCH_STORAGE": pg_url}, start_new_session=True)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_ride_out_a_proxy_restart(pg_url: str, tmp_path: Path, sig: signal.Signals) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=SMALL_STAGES)), "--storage", pg_url]) == 0
    proxy = _proxy(pg_url, port)
    wait_listening(proxy, port)
    procs = start_workers(3, f"grpc://127.0.0.1:{port}", sleep=0.3, log_dir=tmp_path,
                          extra=("--grace-period", "15", "--no-artifacts", "--no-checkpoints"))
    try:
        deadline = time.monotonic() + 90
        while sum(t.state == TrialState.COMPLETE for t in all_trials(pg_url)) < 3:
            assert time.monotonic() < deadline, "the campaign made no progress"
            time.sleep(0.2)
        proxy.send_signal(sig)
        proxy.wait(timeout=30)
        time.sleep(4)
        proxy = _proxy(pg_url, port)
        assert wait_all(procs, timeout=240) == [0, 0, 0]
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
    logs = "".join((tmp_path / f"worker-{i}.log").read_text() for i in range(3))
    assert "Traceback" not in logs and "storage unreachable" in logs, logs
    assert not [t for t in all_trials(pg_url) if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    check_campaign(pg_url)

"""A campaign through the storage proxy with no fault at all: every slot of every stage exists once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hpsearch.search.cli import main
from hpsearch.search.run.campaign import DUPLICATE, SLOT
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from tests.campaign.faults import SMALL_STAGES
from tests.campaign.helpers import check_campaign, start_workers, wait_all, write_plan
from tests.storage.test_storage_proxy import wait_listening

pytestmark = pytest.mark.slow
_SERVE = "import sys; from hpsearch.storage import serve_storage_proxy as s; s(None, sys.argv[1], int(sys.argv[2]))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_fault_free_proxy_campaign_leaves_no_twin_slots(pg_url: str, tmp_path: Path) -> None:
    port = _free_port()
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=SMALL_STAGES)), "--storage", pg_url]) == 0
    proxy = subprocess.Popen([sys.executable, "-c", _SERVE, "127.0.0.1", str(port)],
                             env={**os.environ, "HPSEARCH_STORAGE": pg_url}, start_new_session=True)
    try:
        wait_listening(proxy, port)
        procs = start_workers(3, f"grpc://127.0.0.1:{port}", sleep=0.05, log_dir=tmp_path,
                              extra=("--no-artifacts", "--no-checkpoints"))
        assert wait_all(procs, timeout=240) == [0, 0, 0]
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
    check_campaign(pg_url)
    storage = open_storage(pg_url)
    for summary in storage.get_all_studies():
        trials = storage.get_all_trials(internals.study_id(summary))
        twins = [t.number for t in trials if DUPLICATE in t.system_attrs]
        assert not twins, f"{summary.study_name}: twin trials {twins}"
        slots = [t.system_attrs[SLOT] for t in trials if "retry_of" not in t.user_attrs]
        assert len(slots) == len(set(slots)), f"{summary.study_name}: a slot was enqueued twice: {sorted(slots)}"

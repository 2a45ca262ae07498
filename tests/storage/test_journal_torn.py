"""A journal whose last record was cut short (a writer killed, or a full disk, mid-append) is repaired at the next
append, with one warning: the campaign carries on instead of breaking for good."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from hpsearch.search.cli import main
from hpsearch.storage import open_storage
from hpsearch.storage.stores.journal_lock import cut_torn_tail
from tests.campaign.helpers import PLAN, check_campaign, write_plan

TORN = b'{"op_code": 5, "worker_id": "x", "trial_id": 0, "sta'
SMALL = [{**PLAN["stages"][0], "n_trials": 4}, {**PLAN["stages"][1], "n_trials": 3}, PLAN["stages"][2]]


def test_cut_torn_tail_keeps_every_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n' + TORN)
    assert cut_torn_tail(str(path)) == len(TORN)
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    assert cut_torn_tail(str(path)) == 0  # whole: untouched
    path.write_bytes(TORN)  # the very first record cut short
    assert cut_torn_tail(str(path)) == len(TORN) and path.read_bytes() == b""


@pytest.mark.slow
def test_a_campaign_goes_on_after_a_torn_last_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = tmp_path / "c.journal"
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=SMALL)), "--storage", str(journal)]) == 0
    with open(journal, "ab") as f:
        f.write(TORN)  # a worker killed in the middle of its append
    with caplog.at_level(logging.WARNING, logger="hpsearch.storage"):
        open_storage(str(journal)).get_all_studies()  # a reader is not disturbed by it
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "worker", "syn", "--storage", str(journal),
                           "--devices", "cpu"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("record cut short") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert TORN not in journal.read_bytes()
    check_campaign(str(journal))

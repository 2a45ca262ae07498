"""A journal on a disk that fills up: the worker ends with one line naming the full disk, the journal still reads,
and once there is space again the campaign finishes from where it stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from tests.campaign.helpers import check_campaign, worker_env, write_plan

pytestmark = pytest.mark.slow
# The synthetic campaign's journal takes about 150 kB in all; init writes under 10 kB of it.
SMALL_DISK = "64k"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SMALL_DISK, mounted for the test (as root, as the test machines run)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (the test needs root): {mounted.stderr.strip()}"
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _worker(storage: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpsearch.search", "worker", "syn", "--storage", storage,
                           "--devices", "cpu", "--heartbeat-interval", "1", "--grace-period", "4", "--no-artifacts",
                           "--no-checkpoints"], env=worker_env(0.01), capture_output=True, text=True, timeout=120)


def test_a_full_disk_ends_the_worker_in_one_line_and_leaves_a_journal_that_reads(small_disk: Path,
                                                                                  tmp_path: Path) -> None:
    storage = f"journal:{small_disk / 'campaign.journal'}"
    assert main(["init", str(write_plan(tmp_path / "plan.yaml")), "--storage", storage]) == 0
    ended = _worker(storage)
    assert ended.returncode != 0, ended.stderr[-2000:]
    errors = [line for line in ended.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "disk" in errors[0] and "is full" in errors[0], ended.stderr[-3000:]
    assert ended.stderr.splitlines()[-1] == errors[0] and "Traceback" not in ended.stderr
    # The journal reads, whole records only, with the trials finished before the disk filled.
    journal = open_storage(storage, create=False)
    trials = [t for s in journal.get_all_studies() for t in journal.get_all_trials(internals.study_id(s))]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) >= 1
    assert (small_disk / "campaign.journal").read_bytes().endswith(b"\n")
    assert main(["status", "syn", "--storage", storage]) == 0
    # Space again: the campaign goes on from there and ends with every slot once.
    subprocess.run(["mount", "-o", "remount,size=2m", str(small_disk)], check=True)
    finished = _worker(storage)
    assert finished.returncode == 0, finished.stderr[-3000:]
    check_campaign(storage)

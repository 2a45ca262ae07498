"""Running trials show their progress between trial ends: stage, trial, epoch of epochs, last value, time left,
in `hpsearch run`'s view and in `status --watch`, read from a real worker mid-trial."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from hpsearch.search.cli import main
from hpsearch.search.cli.progress import running_trials
from hpsearch.search.cli.run_view import StageBars
from hpsearch.search.run.campaign import Campaign
from hpsearch.storage import open_storage
from tests.campaign.helpers import PLAN, start_workers, wait_all, write_plan
from tests.campaign.test_workers import STEADY_SPACE

EPOCHS = PLAN["stages"][0]["overrides"]["epochs"]


@pytest.mark.slow
def test_a_trial_mid_way_shows_its_epoch_value_and_time_left(tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", space=STEADY_SPACE)), "--storage", journal]) == 0
    [worker] = start_workers(1, journal, sleep=1.0, log_dir=tmp_path)
    try:
        storage = open_storage(journal)
        deadline = time.monotonic() + 60
        while not (running := [r for r in running_trials(Campaign.load(storage, "syn").views()) if r.epoch >= 1]):
            assert time.monotonic() < deadline, "no trial reported an epoch"
            time.sleep(0.2)
        [trial] = running
        assert trial.stage == "coarse" and trial.epochs == EPOCHS and 1 <= trial.epoch < EPOCHS
        assert 0 < trial.last < 1 and trial.left_s is not None and 0 < trial.left_s < 60

        screen = io.StringIO()
        with StageBars(storage, "syn", Console(file=screen, width=80)) as bars:
            bars.update()
        shown = screen.getvalue()
        assert "running" in shown and re.search(rf"coarse +{trial.number} +\d/{EPOCHS} +0\.\d{{4}}", shown), shown
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        wait_all([worker])

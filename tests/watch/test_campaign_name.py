"""`status`, `export` and `report` without a campaign name: the storage's only campaign, or one line saying which
campaigns there are to choose from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from hpsearch.search.plan.plan import Plan
from hpsearch.search.run.campaign import Campaign as Stored
from tests.watch.conftest import Campaign
from tests.watch.helpers import PLAN, journal


def test_the_only_campaign_is_the_one_shown_and_exported(campaign: Campaign, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--storage", str(campaign.path)]) == 0
    assert "campaign watch" in capsys.readouterr().out
    out = tmp_path / "export"
    assert main(["export", "--storage", str(campaign.path), "--top", "1", "--out", str(out)]) == 0
    assert yaml.safe_load((out / "rank-1.yaml").read_text())["result"]["campaign"] == "watch"


def test_several_campaigns_are_named_and_none_is_guessed(campaign: Campaign, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.journal"
    shutil.copy(campaign.path, path)
    Stored(journal(path), Plan.from_dict({**PLAN, "name": "other"})).init()
    capsys.readouterr()
    for command in ("status", "export", "report"):
        assert main([command, "--storage", str(path), "--out" if command != "status" else "--watch",
                     *([str(tmp_path / command)] if command != "status" else [])]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"hpsearch: error: this storage holds 2 campaigns (other, watch); name one: "
                       f"hpsearch {command} other"), err
    assert not (tmp_path / "export").exists() and not (tmp_path / "report").exists()


def test_a_storage_without_campaigns_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.journal"
    journal(path)
    path.touch()
    assert main(["status", "--storage", str(path)]) == 2
    assert "no campaigns in this storage; start one with 'hpsearch run PLAN'" in capsys.readouterr().err

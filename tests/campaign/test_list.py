"""`hpsearch list` shows every campaign of a storage; a campaign name that is not there is answered with those
that are."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.storage import optuna_internals as internals
from tests.campaign.helpers import PLAN, write_plan


def test_list_shows_each_campaign_with_its_state_stage_and_best(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    journal = str(tmp_path / "c.journal")
    quick = [{**s, "overrides": {"epochs": 1}} for s in PLAN["stages"]]
    assert main(["init", str(write_plan(tmp_path / "a.yaml", stages=quick)), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal), threading.Event())
    assert main(["init", str(write_plan(tmp_path / "b.yaml", name="other")), "--storage", journal]) == 0
    capsys.readouterr()
    assert main(["list", "--storage", journal]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["other"][1:4] == ["│", "waiting", "│"] and "coarse" in rows["other"] and "0/12" in rows["other"]
    assert "done" in rows["syn"] and "final" in rows["syn"] and "4/4" in rows["syn"]
    assert float(rows["syn"][-1]) > 0  # the best so far, a validation accuracy


def test_an_unknown_campaign_lists_the_ones_there(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    journal = str(tmp_path / "c.journal")
    for name in ("syn", "other"):
        assert main(["init", str(write_plan(tmp_path / f"{name}.yaml", name=name)), "--storage", journal]) == 0
    capsys.readouterr()
    assert main(["status", "sny", "--storage", journal]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it holds other, syn" in err and "hpsearch list" in err


def test_list_of_an_empty_storage_says_how_to_start(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "c.journal").touch()
    assert main(["list", "--storage", str(tmp_path / "c.journal")]) == 0
    assert "no campaigns" in capsys.readouterr().out


def test_list_ranks_by_the_plans_metric_direction(tmp_path: Path) -> None:
    from hpsearch.search.watch.listing import campaign_lines
    from hpsearch.storage import open_storage

    journal = str(tmp_path / "c.journal")
    stages = [{**PLAN["stages"][0], "overrides": {"epochs": 1}}]
    plan = write_plan(tmp_path / "p.yaml", stages=stages, metric={"name": "val_acc", "direction": "minimize"})
    assert main(["init", str(plan), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal), threading.Event())
    storage = open_storage(journal)
    # Completed trials rank before pruned ones (a pruned trial's value is from an earlier epoch).
    values = [t.value for s in storage.get_all_studies() for t in storage.get_all_trials(internals.study_id(s))
              if t.value is not None and t.state == TrialState.COMPLETE]
    assert campaign_lines(storage)[0].best == min(values) < max(values)

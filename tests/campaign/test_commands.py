"""init / status / export / train through the CLI, and bad plans that must leave the storage untouched."""

import shlex
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from hpsearch.objectives.config import TrainConfig
from hpsearch.search.cli import main
from hpsearch.search.invocation import invoked_as
from hpsearch.search.run.campaign import Campaign
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.storage import redact_url
from tests.campaign.helpers import PLAN, write_plan
from tests.cifar_files import write_cifar


def test_init_twice_is_a_no_op_and_another_plan_is_refused(pg_url: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(tmp_path / "plan.yaml")
    assert main(["init", str(plan), "--storage", pg_url]) == 0
    said = capsys.readouterr().out  # what to start next, pasteable
    storage = shlex.quote(redact_url(pg_url))
    assert f"start workers with: {invoked_as()} worker {PLAN['name']} --storage {storage}" in said
    assert main(["init", str(plan), "--storage", pg_url]) == 0
    assert "already exists (same plan)" in capsys.readouterr().out
    other = write_plan(tmp_path / "other.yaml", seed=7)
    assert main(["init", str(other), "--storage", pg_url]) == 2
    err = capsys.readouterr().err
    assert "different plan" in err and err.count("\n") == 1
    assert f"(seed: {PLAN.get('seed', 0)} stored, 7 in this plan)" in err  # what differs, first
    assert main(["init", str(other), "--storage", pg_url, "--name", "syn-b"]) == 0


BAD_PLANS = {
    "unknown key": ({"budget": 3}, "unknown key"),
    "low > high": ({"space": {**PLAN["space"], "lr": {"type": "float", "low": 1.0, "high": 0.1}}}, "low"),
    "log with low <= 0": ({"space": {**PLAN["space"], "lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
                          "log"),
    "unknown sampler": ({"stages": [{**PLAN["stages"][0], "sampler": "grid-ish"}]}, "unknown sampler"),
    "unknown pruner": ({"stages": [{**PLAN["stages"][0], "pruner": "oracle"}]}, "unknown pruner"),
    "empty choices": ({"space": {**PLAN["space"], "optimizer": {"type": "categorical", "choices": []}}}, "choices"),
    "no budget": ({"stages": [{"name": "coarse", "sampler": "random"}]}, "n_trials"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plans_exit_2_with_one_line_and_touch_nothing(case: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    changes, message = BAD_PLANS[case]
    journal = tmp_path / "c.journal"
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", **changes)), "--storage", str(journal)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not journal.exists() or journal.stat().st_size == 0


def test_bad_storage_strings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = str(write_plan(tmp_path / "plan.yaml"))
    for storage in ("mysql://nope", "postgresql+psycopg2://u:hunter2@127.0.0.1:1/db", str(tmp_path / "no/such/x.j")):
        assert main(["init", plan, "--storage", storage]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "hunter2" not in err
    assert main(["status", "nothing", "--storage", str(tmp_path / "x.journal")]) == 2
    assert "no journal file" in capsys.readouterr().err
    assert not (tmp_path / "x.journal").exists()  # a mistyped path does not become a new, empty store


@pytest.mark.slow
def test_export_then_train_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    journal = str(tmp_path / "c.journal")
    base = {"width": 4, "batch_size": 32, "val_fraction": 0.25, "device": "cpu", "channels_last": False}
    stages = [{**PLAN["stages"][0], "overrides": {"epochs": 1}}, {**PLAN["stages"][1], "overrides": {"epochs": 1}},
              {**PLAN["stages"][2], "overrides": {"epochs": 2}}]
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", base=base, stages=stages)), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal), threading.Event())
    assert main(["status", "syn", "--storage", journal]) == 0
    assert main(["status", "syn", "--storage", journal, "--watch", "--interval", "0.1"]) == 0  # done: returns
    out = tmp_path / "export"
    assert main(["export", "syn", "--storage", journal, "--top", "2", "--out", str(out)]) == 0
    assert "unfinished" not in capsys.readouterr().out and "UNFINISHED" not in (out / "rank-1.yaml").read_text()
    exported = yaml.safe_load((out / "rank-1.yaml").read_text())
    assert exported["result"]["stage"] == "final" and len(exported["result"]["values"]) == 2
    assert set(exported["provenance"]) >= {"hpsearch", "seeds"}
    second = yaml.safe_load((out / "rank-2.yaml").read_text())
    assert exported["result"]["mean_val_acc"] >= second["result"]["mean_val_acc"]
    config = TrainConfig.from_yaml_file(out / "rank-1.yaml")
    assert config.epochs == 2 and config.width == 4
    cifar = write_cifar(tmp_path / "cifar")
    assert main(["train", "--config", str(out / "rank-1.yaml"), "--data-dir", str(cifar),
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "metrics.json").exists()
    loads, reads = count_calls(monkeypatch, Campaign, "load"), count_calls(monkeypatch, optuna.Study, "get_trials")
    assert main(["export", "syn", "--storage", journal, "--format", "json", "--out", str(out)]) == 0
    assert (out / "rank-1.json").exists()
    # One load of the campaign, one read of each stage's trials: the ranking, the status and the costs share it.
    assert loads == [1] and reads == [len(PLAN["stages"])]


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> list[int]:
    """Count the calls of `owner.name` from now on (the real one still runs); the count is the list's item."""
    count, real = [0], getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    is_classmethod = isinstance(owner.__dict__.get(name), classmethod)  # `real` is then bound to `owner` already
    monkeypatch.setattr(owner, name, staticmethod(counted) if is_classmethod else counted)
    return count


@pytest.mark.slow
def test_an_lr_range_test_stage_sets_the_next_stages_lr_bounds(tmp_path: Path) -> None:
    from hpsearch.search.plan.narrow import set_lr_range
    from hpsearch.search.plan.space import space_to_json
    from hpsearch.search.run.campaign import Campaign, load_stored_plan
    from hpsearch.storage import open_storage

    journal = str(tmp_path / "c.journal")
    stages = [{"name": "range", "kind": "lr_range_test"}, *PLAN["stages"]]
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=stages)), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal), threading.Event())
    storage = open_storage(journal)
    plan = load_stored_plan(storage, "syn")
    found = Campaign(storage, plan).stage(0).trials[0].user_attrs["lr_range"]
    coarse = Campaign(storage, plan).stage(1)
    assert space_to_json(coarse.space) == space_to_json(set_lr_range(plan.space, *found, plan.stages[0].margin))
    assert found[0] < found[1] and all(found[0] <= t.params["lr"] <= found[1] for t in coarse.trials if t.params)

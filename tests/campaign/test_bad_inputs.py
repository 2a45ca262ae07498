"""Hostile files and folders: each is one line on stderr, exit code 2, and the storage as it was."""

import threading
import time
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from hpsearch.search.run.worker import WorkerOptions, work
from tests.campaign.helpers import PLAN, write_plan
from tests.cifar_files import write_cifar


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err
    return err


PLAN_FILES = {
    "a Latin-1 comment": ("# Schätzung\n".encode("latin-1") + yaml.safe_dump(PLAN).encode(), "not UTF-8"),
    "a binary file": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 64, "not UTF-8"),
    "a huge file": (b"# padding\n" * 200_000, "over 1 MB"),
    "n_trials 100000000": (yaml.safe_dump({**PLAN, "stages": [{**PLAN["stages"][0], "n_trials": 100_000_000}]})
                           .encode(), "n_trials"),
    "an objective that does not import": (yaml.safe_dump({**PLAN, "objective": "nosuchmod.sub:train"}).encode(),
                                          "nosuchmod"),
    "a training config": (b"lr: 0.1\nepochs: 4\n", "is a training config, not a plan"),
    "an export": (yaml.safe_dump({"objective": "cifar10-resnet18", "config": {"lr": 0.1}}).encode(),
                  "train it with 'hpsearch train --config"),
}


@pytest.mark.parametrize("case", sorted(PLAN_FILES))
def test_bad_plan_files_are_refused_at_init(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, words = PLAN_FILES[case]
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(content)
    journal = tmp_path / "c.journal"
    assert main(["init", str(plan), "--storage", str(journal)]) == 2
    _one_line(capsys, words)
    assert not journal.exists() or journal.stat().st_size == 0


def test_an_endless_plan_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["init", "/dev/zero", "--storage", str(tmp_path / "c.journal")]) == 2
    _one_line(capsys, "over 1 MB")
    assert time.monotonic() - started < 30  # reading all of it would never end


def test_a_config_that_is_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes("# réglage\nlr: 0.1\n".encode("latin-1"))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    _one_line(capsys, "not UTF-8")


def _finished_campaign(tmp_path: Path) -> str:
    journal = str(tmp_path / "c.journal")
    stages = [{**s, "overrides": {"epochs": 1}} for s in PLAN["stages"]]
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=stages)), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal), threading.Event())
    return journal


def test_an_unwritable_out_artifacts_or_checkpoints_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    bad = str(blocker / "out")  # a folder inside a file: no user, root included, can write there
    journal = _finished_campaign(tmp_path)
    size = Path(journal).stat().st_size
    cifar = str(write_cifar(tmp_path / "cifar"))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"width": 4, "epochs": 1, "device": "cpu"}))
    commands = {
        "export": ["export", "syn", "--storage", journal, "--out", bad],
        "report": ["report", "syn", "--storage", journal, "--out", bad],
        "train": ["train", "--config", str(config), "--data-dir", cifar, "--out", bad],
        "lr-find": ["lr-find", "--config", str(config), "--data-dir", cifar, "--out", bad],
        "run": ["run", str(write_plan(tmp_path / "other.yaml", name="other")), "--storage", journal, "--out", bad],
        "worker": ["worker", "syn", "--storage", journal, "--devices", "cpu", "--artifacts", bad],
        "checkpoints": ["worker", "syn", "--storage", journal, "--devices", "cpu", "--checkpoints", bad],
    }
    option = {"worker": "--artifacts", "checkpoints": "--checkpoints"}
    for name, argv in commands.items():
        assert main(argv) == 2, name
        _one_line(capsys, option.get(name, "--out"), "not a writable folder")
    assert Path(journal).stat().st_size == size  # `run` found out before it created its campaign


def test_the_dashboard_refuses_a_journal_that_is_not_there(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo.journal"
    assert main(["dashboard", "--storage", str(typo), "--port", "0"]) == 2
    _one_line(capsys, "no journal file")
    assert not typo.exists()

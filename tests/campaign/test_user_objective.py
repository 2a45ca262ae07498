"""A user's `module:attribute` objective: a plain function needs nothing from hpsearch; an `Objective` declares
what it needs (the CIFAR-10 folder, a range test for an lr_range_test stage) and is held to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.cli import main
from tests.campaign.faults import all_trials
from tests.campaign.helpers import PLAN, write_plan

USER_MODULE = '''
from hpsearch.objectives.objective import Objective
from hpsearch.objectives.synthetic import synthetic_train


def plain(config, **kwargs):
    return synthetic_train(config, **kwargs)


with_data = Objective(train=plain, needs_data=True)
with_range = Objective(train=plain, lr_range=lambda config, data_dir: (1e-3, 1.0))
not_a_function = 42
'''
SMALL = [{**s, "overrides": {"epochs": 1}} for s in PLAN["stages"]]
RANGE_FIRST = [{"name": "range", "kind": "lr_range_test"}, *SMALL]


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "user_objective.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path / "no-cifar-here"))
    return "user_objective"


def _worker(journal: str) -> list[str]:
    return ["worker", "syn", "--storage", journal, "--devices", "cpu", "--no-artifacts", "--no-checkpoints"]


def _run_worker(journal: str, module_dir: Path) -> int:
    """A real worker process (its logging set up as in production), the user's module on its path."""
    env = {**os.environ, "PYTHONPATH": str(module_dir)}
    return subprocess.run([sys.executable, "-m", "hpsearch.search", *_worker(journal)], env=env,
                          timeout=240).returncode


def test_a_plain_function_objective_runs_without_cifar_on_disk(user_module: str, tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    plan = write_plan(tmp_path / "plan.yaml", objective=f"{user_module}:plain", stages=SMALL)
    assert main(["init", str(plan), "--storage", journal]) == 0
    assert _run_worker(journal, tmp_path) == 0
    assert [t for t in all_trials(journal) if t.state == TrialState.COMPLETE]


def test_an_objective_that_needs_cifar_is_refused_without_it(user_module: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    journal = str(tmp_path / "c.journal")
    plan = write_plan(tmp_path / "plan.yaml", objective=f"{user_module}:with_data", stages=SMALL)
    assert main(["init", str(plan), "--storage", journal]) == 0
    capsys.readouterr()
    assert main(_worker(journal)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CIFAR-10" in err and "Traceback" not in err, err


@pytest.mark.parametrize(("attribute", "code", "words"), [
    ("plain", 2, "provides none"),  # no range test: refused at init, nothing stored
    ("with_range", 0, ""),
    ("not_a_function", 2, "not a training function"),
])
def test_an_lr_range_test_stage_needs_the_objectives_own_range_test(
        user_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], attribute: str, code: int,
        words: str) -> None:
    journal = tmp_path / "c.journal"
    plan = write_plan(tmp_path / "plan.yaml", objective=f"{user_module}:{attribute}", stages=RANGE_FIRST)
    capsys.readouterr()
    assert main(["init", str(plan), "--storage", str(journal)]) == code
    if code:
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
        assert not journal.exists() or journal.stat().st_size == 0
    else:
        assert _run_worker(str(journal), tmp_path) == 0
        ranged = [t for t in all_trials(str(journal)) if "lr_range" in t.user_attrs]
        assert ranged and ranged[0].user_attrs["lr_range"] == [1e-3, 1.0]

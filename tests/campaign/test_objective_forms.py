"""A user's objective in either form: a function of a params dict that returns a float (reporting through
`report`), or a full `train` with its own config dataclass; its metric and direction, its export and the
`hpsearch train` that reruns it, and a campaign that stops when the objective keeps failing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.storage import open_storage
from tests.campaign.faults import all_trials

SIMPLE = '''
import json, math, os

def objective(params, report):
    with open(os.environ["CALLS_FILE"], "a") as f:   # every call leaves a line: the test counts them
        f.write(json.dumps(params) + "\\n")
    loss = (math.log10(params["lr"]) + 2) ** 2 + 4 * (params["dropout"] - 0.2) ** 2 + 0.01 * params["seed"]
    for step in range(1, params["epochs"] + 1):
        report(loss + 1.0 / step, step)
    return loss
'''
RAISES = '''
def objective(params):
    return 1 / 0
'''
DIVERGES = '''
def objective(params):
    return float("nan")
'''
BROKEN_IMPORT = '''
raise RuntimeError("this module is broken on purpose")
'''
FULL = '''
from dataclasses import dataclass
from hpsearch.objectives.result import EpochRecord, TrainResult

@dataclass(frozen=True)
class NetConfig:
    lr: float
    dropout: float = 0.1
    epochs: int = 3
    seed: int = 0

def train(config: NetConfig, *, data_dir=None, on_epoch=None, on_step=None) -> TrainResult:
    result = TrainResult(config=config)
    for epoch in range(1, config.epochs + 1):
        loss = abs(config.lr - 0.01) + config.dropout / epoch
        if result.end_epoch(EpochRecord(epoch, val_loss=loss, metrics={"score": -loss}), on_epoch, None):
            break
    return result
'''
SPACE = {"lr": {"type": "float", "low": 1.0e-4, "high": 1.0, "log": True},
         "dropout": {"type": "float", "low": 0.0, "high": 0.5}}
STAGES = [
    {"name": "coarse", "n_trials": 8, "overrides": {"epochs": 3}, "pruner": {"name": "median", "n_startup_trials": 3}},
    {"name": "fine", "n_trials": 4, "narrow": {"top_k": 3, "margin": 0.2}, "carry": 2},
    {"name": "final", "kind": "final", "top": 2, "seeds": 2},
]


def _plan(folder: Path, objective: str, **changes: object) -> Path:
    plan = {"name": "own", "objective": objective, "metric": {"name": "loss", "direction": "minimize"},
            "base": {"epochs": 5, "seed": 0}, "space": SPACE, "stages": STAGES, **changes}
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in plan.items() if v is not None}, sort_keys=False))
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CALLS_FILE": str(tmp_path / "calls.jsonl"), "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_a_float_returning_objective_runs_a_campaign_and_train_calls_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "lossy.py").write_text(SIMPLE)  # beside the plan: found there, with no PYTHONPATH
    monkeypatch.chdir(tmp_path)
    journal = str(tmp_path / "c.journal")
    # The console script, as the README runs it (.venv/bin/hpsearch): the printed line must name it.
    script = Path(sys.executable).parent / "hpsearch"
    proc = subprocess.run([str(script), "run", str(_plan(plans, "lossy:objective")),
                           "--storage", journal, "--workers", "2", "--no-artifacts", "--out", "out"],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    storage = open_storage(journal)
    for stage in STAGES:  # exact budgets, and every study carries the metric's name and direction
        study = optuna.load_study(study_name=f"own.{stage['name']}", storage=storage)
        assert study.metric_names == ["loss"] and study.direction == StudyDirection.MINIMIZE
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        budget = stage.get("n_trials", 4)
        assert len(finished) == budget, (stage["name"], len(finished))
    exported = yaml.safe_load((tmp_path / "out" / "rank-1.yaml").read_text())
    assert exported["objective"] == "lossy:objective" and "dropout" in exported["config"]
    assert exported["result"]["metric"] == {"name": "loss", "direction": "minimize"}
    # The lowest loss first: the final stage's two configs, ranked by their mean over seeds.
    assert main(["export", "own", "--storage", journal, "--top", "2", "--out", str(tmp_path / "ex")]) == 0
    ranks = [yaml.safe_load((tmp_path / "ex" / f"rank-{k}.yaml").read_text())["result"]["mean_loss"] for k in (1, 2)]
    assert ranks[0] <= ranks[1]
    # Counted in steps (no cost function): the report's cost table names the steps once and saves nothing.
    assert main(["report", "own", "--storage", journal, "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "own-report.html").read_text()
    cost = html[html.index("<section id='cost'>"):]
    assert cost[: cost.index("</tr>")].count("<th>steps</th>") == 1 and "saved by pruning</th>" not in cost
    line = next(x for x in proc.stdout.splitlines() if x.startswith("reproduce it: "))
    calls_before = len((tmp_path / "calls.jsonl").read_text().splitlines())
    again = subprocess.run(line.removeprefix("reproduce it: "), shell=True, env=_env(tmp_path),
                           capture_output=True, text=True, timeout=120)  # pasted as printed
    assert again.returncode == 0, again.stderr
    calls = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert len(calls) == calls_before + 2  # the user's function ran once per seed, not ResNet-18
    assert yaml.safe_load(calls[-2])["dropout"] == exported["config"]["dropout"]
    assert "loss" in again.stdout and "minimize" in again.stdout
    mean, std = re.search(r"loss (\S+) ± (\S+) over 2 run", again.stdout).groups()  # to the same decimals
    assert len(mean.partition(".")[2]) == len(std.partition(".")[2]), again.stdout


@pytest.mark.slow
def test_an_objective_that_always_raises_stops_run_with_its_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.py").write_text(RAISES)
    journal = str(tmp_path / "c.journal")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(_plan(tmp_path, "broken:objective")),
                           "--storage", journal, "--workers", "2", "--out", str(tmp_path / "out")],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and time.monotonic() - started < 60, proc.stderr
    assert "ZeroDivisionError: division by zero" in proc.stderr and "broken.py:3" in proc.stderr, proc.stderr
    assert "campaign own failed in stage coarse" in proc.stderr
    assert proc.stderr.count("Traceback") == 1  # the first error in full; the later ones counted
    names = {s.study_name for s in open_storage(journal).get_all_studies()}
    assert names == {"own.coarse"}  # no stage opened after it
    failed = [t for t in all_trials(journal) if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["error"]["type"] == "ZeroDivisionError" for t in failed)
    capsys.readouterr()
    assert main(["status", "own", "--storage", journal]) == 0
    assert "FAILED: campaign own failed in stage coarse" in " ".join(capsys.readouterr().out.split())
    assert main(["export", "own", "--storage", journal, "--out", str(tmp_path / "ex")]) == 2  # nothing to export
    assert "failed in stage coarse" in capsys.readouterr().err
    code = subprocess.run([sys.executable, "-m", "hpsearch.search", "worker", "own", "--storage", journal,
                           "--devices", "cpu"], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert code.returncode == 1 and "failed in stage coarse" in code.stderr and "Traceback" not in code.stderr


@pytest.mark.slow
def test_a_stage_whose_every_trial_diverged_stops_run_saying_so(tmp_path: Path) -> None:
    (tmp_path / "nan.py").write_text(DIVERGES)
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(_plan(tmp_path, "nan:objective")),
                           "--storage", str(tmp_path / "c.journal"), "--workers", "1", "--out", str(tmp_path / "out")],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert ("campaign own failed in stage coarse: it ended with no completed trial (all 8 pruned or diverged, none "
            "failed), so stage fine cannot open. Keep the space clear of diverging settings") in proc.stderr
    assert "the error was" not in proc.stderr and "Traceback" not in proc.stderr


def test_an_import_that_raises_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wrecked.py").write_text(BROKEN_IMPORT)
    plan = _plan(tmp_path, "wrecked:objective")
    journal = str(tmp_path / "c.journal")
    for command in (["init", str(plan), "--storage", journal], ["run", str(plan), "--storage", journal]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "'wrecked'" in err and "RuntimeError: this module is broken" in err, err
        assert "wrecked.py:2" in err and "Traceback" not in err
    assert not Path(journal).exists() or not open_storage(journal).get_all_studies()


@pytest.mark.slow
def test_a_full_objective_with_its_own_config_and_metric(tmp_path: Path) -> None:
    (tmp_path / "netmod.py").write_text(FULL)
    plan = _plan(tmp_path, "netmod:train", metric={"name": "score", "direction": "maximize"},
                 base={"lr": 0.5}, stages=[{**STAGES[0], "overrides": {"epochs": 2}}])
    journal = str(tmp_path / "c.journal")
    env = {**_env(tmp_path), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(plan), "--storage", journal,
                           "--workers", "1", "--no-artifacts", "--out", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    trials = [t for t in all_trials(journal) if t.state == TrialState.COMPLETE]
    best = max(trials, key=lambda t: t.value)
    assert best.value == pytest.approx(-(abs(best.params["lr"] - 0.01) + best.params["dropout"] / 2))
    assert set(best.user_attrs["config"]) == {"lr", "dropout", "epochs", "seed"}  # its own fields, no device
    assert [h["metrics"]["score"] for h in best.user_attrs["history"]][-1] == best.value


@pytest.mark.parametrize(("changes", "words"), [
    ({"metric": None}, "metric: missing; a simple objective returns one number"),
    ({"metric": {"name": "loss", "direction": "down"}}, "metric.direction: must be maximize or minimize"),
    ({"metric": {"name": "loss"}}, "metric.direction: must be maximize or minimize"),
    ({"fail_fast": -1}, "fail_fast: must be an integer in [0"),
])
def test_plan_checks_of_a_simple_objective(tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict,
                                           words: str) -> None:
    (tmp_path / "lossy.py").write_text(SIMPLE)
    assert main(["init", str(_plan(tmp_path, "lossy:objective", **changes)), "--storage",
                 str(tmp_path / "c.journal")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_a_full_objectives_config_type_checks_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "netmod.py").write_text(FULL)
    plan = _plan(tmp_path, "netmod:train", metric=None, base={"lr": 0.5, "dropuot": 0.1})
    assert main(["init", str(plan), "--storage", str(tmp_path / "c.journal")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'dropuot'; valid NetConfig keys are dropout, epochs, lr, seed" in err, err


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "own-objective"


@pytest.mark.parametrize("plan", ["simple.yaml", "full.yaml"])
def test_the_example_plans_are_valid(tmp_path: Path, plan: str) -> None:
    assert main(["init", str(EXAMPLES / plan), "--storage", str(tmp_path / "c.journal")]) == 0


@pytest.mark.slow
def test_the_full_example_runs_resumable_with_its_own_config(tmp_path: Path) -> None:
    """The example's full objective, at a smaller budget: its curves' history and checkpoints in a campaign."""
    for name in ("blobs.py", "full.py"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    plan = yaml.safe_load((EXAMPLES / "full.yaml").read_text())
    plan["base"]["epochs"] = 3
    plan["stages"] = [{**plan["stages"][0], "n_trials": 4, "overrides": {"data_fraction": 0.2, "epochs": 1}},
                      {**plan["stages"][1], "n_trials": 2, "carry": 1, "overrides": {"epochs": 2}},
                      {**plan["stages"][2], "top": 1}]
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    journal = str(tmp_path / "c.journal")
    proc = subprocess.run([sys.executable, "-m", "hpsearch.search", "run", str(path), "--storage", journal,
                           "--workers", "1", "--out", str(tmp_path / "out"), "--artifacts", str(tmp_path / "art")],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    final = [t for t in all_trials(journal)
             if t.state == TrialState.COMPLETE and t.user_attrs["config"]["epochs"] == 3]
    assert len(final) == 2 and all(len(t.user_attrs["history"]) == 3 for t in final)
    assert list((tmp_path / "art").rglob("*"))  # curves and the final stage's weights, as for CIFAR-10

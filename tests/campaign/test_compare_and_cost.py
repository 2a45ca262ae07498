"""Comparison stages and cost accounting end to end: a synthetic campaign on a journal file, then what
`hpsearch status`, `export` and `report` show of it."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import optuna_dashboard
import pytest
import yaml
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from hpsearch.search.cli import main
from hpsearch.search.run.campaign import DUPLICATE, SLOT, Campaign, load_stored_plan, rank
from hpsearch.search.run.cost import total
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.search.watch.summary import campaign_summary, trial_cost_of
from hpsearch.storage import open_storage
from tests.campaign.helpers import PLAN, write_plan

SEEDS = 3
STAGES = [
    {"name": "coarse", "n_trials": 8, "overrides": {"epochs": 4}, "sampler": "random",
     "pruner": {"name": "median", "n_startup_trials": 2}},
    {"name": "floor", "kind": "compare", "config": "best", "seeds": SEEDS, "overrides": {"epochs": 4},
     "variants": {"floor": {"scheduler": "cosine", "min_lr_ratio": 0.01},
                  "no-floor": {"scheduler": "cosine", "min_lr_ratio": 1.0e-6}}},
    {"name": "momentum", "kind": "compare", "config": "base", "seeds": SEEDS, "overrides": {"epochs": 4},
     "variants": {"large": {"optimizer": "sgd", "lr": 0.5, "momentum": 0.95},
                  "small": {"optimizer": "sgd", "lr": 0.5, "momentum": 0.5},
                  "adamw": {"optimizer": "adamw", "lr": 1.0e-3}}},
]
VARIANTS = {"floor": ["floor", "no-floor"], "momentum": ["large", "small", "adamw"]}


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One finished campaign for every test here: running it is the slow part."""
    tmp = tmp_path_factory.mktemp("compare")
    journal = str(tmp / "c.journal")
    assert main(["init", str(write_plan(tmp / "plan.yaml", stages=STAGES)), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal, artifacts=None), threading.Event())
    return journal


def test_each_variant_runs_its_changes_on_the_chosen_config_with_each_seed(journal: str) -> None:
    storage = _storage(journal)
    plan = load_stored_plan(storage, "syn")
    coarse, floor, momentum = (Campaign(storage, plan).stage(i) for i in range(3))
    best = rank(coarse.trials)[0]
    note = optuna_dashboard.get_note(floor.study)  # the dashboard's stage note names the variants
    assert note.startswith("## Stage floor (compare)") and "best config x 3 seed(s)" in note
    assert "| variant no-floor | scheduler=cosine, min_lr_ratio=1e-06 |" in note
    for view, on_best in ((floor, True), (momentum, False)):
        done = [t for t in view.trials if t.state == TrialState.COMPLETE]
        assert len(done) == view.stage.n_trials == len(VARIANTS[view.stage.name]) * SEEDS
        for t in done:
            variant, seed = divmod(t.system_attrs[SLOT], SEEDS)
            config = t.user_attrs["config"]
            assert config["seed"] == PLAN["base"].get("seed", 0) + seed
            assert config.items() >= view.stage.variants[variant][1].items()  # the variant's changes win
            assert config["epochs"] == 4 and config["width"] == PLAN["base"]["width"]
            if on_best:  # the best coarse config, apart from what the variant changes
                assert t.params == best.params
            else:  # the base config: nothing sampled
                assert t.params == {} and config["weight_decay"] == 5e-4


@pytest.mark.slow
def test_status_shows_each_variant_with_its_interval_and_the_cost(journal: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "syn", "--storage", journal]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for names in VARIANTS.values():
        for name in names:  # one row per variant: its name, n, mean and 95% interval
            line = next(line for line in lines if re.search(rf" {re.escape(name)} +{SEEDS} +0\.\d{{4}} ", line))
            assert re.search(r"\[0\.\d{3}, 0\.\d{3}\]", line), line
    assert "Welch" in out
    assert re.search(r" adamw +3 .*\*$", out, re.M)  # Adam at 1e-3 loses clearly on the synthetic objective
    start = next(i for i, line in enumerate(lines) if line.startswith("cost "))
    cost_rows = {line.split()[0] for line in lines[start + 1:] if re.match(r"\S+ +\d+ +\d+ ", line)}
    assert {"coarse", "floor", "momentum", "campaign"} <= cost_rows


def test_export_carries_comparisons_and_cost_that_add_up(journal: str, tmp_path: Path) -> None:
    assert main(["export", "syn", "--storage", journal, "--out", str(tmp_path)]) == 0
    text = (tmp_path / "rank-1.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["result"]["stage"] == "coarse"  # comparisons check the result; they are not the result
    for stage, names in VARIANTS.items():
        variants = doc["campaign"]["comparisons"][stage]["variants"]
        assert [v["variant"] for v in variants] == names
        for v in variants:
            low, high = v["ci95"]
            assert v["n"] == SEEDS and low < v["mean"] < high
        assert variants[0]["significant"] is None and all(v["significant"] in (True, False) for v in variants[1:])
    # the totals are the sum of every stored trial's cost, pruned and failed ones included
    storage = _storage(journal)
    plan = load_stored_plan(storage, "syn")
    trials = [t for i in range(3) for t in Campaign(storage, plan).stage(i).trials if DUPLICATE not in t.system_attrs]
    expected = total(trial_cost_of(t) for t in trials)
    cost = doc["campaign"]["cost"]
    assert cost["trials"] == len(trials) == 8 + 6 + 9 and cost["epochs"] == expected.epochs
    assert cost["epoch_equivalents"] == pytest.approx(expected.epoch_equivalents, abs=1e-5)
    assert sum(s["cost"]["epoch_equivalents"] for s in doc["campaign"]["stages"].values()) == pytest.approx(
        cost["epoch_equivalents"], abs=1e-5)
    assert "# campaign cost:" in text


def test_pruned_trials_count_only_the_epochs_they_ran(journal: str) -> None:
    storage = _storage(journal)
    plan = load_stored_plan(storage, "syn")
    coarse = Campaign(storage, plan).stage(0)
    pruned = [t for t in coarse.trials if t.state == TrialState.PRUNED]
    assert pruned, "the median pruner cut nothing; the test needs a pruned trial"
    for t in coarse.trials:
        assert t.user_attrs["cost"]["epochs"] == len(t.user_attrs["history"])
    ran = sum(len(t.user_attrs["history"]) for t in pruned)
    summary = campaign_summary(storage, "syn")[0]
    width, fraction = PLAN["base"]["width"], PLAN["base"]["data_fraction"]
    assert summary.costs["pruned"].epochs == ran < 4 * len(pruned)
    assert summary.costs["pruned"].epoch_equivalents == pytest.approx(ran * fraction * (width / 64) ** 2)
    assert summary.cost.saved == pytest.approx((4 * len(pruned) - ran) * fraction * (width / 64) ** 2)


@pytest.mark.slow
def test_report_shows_the_cost_and_each_comparison(journal: str, tmp_path: Path) -> None:
    assert main(["report", "syn", "--storage", journal, "--out", str(tmp_path)]) == 0
    page = (tmp_path / "syn-report.html").read_text()
    assert "<h2>Cost</h2>" in page and "epoch-equivalent" in page
    assert "Comparison on the best config" in page and "Comparison on the base config" in page
    for names in VARIANTS.values():
        for name in names:
            assert f"<td>{name}</td>" in page
    assert "Welch" in page and page.count("<h3>Variants: mean and 95% interval") == 2


def _storage(journal: str) -> BaseStorage:
    return open_storage(journal)


def test_a_plan_of_comparisons_only_counts_failed_trials_and_exports_its_best_variant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = str(tmp_path / "c.journal")
    stages = [{"name": "momentum", "kind": "compare", "seeds": 2, "overrides": {"epochs": 3},
               "variants": {"large": {"lr": 0.5, "momentum": 0.95}, "crashes": {"lr": 0.5, "momentum": 0.5}}}]
    plan = write_plan(tmp_path / "plan.yaml", objective="tests.campaign.failing_objective:train", stages=stages)
    data = yaml.safe_load(plan.read_text())
    del data["space"]  # the user's config is the base; nothing is searched
    plan.write_text(yaml.safe_dump(data, sort_keys=False))  # the first variant is the reference
    assert main(["init", str(plan), "--storage", journal]) == 0
    work("syn", WorkerOptions(storage=journal, max_retry=1), threading.Event())
    summary = campaign_summary(_storage(journal), "syn")[0]
    assert summary.costs["complete"].trials == 2
    assert summary.costs["fail"].trials == 4  # two seeds, each tried twice (max_retry 1), all in the cost
    assert summary.cost.trials == 6 and summary.cost.epochs == 2 * 3
    large, crashes = summary.comparison
    assert len(large.values) == 2 and crashes.values == () and crashes.p_value is None
    assert main(["status", "syn", "--storage", journal]) == 0
    out = capsys.readouterr().out
    assert re.search(r" crashes +0 +- +- ", out)  # no runs, no interval: said, not invented
    assert main(["export", "syn", "--storage", journal, "--out", str(tmp_path / "export")]) == 0
    doc = yaml.safe_load((tmp_path / "export" / "rank-1.yaml").read_text())
    assert doc["result"]["variant"] == "large" and doc["config"]["momentum"] == 0.95
    assert doc["campaign"]["stages"]["momentum"]["cost_by_state"]["fail"]["trials"] == 4


@pytest.mark.slow
def test_a_compare_stage_on_postgresql_claims_its_slots_with_their_params(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL hands out slots without a snapshot of the stage: the best params must still reach them."""
    # Four coarse trials could all diverge or be pruned, leaving nothing to compare on: LRs below every
    # divergence bound of the synthetic objective, and no pruner.
    stages = [{**STAGES[0], "n_trials": 4, "pruner": "none"}, {**STAGES[1], "seeds": 2}]
    space = {**PLAN["space"], "lr": {"type": "float", "low": 1.0e-3, "high": 0.04, "log": True}}
    assert main(["init", str(write_plan(tmp_path / "plan.yaml", stages=stages, space=space)), "--storage",
                 pg_url]) == 0
    work("syn", WorkerOptions(storage=pg_url), threading.Event())
    storage = open_storage(pg_url)
    plan = load_stored_plan(storage, "syn")
    best = rank(Campaign(storage, plan).stage(0).trials)[0]
    floor = [t for t in Campaign(storage, plan).stage(1).trials if t.state == TrialState.COMPLETE]
    assert len(floor) == 4 and all(t.params == best.params for t in floor)
    assert all(t.user_attrs["config"]["lr"] == best.params["lr"] for t in floor)
    summary = campaign_summary(storage, "syn")
    assert [len(r.values) for r in summary[1].comparison] == [2, 2] and summary[1].cost.trials == 4

"""A final stage whose `top` is more than the stage before it finished (a small or escalated stage, one whose trials
mostly failed) re-trains the configs there are, and the campaign ends; it used to wait for slots never queued."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.stage_logic import FINAL_CONFIGS, as_opened, final_configs
from hpsearch.search.run.campaign import Campaign, init_campaign
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.search.watch.export import best_configs
from hpsearch.search.watch.status import campaign_status
from hpsearch.storage import open_storage

# The second and fourth trials raise, and with no retries their slots are given up: the search stage finishes 2
# of its 4 trials, fewer than the final stage's top (which the plan check lets through: 4 <= 4).
FLAKY = """
import itertools
calls = itertools.count()

def objective(params):
    if next(calls) in (1, 3):
        raise RuntimeError("a trial that fails")
    return (params["x"] - 0.3) ** 2 + 0.01 * params["seed"]
"""
SHORT = {"name": "short", "objective": "flaky:objective", "metric": {"name": "loss", "direction": "minimize"},
         "base": {"seed": 0}, "fail_fast": 0, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
         "stages": [{"name": "search", "n_trials": 4, "sampler": "random"},
                    {"name": "final", "kind": "final", "top": 4, "seeds": 2}]}


def test_a_final_stage_opens_with_the_configs_there_are(flaky: None) -> None:
    search, final = Plan.from_dict(SHORT).stages
    assert (final.top, final.n_trials) == (4, 8)
    fewer = as_opened(final, False, 3)
    assert (fewer.top, fewer.n_trials, fewer.seeds) == (3, 6, 2)
    assert as_opened(final, False, 4) is final and as_opened(final, False, None) is final
    assert final_configs(final, [object()] * 7) == 4 and final_configs(final, [object()] * 2) == 2
    assert final_configs(search, []) is None  # a search stage keeps its n_trials


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The module on the path, imported afresh by each test (its count of calls starts at 0)."""
    (tmp_path / "flaky.py").write_text(FLAKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flaky", raising=False)


def test_a_campaign_whose_final_top_exceeds_what_the_stage_before_finished_ends(tmp_path: Path, flaky: None) -> None:
    journal = str(tmp_path / "c.journal")
    storage = open_storage(journal)
    plan = Plan.from_dict(SHORT)
    init_campaign(storage, plan)
    stop, done = threading.Event(), []
    worker = threading.Thread(target=lambda: done.append(work("short", WorkerOptions(storage=journal, poll=0.05,
                                                                                      max_retry=0), stop)))
    worker.start()
    worker.join(timeout=60)
    stop.set()  # a worker still waiting for slots that were never queued stops here, and the test fails
    worker.join(timeout=10)
    assert done == [8], "the campaign did not end: its final stage waited for slots it never queued"
    view = Campaign(storage, plan).stage(1)
    assert view is not None and (view.stage.top, view.stage.n_trials) == (2, 4)
    assert view.study.user_attrs[FINAL_CONFIGS] == 2
    assert [t.state for t in view.study.trials] == [TrialState.COMPLETE] * 4
    final = campaign_status(storage, "short")[1]
    assert (final.n_trials, final.finished) == (4, 4)  # status reads the stage as it opened
    assert len(best_configs(storage, "short", 4)) == 2  # every config re-trained, ranked by its mean

"""The hand-over between stages when the worker opening the next stage dies halfway."""

import threading
from pathlib import Path

import pytest

from hpsearch.search.plan.plan import load_plan_file
from hpsearch.search.plan.stage_logic import next_space
from hpsearch.search.run import campaign
from hpsearch.search.run.campaign import Campaign, init_campaign, load_stored_plan, open_stage, rank
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.storage import open_storage
from tests.campaign.helpers import check_campaign, write_plan


@pytest.mark.slow
@pytest.mark.parametrize("dies", ["before the slots", "after the slots"])
def test_an_opener_killed_halfway_blocks_nothing(dies: str, pg_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(pg_url)
    init_campaign(storage, load_plan_file(write_plan(tmp_path / "plan.yaml")))
    plan = load_stored_plan(storage, "syn")
    options = WorkerOptions(storage=pg_url, max_trials=12)
    assert work("syn", options, threading.Event()) == 12  # the whole first stage
    coarse = Campaign(storage, plan).stage(0)
    real_enqueue = campaign.enqueue_slots

    def dying_enqueue(*args: object) -> int:
        if dies == "after the slots":
            real_enqueue(*args)
        raise SystemExit("killed while opening the next stage")

    monkeypatch.setattr(campaign, "enqueue_slots", dying_enqueue)
    with pytest.raises(SystemExit):
        open_stage(storage, plan, 1, next_space(plan, 1, coarse.space, coarse.trials), coarse.space,
                   rank(coarse.trials))
    monkeypatch.setattr(campaign, "enqueue_slots", real_enqueue)
    assert Campaign(storage, plan).stage(1) is None  # created, not marked open
    threads = [threading.Thread(target=work, args=("syn", WorkerOptions(storage=pg_url), threading.Event()))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    check_campaign(pg_url)

"""The order in which a worker takes a stage's trials: a failed slot's retry before every other slot."""

from pathlib import Path

from optuna.trial import TrialState

from hpsearch.search.plan.plan import load_plan_file
from hpsearch.search.run.campaign import SLOT, Campaign, init_campaign, retry_trial
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from tests.campaign.helpers import write_plan


def test_a_retry_goes_to_the_front_of_the_queue_once(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "c.journal"))
    init_campaign(storage, load_plan_file(write_plan(tmp_path / "plan.yaml")))
    campaign = Campaign.load(storage, "syn")
    claimed = campaign.claim(campaign.stage(0))
    assert claimed is not None
    trial = claimed.trial
    storage.set_trial_state_values(internals.trial_id(trial), TrialState.FAIL)
    failed = storage.get_trial(internals.trial_id(trial))
    view = campaign.stage(0)
    assert retry_trial(view.study, failed, "the worker was stopped (SIGTERM)", max_retry=3)
    assert not retry_trial(view.study, failed, "the same failure, seen again", max_retry=3)  # its slot waits
    view.refresh()
    again = campaign.claim(view)
    assert again is not None
    taken = storage.get_trial(internals.trial_id(again.trial))
    assert taken.system_attrs["failed_trial"] == trial.number and taken.system_attrs[SLOT] == failed.system_attrs[SLOT]

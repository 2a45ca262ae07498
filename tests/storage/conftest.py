"""Fixtures for the storage tests: one storage string per backend, and claimed trials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.trial import TrialState

SLOT_ATTR = "hpsearch:slot"  # stands in for the system attributes the worker loop relies on
ClaimTrials = Callable[[BaseStorage, str, int], list[int]]


@pytest.fixture(params=["journal", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against the journal file and against a fresh PostgreSQL database."""
    if request.param == "journal":
        return f"journal:{tmp_path / 'hpsearch.journal'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def claim_trials() -> ClaimTrials:
    """Create a study with `n` enqueued slots and claim them all, as a worker does; return trial ids."""

    def claim(storage: BaseStorage, study_name: str, n: int) -> list[int]:
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
        for slot in range(n):
            study.enqueue_trial({"lr": 0.1 * (slot + 1)})
        trial_ids = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            storage.set_trial_system_attr(trial._trial_id, SLOT_ATTR, trial.number)
            assert storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING)
            trial_ids.append(trial._trial_id)
        return trial_ids

    return claim

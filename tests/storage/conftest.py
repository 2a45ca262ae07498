"""Fixtures for the storage tests: one storage string per backend, and claimed trials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from hpsearch.storage import optuna_internals as internals

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
            storage.set_trial_system_attr(internals.trial_id(trial), SLOT_ATTR, trial.number)
            assert storage.set_trial_state_values(internals.trial_id(trial), TrialState.RUNNING)
            trial_ids.append(internals.trial_id(trial))
        return trial_ids

    return claim

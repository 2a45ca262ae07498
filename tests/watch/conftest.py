from dataclasses import dataclass
from pathlib import Path

import pytest
from optuna.storages import BaseStorage

from tests.watch.helpers import journal, run_campaign


@dataclass
class Campaign:
    path: Path
    storage: BaseStorage
    artifacts: Path


@pytest.fixture(scope="session")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    """One finished synthetic campaign on a journal file, read (never written) by the tests that share it."""
    root = tmp_path_factory.mktemp("watch-campaign")
    storage = journal(root / "watch.journal")
    run_campaign(storage, root / "artifacts")
    return Campaign(root / "watch.journal", storage, root / "artifacts")

"""A worker on a journal file never loads SQLAlchemy (a third of a worker's start): PostgreSQL's store, its SQL
and its opening load with the first PostgreSQL storage only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.campaign.helpers import worker_env, write_plan

_RUN = """
import sys
from hpsearch.search.cli import main
code = main(["worker", "syn", "--storage", sys.argv[1], "--devices", "cpu", "--no-artifacts"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "psycopg2"))
print("exit", code, "loaded", loaded[:3])
"""


def test_a_journal_worker_runs_a_campaign_without_sqlalchemy(tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    plan = write_plan(tmp_path / "plan.yaml")
    init = subprocess.run([sys.executable, "-m", "hpsearch.search", "init", str(plan), "--storage", journal],
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    done = subprocess.run([sys.executable, "-c", _RUN, journal], capture_output=True, text=True, timeout=300,
                          env=worker_env(0.0))
    assert done.stdout.strip().splitlines()[-1] == "exit 0 loaded []", done.stdout[-2000:] + done.stderr[-2000:]

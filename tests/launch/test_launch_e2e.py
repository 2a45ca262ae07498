"""Each launcher's exact worker command line finishes a campaign against a real PostgreSQL.

The campaign carries the name the launch files use (`cifar10-resnet18`) but the synthetic objective, so the
command runs here in seconds; the storage URL reaches it through `$HPSEARCH_STORAGE`, as every launcher passes it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from tests.campaign.helpers import PLAN, check_campaign
from tests.launch.worker_argv import LAUNCHERS, STORAGE_ENV, worker_argv


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_the_launchers_worker_command_finishes_a_campaign(launcher: str, pg_url: str, tmp_path: Path) -> None:
    argv = worker_argv(launcher)
    assert argv[:2] == ["hpsearch", "worker"] and argv[2] == "cifar10-resnet18"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, "name": "cifar10-resnet18"}))
    assert main(["init", str(plan), "--storage", pg_url]) == 0
    env = {**os.environ, STORAGE_ENV: pg_url, "HPSEARCH_SYNTHETIC_SLEEP": "0"}
    # The same arguments through this interpreter's hpsearch (the image's entrypoint is `hpsearch`).
    done = subprocess.run([sys.executable, "-m", "hpsearch.search", *argv[1:]], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    check_campaign(pg_url, "cifar10-resnet18")

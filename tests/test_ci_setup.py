"""`.ci/setup` says one line when it works (what it set up and the next command) and shows pip's output only when
a step fails. Run on a copy of the script, with a stand-in for the virtual environment's python."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / ".ci" / "setup"

# Stands in for .venv/bin/python: pip prints a screenful of warnings and exits $PIP_RC; the version query answers.
STUB_PYTHON = """#!/bin/bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  for i in $(seq 122); do echo "WARNING: something pip says number $i" >&2; done
  exit "${PIP_RC:-0}"
fi
echo "hpsearch 0.1.0, torch 2.9.1"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / ".ci").mkdir()
    shutil.copy(SETUP, tmp_path / ".ci" / "setup")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _setup(checkout: Path, pip_rc: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(checkout / ".ci" / "setup")], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PIP_RC": str(pip_rc)})


def test_a_setup_that_works_says_one_line_with_the_next_command(checkout: Path) -> None:
    done = _setup(checkout, 0)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) == 1, lines[:5]
    assert "hpsearch 0.1.0, torch 2.9.1" in lines[0] and "next: .venv/bin/hpsearch run examples/demo.yaml" in lines[0]


def test_a_failing_step_shows_its_output(checkout: Path) -> None:
    done = _setup(checkout, 1)
    assert done.returncode != 0
    assert "number 122" in done.stderr and "setup failed while running" in done.stderr
    assert "next:" not in done.stdout

"""`pytest -m gpu` for bench/gpu_suite.py: the GPU-marked tests of tests/objectives, verbose with the slowest five,
under a limit inside the part's budget, so a run that runs out still says how far it got."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PYTEST_S = 130  # inside the pytest part's budget in gpu_suite.PARTS


def run_gpu_tests(root: Path, out: Callable[[dict[str, Any]], None]) -> None:
    """Run the GPU-marked test files of tests/objectives (they import nothing beyond torch and the project)."""
    files = sorted(str(p.relative_to(root)) for p in (root / "tests" / "objectives").glob("test_*.py")
                   if "mark.gpu" in p.read_text())
    command = [sys.executable, "-m", "pytest", "-v", "-m", "gpu", "-p", "no:cacheprovider", "--durations=5", *files]
    try:
        proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=PYTEST_S)
        stdout, code = proc.stdout, float(proc.returncode)
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        reached = [line for line in stdout.splitlines() if "::" in line][-1:] or ["before the first test ended"]
        stdout, code = stdout + f"\nstopped after {PYTEST_S} s; last: {reached[0]}", None
    lines = stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    sys.stdout.write(stdout[-3000:] + "\n")
    out({"measure": "pytest -m gpu (tests/objectives)", "value": code, "unit": "exit code",
         "note": "; ".join([summary, *failed])[:400]})

"""docker/slurm/hpsearch-worker.sbatch: clean shell, the right #SBATCH options, and SIGTERM handling
that gives the running trial back, checked by running the script against a stub `hpsearch`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from worker_argv import SBATCH_FILE

# Stands in for `hpsearch worker`: logs its argv and any SIGTERM, then exits 7 after a short
# hand-back delay, so the test can tell the worker's own status from the script's.
STUB_HPSEARCH = """#!/bin/bash
echo "argv $*" >> "$STUB_LOG"
trap 'echo TERM >> "$STUB_LOG"; sleep 0.2; exit 7' TERM
while :; do sleep 0.05; done
"""
STUB_SCONTROL = """#!/bin/bash
echo "scontrol $*" >> "$STUB_LOG"
"""


ARGV = "argv worker cifar10-resnet18 --devices all --wait-for-storage 300 --wait-for-campaign 600 --per-device 1"


def sbatch_options() -> dict[str, str]:
    options = {}
    for name, value in re.findall(r"^#SBATCH\s+--([\w-]+)(?:=(\S+))?", SBATCH_FILE.read_text(), re.M):
        options[name] = value
    return options


def test_script_parses():
    subprocess.run(["bash", "-n", str(SBATCH_FILE)], check=True, timeout=30)


def test_script_is_shellcheck_clean(tool):
    result = subprocess.run(
        [tool("shellcheck"), str(SBATCH_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_one_gpu_per_array_task_requeueable_with_an_early_signal():
    options = sbatch_options()
    assert options["gres"] == "gpu:1"
    assert re.fullmatch(r"\d+-\d+(%\d+)?", options["array"])
    assert "requeue" in options
    # B: signals the batch shell only, which passes SIGTERM on once; Slurm may send it up to a
    # minute late, so ask for more than that.
    target, seconds = re.fullmatch(r"(B:)?\w+@(\d+)", options["signal"]).groups()
    assert target == "B:"
    assert int(seconds) >= 90


def test_sbatch_directives_come_before_any_command():
    # sbatch stops reading #SBATCH lines at the first command.
    lines = SBATCH_FILE.read_text().splitlines()
    first_command = next(
        i for i, line in enumerate(lines[1:], 1) if line.strip() and not line.startswith("#")
    )
    assert all(not line.startswith("#SBATCH") for line in lines[first_command:])


@pytest.fixture
def stubbed(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in [("hpsearch", STUB_HPSEARCH), ("scontrol", STUB_SCONTROL)]:
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "data").mkdir()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(tmp_path / "log"),
        "HPSEARCH_STORAGE": "postgresql+psycopg2://hpsearch@db:5432/hpsearch",
        "HPSEARCH_DATA_DIR": str(tmp_path / "data"),
        "SLURM_JOB_ID": "4242",
    }


def run_and_signal(env: dict[str, str], signum: int) -> tuple[int, list[str]]:
    log = Path(env["STUB_LOG"])
    proc = subprocess.Popen(
        ["bash", str(SBATCH_FILE)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (log.exists() and "argv" in log.read_text()):
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.02)
        proc.send_signal(signum)
        status = proc.wait(timeout=10)
    finally:
        # Whatever happened, leave no stub running: the session holds the script and the stub.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return status, log.read_text().splitlines()


def test_time_limit_signal_stops_the_worker_gracefully_and_requeues(stubbed):
    status, log = run_and_signal(stubbed, signal.SIGUSR1)
    assert log == [ARGV, "TERM", "scontrol requeue 4242"]
    assert status == 7, "the script must wait for the worker and report the worker's own status"


def test_sigterm_is_passed_to_the_worker_without_requeueing(stubbed):
    status, log = run_and_signal(stubbed, signal.SIGTERM)
    assert log == [ARGV, "TERM"]
    assert status == 7


def test_requeue_can_be_turned_off(stubbed):
    _, log = run_and_signal({**stubbed, "HPSEARCH_REQUEUE": "0"}, signal.SIGUSR1)
    assert "scontrol requeue 4242" not in log


@pytest.mark.parametrize("missing", ["HPSEARCH_STORAGE", "HPSEARCH_DATA_DIR"])
def test_missing_setting_fails_at_once_with_its_name(stubbed, missing):
    env = {k: v for k, v in stubbed.items() if k != missing}
    result = subprocess.run(["bash", str(SBATCH_FILE)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert missing in result.stderr
    assert not Path(stubbed["STUB_LOG"]).exists(), "no worker may start without its settings"

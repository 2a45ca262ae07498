"""Inputs that once gave a traceback, a hang or a silent accept: each is now one line on stderr and exit code 2
within 20 s, from the real command in its own process, and the storage stays as it was."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hpsearch.search.cli import main
from hpsearch.storage import open_storage
from tests.campaign.helpers import PLAN

DEEP = 20_000


def _alias_bomb() -> str:
    """A plan whose overrides.classes is ten lines of YAML standing for 10^9 values."""
    chain = "[&a0 [0,1,2,3,4,5,6,7,8,9]" + "".join(
        f", &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)) + "]"
    text = yaml.safe_dump(PLAN, sort_keys=False)
    marker = "  overrides:\n    epochs: 3\n"
    assert marker in text
    return text.replace(marker, f"{marker}    classes: {chain}\n", 1)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hpsearch(args: list[str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "hpsearch.search", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=20, env={**os.environ, "HPSEARCH_STORAGE": ""})
    return done.returncode, done.stderr


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """A journal holding campaign `syn`, as init wrote it."""
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(PLAN))
    assert main(["init", str(tmp_path / "plan.yaml"), "--storage", str(tmp_path / "c.journal")]) == 0
    return tmp_path / "c.journal"


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return name


# case -> (what it writes in tmp_path and the argv, words the one line must hold)
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "a plan nesting 20,000 levels": (
        lambda t: ["init", _write(t, "deep.yaml", "name: syn\nspace: " + "[" * DEEP + "]" * DEEP + "\n"),
                   "--storage", "new.journal"], "deeper than"),
    "a plan path that is a FIFO": (
        lambda t: (os.mkfifo(t / "fifo.yaml"), ["init", "fifo.yaml", "--storage", "new.journal"])[1], "pipe"),
    "--storage journal:/dev/null": (
        lambda t: ["init", _write(t, "p.yaml", yaml.safe_dump(PLAN)), "--storage", "journal:/dev/null"],
        "not a regular file"),
    "--storage journal:/dev/full": (
        lambda t: ["init", _write(t, "p.yaml", yaml.safe_dump(PLAN)), "--storage", "journal:/dev/full"],
        "not a regular file"),
    "status on a file that is not a journal": (
        lambda t: ["status", "syn", "--storage", "plan.yaml"], "not an Optuna journal file"),
    "dashboard --artifacts /proc/x": (
        lambda t: ["dashboard", "--storage", "c.journal", "--artifacts", "/proc/x", "--port", "0"], "--artifacts"),
    "worker --checkpoint-interval nan": (
        lambda t: ["worker", "syn", "--storage", "c.journal", "--devices", "cpu", "--checkpoint-interval", "nan"],
        "finite"),
    "a seed of 10^30": (
        lambda t: ["init", _write(t, "p.yaml", yaml.safe_dump({**PLAN, "seed": 10**30})), "--storage", "new.journal"],
        "seed"),
    "an alias bomb in overrides.classes": (
        lambda t: ["init", _write(t, "bomb.yaml", _alias_bomb()), "--storage", "new.journal"], "aliases"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_one_line_and_exit_2(case: str, campaign: Path, tmp_path: Path) -> None:
    build, words = CASES[case]
    argv = build(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, err = _hpsearch(argv, tmp_path)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    assert words in err, err
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before, "the command changed or created files"


@pytest.mark.slow
def test_a_10000_character_campaign_name_leaves_postgresql_clean(pg_url: str, tmp_path: Path) -> None:
    plan = _write(tmp_path, "p.yaml", yaml.safe_dump(PLAN))
    code, err = _hpsearch(["init", plan, "--storage", pg_url, "--name", "c" * 10_000], tmp_path)
    assert code == 2 and err.count("\n") == 1 and len(err) < 300, err[:500]
    assert "at most 100" in err
    assert open_storage(pg_url).get_all_studies() == []


@pytest.mark.slow
def test_a_short_password_is_masked_in_its_url_not_in_every_word(tmp_path: Path) -> None:
    port = _closed_port()
    code, err = _hpsearch(["status", "syn", "--storage", f"postgresql+psycopg2://u:p@127.0.0.1:{port}/db"], tmp_path)
    assert code == 2 and err.count("\n") == 1, err
    assert "u:***@127.0.0.1" in err and f"port {port} failed" in err, err

"""What is tracked in git: no generated files, and no references to documents that are not in the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Spelt in pieces so that this file does not match itself.
DANGLING = ("PRACTICE" + ".md", "../" + "shared")
# What the project generates: curve images and other artifacts, journals, run and export folders, data.
GENERATED = re.compile(r"^(artifacts|runs|out|data)/|\.journal((\.append|\.enqueue)?\.lock)?$|^(?!docs/).*\.png$|\.pt$")


def tracked_files() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    if result.returncode != 0:
        pytest.skip("not a git checkout")  # an unpacked sdist, say; CI always runs in a clone
    return [name for name in result.stdout.decode().split("\0") if name]


def test_no_generated_file_is_tracked() -> None:
    generated = [name for name in tracked_files() if GENERATED.search(name)]
    assert not generated, (f"generated files are tracked: {generated[:10]} ({len(generated)} in all); "
                           "'git rm --cached' them and extend .gitignore")


SAMPLES = ("artifacts/watch.coarse/3/curves.png", "hpsearch.journal", "x/c.journal.lock",
           "hpsearch.journal.append.lock", "hpsearch.journal.enqueue.lock", "runs/a/metrics.json",
           "out/rank-1.yaml", "data/cifar-10-batches-py/data_batch_1", "bench/curves.png",
           "export/rank-1.seed-0.pt", "checkpoint-seed0.pt")


def test_the_pattern_catches_what_the_project_generates() -> None:
    for name in SAMPLES:
        assert GENERATED.search(name), name
    for name in ("docs/trial-path.png", "examples/demo.yaml", "search/watch/report_plots.py",
                 "tests/watch/test_report.py"):
        assert not GENERATED.search(name), name


def test_no_tracked_file_refers_to_a_document_outside_the_repository() -> None:
    found = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree but not yet in the index
        text = path.read_bytes().decode("utf-8", errors="replace")
        found += [f"{name}: {needle}" for needle in DANGLING if needle in text]
    assert not found, f"references to documents that are not in the repository: {found}"


def test_docs_named_in_the_project_exist() -> None:
    for name in tracked_files():
        if name.endswith((".py", ".yaml", ".md")) and (ROOT / name).is_file():
            for doc in re.findall(r"\bdocs/[\w.-]+\.md\b", (ROOT / name).read_text(errors="replace")):
                assert (ROOT / doc).is_file(), f"{name} refers to {doc}, which does not exist"


def test_git_ignores_what_the_project_generates() -> None:
    tracked_files()  # skips where git or the checkout is missing
    result = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *SAMPLES],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    missing = [line.split("\t")[-1] for line in result.stdout.splitlines() if line.startswith("::")]
    assert not missing, f"not ignored by .gitignore: {missing}"


def test_every_package_folder_is_installed() -> None:
    """A sub-package missing from pyproject's list works in the editable install the tests use and is absent
    from the wheel the Docker image installs: every folder with an __init__.py must be listed."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    found = {"hpsearch." + ".".join(init.parent.relative_to(ROOT).parts)
             for top in ("objectives", "search", "storage") for init in (ROOT / top).rglob("__init__.py")}
    assert found == listed, f"pyproject.toml [tool.setuptools] packages: add {sorted(found - listed)}"

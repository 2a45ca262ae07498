"""The `hpsearch` click group; each command module adds its commands to it, and `cli.main` runs it."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hpsearch")
def app() -> None:
    """Coarse-to-fine hyperparameter search on Optuna: ResNet-18 on CIFAR-10, or your own objective."""


def invoked_as() -> str:
    """The command the user typed to run hpsearch, so a printed command works when pasted as printed:
    `hpsearch` when that is the one on PATH, else the script's path as given (`.venv/bin/hpsearch`)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "hpsearch":
        found = shutil.which("hpsearch")
        if found is None or Path(found).resolve() != Path(argv0).resolve():
            return shlex.quote(argv0)
    return "hpsearch"

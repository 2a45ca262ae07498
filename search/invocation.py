"""How the user ran hpsearch, for commands printed to be pasted back."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path


def invoked_as() -> str:
    """The command the user typed to run hpsearch, so a printed command works when pasted as printed:
    `hpsearch` when that is the one on PATH, else the script's path as given (`.venv/bin/hpsearch`)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "hpsearch":
        found = shutil.which("hpsearch")
        if found is None or Path(found).resolve() != Path(argv0).resolve():
            return shlex.quote(argv0)
    return "hpsearch"

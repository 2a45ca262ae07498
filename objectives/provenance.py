"""What a result depends on besides its config: code, data and library versions."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Any

from hpsearch.objectives.data import data_hash


@functools.lru_cache(maxsize=1)
def code_revision() -> str | None:
    """The git commit of the installed source tree, when it is a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def collect(data_root: str | Path | None, seeds: list[int] | None = None) -> dict[str, Any]:
    """hpsearch version, code revision, data content hash, torch / CUDA versions, seeds."""
    torch = sys.modules.get("torch")  # versions without importing torch where nothing trains
    return {
        "hpsearch": _version("hpsearch"),
        "revision": code_revision(),
        "data_hash": _cached_hash(str(data_root)) if data_root is not None else None,
        "torch": _version("torch"),
        "cuda": torch.version.cuda if torch is not None else None,
        "seeds": seeds,
    }


@functools.cache
def _version(package: str) -> str:
    return importlib.metadata.version(package)  # parses the package's metadata file: once per process


@functools.lru_cache(maxsize=4)
def _cached_hash(root: str) -> str:
    return data_hash(root)


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable lines for every recorded item that differs now (seeds excluded)."""
    out = []
    for key in ("hpsearch", "revision", "data_hash", "torch"):
        if key in recorded and recorded[key] is not None and recorded[key] != current.get(key):
            out.append(f"{key}: recorded {recorded[key]}, now {current.get(key)}")
    return out

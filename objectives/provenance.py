"""What a result depends on besides its config: code, data and library versions."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

import torch
from hpsearch.objectives.data import data_hash


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
    return {
        "hpsearch": importlib.metadata.version("hpsearch"),
        "revision": code_revision(),
        "data_hash": data_hash(data_root) if data_root is not None else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "seeds": seeds,
    }


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable lines for every recorded item that differs now (seeds excluded)."""
    out = []
    for key in ("hpsearch", "revision", "data_hash", "torch", "cuda"):
        if key in recorded and recorded[key] is not None and recorded[key] != current.get(key):
            out.append(f"{key}: recorded {recorded[key]}, now {current.get(key)}")
    return out

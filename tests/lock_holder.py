"""A process that takes a journal lock and stops itself, as a writer paused (SIGSTOP, Ctrl-Z) inside a write."""

from __future__ import annotations

import subprocess
import sys

HOLDER = """
import os, signal, sys
from hpsearch.storage.journal_lock import acquire
acquire(sys.argv[1])
print("held", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
"""


def paused_holder(lock_path: str) -> subprocess.Popen:
    """Start it and return once it holds `lock_path`; SIGCONT lets it exit (and free the lock), as SIGKILL does."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, lock_path], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder

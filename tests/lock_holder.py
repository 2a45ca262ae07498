"""A process that takes a journal lock and stops itself, as a writer paused (SIGSTOP, Ctrl-Z) inside a write."""

from __future__ import annotations

import subprocess
import sys

HOLDER = """
import os, signal, sys
from hpsearch.storage.stores.journal_lock import JournalAppendLock, acquire
path, append = sys.argv[1], sys.argv[2] == "append"
lock = JournalAppendLock(path)
lock.acquire() if append else acquire(path)
print("held", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
if append:
    lock.release()
"""


def paused_holder(path: str, append: bool = False) -> subprocess.Popen:
    """Start it and return once it holds the lock: `path`'s own flock, or with `append` the append lock of
    journal `path`, as a worker takes it. SIGCONT lets it release the lock and exit; SIGKILL frees it too."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path, "append" if append else "file"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder

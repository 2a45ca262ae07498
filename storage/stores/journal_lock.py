"""Locks beside a journal file, as kernel `flock`s: held until released or until the holder dies, never broken.

Optuna's journal file serializes appends with a symlink lock that any waiter removes after 30 s without a
release (`JournalFileSymlinkLock`'s grace period), to survive a holder that crashed. A holder that is only
paused (SIGSTOP, Ctrl-Z, a debugger, a host under memory pressure) is alive, though: when it resumes it
writes inside a lock another process now holds, and a release fails with "did not possess lock", which
could end a worker with exit code 1. An `flock` needs no grace period: the kernel drops it when its holder
dies, so a crash frees it at once, and a paused holder keeps it until it resumes, while the others wait, as
they do on any file database. `open_storage` gives every journal it opens `JournalAppendLock`, which also
tells the stale-trial check when nobody could append (`stalls`); the enqueue lock of `storage/stores/enqueue.py`
is the same kind of lock, on its own file.

Optuna's own tools (the stock `optuna-dashboard` command on a journal) still take the symlink lock; their
appends and hpsearch's are each one `O_APPEND` write, which a local file system does not interleave.
`hpsearch dashboard` opens the journal through `open_storage`, so it takes the same lock as the workers.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator

from optuna.exceptions import StorageInternalError
from optuna.storages.journal import JournalFileBackend

from hpsearch.storage.errors import StorageFull
from hpsearch.storage.optuna_internals import BaseJournalFileLock

logger = logging.getLogger("hpsearch.storage")

WARN_AFTER_S = 30.0  # a wait this long means the holder is paused or hung: say which process it is
LONG_WAIT_S = 1.0  # appends hold the lock for milliseconds: a longer hold or wait is a holder paused or hung
KEPT_STALLS = 16  # the stalls remembered: far more than fit in a grace period


def _holder(path: str) -> str:
    """Who holds the `flock` of `path`, by the kernel's table of locks (Linux), for a waiter's message."""
    try:
        inode = os.stat(path).st_ino
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"
                if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
                    return f"process {fields[4]}"
    except (OSError, IndexError, ValueError):
        pass
    return "another process"


def _warn_waiting(path: str, waited: float) -> None:
    holder = _holder(path)
    logger.warning("waited %.0f s for %s, which %s holds; a paused process (SIGSTOP, Ctrl-Z) keeps it until it "
                   "resumes (kill -CONT)", waited, path, holder)


def acquire(path: str, give_up_after: float | None = None, warn_after: float = WARN_AFTER_S) -> int:
    """Take the exclusive `flock` of `path` (created if missing) and return its descriptor; `release` frees it.

    Waits as long as the holder lives, with one warning naming it after `warn_after` seconds; with
    `give_up_after`, raises StorageInternalError naming it (transient: the worker waits and tries again)
    once it has waited that long.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _wait(fd, path, give_up_after, warn_after)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _wait(fd: int, path: str, give_up_after: float | None, warn_after: float) -> None:
    start = time.monotonic()
    if give_up_after is None:  # a blocking wait wakes the moment the holder releases; a timer warns
        timer = threading.Timer(warn_after, _warn_waiting, (path, warn_after))
        timer.daemon = True
        timer.start()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            timer.cancel()
        return
    while True:
        time.sleep(0.01)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() - start > give_up_after:
                raise StorageInternalError(f"{_holder(path)} has held {path} for {give_up_after:.0f} s") from None


def release(fd: int) -> None:
    os.close(fd)  # closing the descriptor drops its lock


@contextlib.contextmanager
def flocked(path: str, give_up_after: float | None = None) -> Iterator[None]:
    """Hold the exclusive `flock` of `path` for the block (see `acquire`)."""
    fd = acquire(path, give_up_after)
    try:
        yield
    finally:
        release(fd)


class JournalAppendLock(BaseJournalFileLock):
    """The lock `JournalFileBackend` takes around each append: an `flock` on `<journal>.append.lock`.

    Each `acquire` opens the file anew, and two descriptors' `flock`s exclude each other even within one
    process, so threads sharing the backend are serialized too; `_fd` is set only once the lock is held.

    While one process holds it, nobody can append, a heartbeat included. A holder that held it longer than
    LONG_WAIT_S (paused inside a write) writes that span into the lock file before releasing it, and each
    process remembers its own long waits; `stalls` returns both, so that the stale-trial check does not
    count them as a worker's silence.
    """

    def __init__(self, journal_path: str) -> None:
        self.journal_path = journal_path
        self.path = f"{journal_path}.append.lock"
        self._fd: int | None = None
        self._held_since = 0.0
        self._waits: collections.deque[tuple[float, float]] = collections.deque(maxlen=KEPT_STALLS)
        self._waits_lock = threading.Lock()

    def acquire(self) -> bool:
        start = time.time()
        fd = acquire(self.path)
        self._held_since = time.time()
        if self._held_since - start > LONG_WAIT_S:
            with self._waits_lock:
                self._waits.append((start, self._held_since))
        try:
            cut_torn_tail(self.journal_path)
        except BaseException:
            release(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            end = time.time()
            if end - self._held_since > LONG_WAIT_S:
                _record_hold(fd, self.path, self._held_since, end)
        finally:
            release(fd)

    def stalls(self) -> list[tuple[float, float]]:
        """Spans (wall clock) in which nobody could append: the long holds recorded in the lock file and this
        process's own long waits. Read under the lock, so a stall still going on is waited out first."""
        fd = acquire(self.path)
        try:
            holds = _read_holds(fd)
        finally:
            release(fd)
        with self._waits_lock:
            return holds + list(self._waits)


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, past the file-size limit


class JournalFile(JournalFileBackend):
    """Optuna's journal file under `JournalAppendLock`, where an append that does not fit (a full disk, a quota,
    a file-size limit) cuts off what it wrote of its record and raises StorageFull, one line that says so, instead
    of an OSError that reads as a passing outage (a worker would wait for space for ever)."""

    def __init__(self, lock: JournalAppendLock) -> None:
        super().__init__(lock.journal_path, lock_obj=lock)
        self.append_lock = lock

    def append_logs(self, logs: list[dict[str, object]]) -> None:
        try:
            super().append_logs(logs)
        except OSError as exc:
            if exc.errno not in FULL:
                raise
            self.append_lock.acquire()  # which cuts the torn record off (truncating needs no space)
            self.append_lock.release()
            path = self.append_lock.journal_path
            raise StorageFull(f"the disk holding journal {path!r} is full ({exc.strerror}): free space there or move "
                              "the journal, then start the workers again; the journal reads as before") from None


def cut_torn_tail(journal_path: str) -> int:
    """Cut a last line the journal's writer did not finish (it died, or the disk filled, mid-append); call under
    the append lock. Returns the bytes cut. Optuna skips such a line when it reads, but the next append would
    glue its record onto it and leave a line that no reader can parse, for good."""
    try:
        fd = os.open(journal_path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return 0
        end = size  # find the last newline, a block at a time from the end
        while end > 0:
            start = max(0, end - TAIL_BLOCK)
            found = os.pread(fd, end - start, start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
            end = start
        else:
            keep = 0
        os.ftruncate(fd, keep)
        os.fsync(fd)
    finally:
        os.close(fd)
    logger.warning("journal %s ended in a record cut short (%d bytes: a writer died or the disk filled mid-write); "
                   "removed it", journal_path, size - keep)
    return size - keep


TAIL_BLOCK = 1 << 16


def _read_holds(fd: int) -> list[tuple[float, float]]:
    holds = []
    for line in os.pread(fd, 1 << 16, 0).decode(errors="replace").splitlines():
        try:
            start, end = (float(x) for x in line.split())
        except ValueError:
            continue  # not a span: the file is only ours by convention
        holds.append((start, end))
    return holds


def _record_hold(fd: int, path: str, start: float, end: float) -> None:
    """Add a span to the lock file's last KEPT_STALLS, under the lock `fd` holds. Best effort: a full disk
    loses the record (the stale-trial check then counts the stall), never the release."""
    try:
        holds = [*_read_holds(fd), (start, end)][-KEPT_STALLS:]
        os.ftruncate(fd, 0)
        os.pwrite(fd, "".join(f"{a:.3f} {b:.3f}\n" for a, b in holds).encode(), 0)
    except OSError:
        logger.warning("could not record in %s that it was held for %.0f s", path, end - start)


def unwritable_between(stalls: list[tuple[float, float]], since: float, until: float) -> float:
    """Seconds of [since, until] covered by `stalls`; overlapping spans count once."""
    total, covered = 0.0, since
    for start, end in sorted(stalls):
        start, end = max(start, covered), min(end, until)
        if end > start:
            total += end - start
            covered = end
    return total

"""The journal's locks are kernel flocks: a paused holder keeps its lock, a dead one frees it at once."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import StorageInternalError

from hpsearch.storage import open_storage
from hpsearch.storage.stores.journal_lock import JournalAppendLock, acquire, flocked, release, unwritable_between
from tests.lock_holder import paused_holder


def _acquire_in_thread(path: str, **kwargs: float) -> tuple[threading.Thread, list[int]]:
    got: list[int] = []
    thread = threading.Thread(target=lambda: got.append(acquire(path, **kwargs)), daemon=True)
    thread.start()
    return thread, got


def test_appends_to_a_journal_wait_for_its_append_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "c.journal")
    storage = open_storage(path, create=True)
    done = threading.Event()
    with flocked(f"{path}.append.lock"):
        threading.Thread(target=lambda: (optuna.create_study(storage=storage, study_name="s"), done.set()),
                         daemon=True).start()
        assert not done.wait(0.5), "the append did not wait for the lock"
    assert done.wait(10)
    assert storage.get_study_id_from_name("s") >= 0


@pytest.mark.parametrize("end", ["resumed", "killed"])
def test_a_paused_holder_keeps_the_lock_until_it_resumes_or_dies(end: str, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = str(tmp_path / "c.journal.append.lock")
    holder = paused_holder(path)
    try:
        with caplog.at_level(logging.WARNING, logger="hpsearch.storage"):
            thread, got = _acquire_in_thread(path, warn_after=0.3)
            deadline = time.monotonic() + 30  # the warning comes after 0.3 s, later on a loaded machine
            while "kill -CONT" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not got, "a waiter took the lock of a live holder"
            assert f"which process {holder.pid} holds" in caplog.text and "kill -CONT" in caplog.text
            os.kill(holder.pid, signal.SIGCONT if end == "resumed" else signal.SIGKILL)
            thread.join(60)  # the resumed holder exits, and its lock goes with it, as a dead one's does
            assert got
    finally:
        holder.kill()
        holder.wait()
    release(got[0])


def test_a_bounded_wait_gives_up_with_a_transient_error(tmp_path: Path) -> None:
    path = str(tmp_path / "c.journal.enqueue.lock")
    holder = paused_holder(path)
    try:  # it raises, rather than waiting for the holder (which never lets go): no clock to read
        with pytest.raises(StorageInternalError, match=f"process {holder.pid} has held"):
            acquire(path, give_up_after=0.3)
    finally:
        holder.kill()
        holder.wait()


def test_a_long_hold_is_recorded_for_every_process_and_a_long_wait_for_the_waiter(tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    holder = paused_holder(journal, append=True)
    start = time.time()
    threading.Timer(1.5, holder.send_signal, (signal.SIGCONT,)).start()
    waiter = JournalAppendLock(journal)
    waiter.acquire()  # waits for the holder, which records its hold on release
    waiter.release()
    assert holder.wait() == 0
    [hold] = JournalAppendLock(journal).stalls()  # another process's view: the hold alone
    [wait] = [s for s in waiter.stalls() if s != hold]  # the waiter's view: the hold and its own wait
    # At least the 1.5 s pause, at most the time the test has taken: no window a loaded machine could miss.
    elapsed = time.time() - start
    assert 1.2 < hold[1] - hold[0] <= elapsed and 1.2 < wait[1] - wait[0] <= elapsed
    assert 1.2 < unwritable_between([hold, wait], start - 60, time.time()) <= elapsed  # overlapping: counted once
    waiter.acquire()  # uncontended and short: nothing more to remember
    waiter.release()
    assert len(waiter.stalls()) == 2


@pytest.mark.parametrize(("stalls", "since", "until", "expected"), [
    ([], 0.0, 10.0, 0.0),
    ([(2.0, 4.0)], 0.0, 10.0, 2.0),
    ([(2.0, 4.0)], 3.0, 10.0, 1.0),  # clipped to the window
    ([(2.0, 4.0)], 5.0, 10.0, 0.0),  # before it
    ([(2.0, 4.0), (3.0, 6.0), (3.5, 5.0)], 0.0, 10.0, 4.0),  # overlapping: once
    ([(8.0, 12.0), (1.0, 2.0)], 0.0, 10.0, 3.0),  # unsorted, one running past the window
])
def test_unwritable_time_is_the_union_of_the_stalls_within_the_window(
        stalls: list[tuple[float, float]], since: float, until: float, expected: float) -> None:
    assert unwritable_between(stalls, since, until) == pytest.approx(expected)

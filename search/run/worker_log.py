"""What a worker says while the storage is away, and where its lines go under `hpsearch run`.

A database restart used to cost a worker a line per retry and per missed heartbeat, each with a driver
dump; an outage is now one line when it starts and one when it ends. Under `hpsearch run` the workers'
records travel to the parent through a queue, which writes them to a log file and shows the warnings
above its progress bars instead of through them.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from hpsearch.storage import describe_error
from hpsearch.storage.urls import redact_url

log = logging.getLogger("hpsearch.search.run.worker")


class Outage:
    """One line when the storage stops answering, one when it answers again; nothing in between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def failed(self, exc: BaseException | str) -> None:
        """The storage failed an operation; says so unless an outage is already under way."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = exc if isinstance(exc, str) else describe_error(exc)
        log.warning("storage unreachable (%s); waiting for it", redact_url(reason))

    def ok(self) -> None:
        """An operation succeeded; ends the outage, if there was one, with its length."""
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("storage reachable again after %.0f s", time.monotonic() - since)


class HeartbeatOutage(logging.Filter):
    """Folds the heartbeat thread's failure warnings into the worker's outage lines."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self._outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("heartbeat of trial") and " failed, retrying" in message:
            self._outage.failed(message.split(": ", 1)[-1])
            return False
        return True


class StorageTracebacks(logging.Filter):
    """A storage error logged with its traceback by code that carries on (a note that could not be written)
    becomes one INFO line, and part of the outage."""

    def __init__(self, outage: Outage, errors: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self._outage, self._errors = outage, errors

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, self._errors):
            self._outage.failed(exc)
            record.msg, record.args = f"{record.getMessage()} ({redact_url(describe_error(exc))})", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # of every worker log line, on stderr and in `hpsearch run`'s workers.log

# Where the worker's own code logs storage errors with a traceback and carries on.
_CARRY_ON_LOGGERS = ("hpsearch.search.run.trial_runner", "hpsearch.search.run.worker", "hpsearch.search.run.campaign")


@contextlib.contextmanager
def quiet_outages(outage: Outage, errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Fold heartbeat failures and storage tracebacks into `outage`'s two lines while the worker runs."""
    installed = [(logging.getLogger("hpsearch.storage.stores.heartbeat"), HeartbeatOutage(outage))]
    installed += [(logging.getLogger(name), StorageTracebacks(outage, errors)) for name in _CARRY_ON_LOGGERS]
    for logger, quiet in installed:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger, quiet in installed:
            logger.removeFilter(quiet)


def configure(level: int, queue: Any | None) -> None:
    """The worker process's logging: stderr with time and pid, or the parent's queue under `hpsearch run`."""
    if queue is None:  # the format of `hpsearch run`'s workers.log lines, so both read alike
        logging.basicConfig(level=level, format="%(asctime)s worker %(process)d %(levelname)s %(message)s",
                            datefmt=TIME_FORMAT, force=True)
        return
    handler = logging.handlers.QueueHandler(queue)
    handler.setFormatter(logging.Formatter("%(message)s"))  # the parent adds the time and the worker
    logging.basicConfig(level=level, handlers=[handler], force=True)


class LogRelay:
    """The parent's end of the workers' queue: every line to `path`, warnings above the bars, and the last
    error of each worker kept to say why it failed. An error with a traceback is shown in full the first time
    its exception is seen; later ones of the same kind are one line with a count."""

    def __init__(self, queue: Any, path: os.PathLike[str] | str, show: Any) -> None:
        self._queue, self._show = queue, show
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.last_error: dict[int, str] = {}
        self.errors_seen: dict[str, int] = {}  # an exception's last line -> how often

    def drain(self) -> None:
        """Handle every record waiting in the queue; never blocks."""
        import queue as queue_module

        while True:
            try:
                record = self._queue.get_nowait()
            except (queue_module.Empty, OSError, ValueError):
                break
            stamp = time.strftime(TIME_FORMAT, time.localtime(record.created))
            message = record.getMessage()
            self._file.write(f"{stamp} worker {record.process} {record.levelname} {message}\n")
            lines = message.splitlines() or [""]
            first = lines[0]
            if record.levelno >= logging.ERROR and len(lines) > 1:  # a traceback: its kind is its last line
                kind = lines[-1]
                self.errors_seen[kind] = self.errors_seen.get(kind, 0) + 1
                if self.errors_seen[kind] == 1:
                    self._show(f"worker {record.process}: {message}")
                else:
                    self._show(f"worker {record.process}: {first} (seen {self.errors_seen[kind]} times; the first "
                               "is shown in full above)")
            elif record.levelno >= logging.WARNING:
                self._show(f"worker {record.process}: {first}")
            if record.levelno >= logging.ERROR:
                self.last_error[record.process] = first
        self._file.flush()

    def close(self) -> None:
        self.drain()
        self._file.close()

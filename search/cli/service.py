"""Long-running serving commands (`dashboard`, `storage-proxy`) end well when asked to stop."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

import click


class _Stopped(Exception):
    """SIGTERM arrived while a serving command waited."""


@contextlib.contextmanager
def until_sigterm(what: str, stop: Callable[[], None] | None = None) -> Iterator[None]:
    """Serve in the block until SIGTERM, which ends it like a normal exit (status 0): `docker stop`, a rolling
    update or a scale-down asks a service to stop, which is no failure for a launcher to report or retry.

    `stop` ends a serving loop that runs in this thread (say `server.shutdown`), which then returns by itself;
    without it the signal interrupts the block, which must only wait while other threads serve requests.
    """
    received = threading.Event()

    def on_sigterm(_signum: int, _frame: object) -> None:
        received.set()
        if stop is None:
            raise _Stopped
        # Raising here could land inside a request's handling, which swallows it; and shutdown() waits for the
        # loop to end, so it must not run in the loop's own thread.
        threading.Thread(target=stop, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received.is_set():
        click.echo(f"{what} stopped (SIGTERM)")

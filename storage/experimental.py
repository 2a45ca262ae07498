"""Silence Optuna's ExperimentalWarning around the experimental features hpsearch relies on by design."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from optuna.exceptions import ExperimentalWarning

# `warnings.catch_warnings` swaps a process-wide filter list; two threads inside it at once can
# restore each other's filters. The lock keeps hpsearch's own callers from interleaving.
_LOCK = threading.Lock()


@contextmanager
def using_experimental_optuna() -> Iterator[None]:
    """Run the block without Optuna's ExperimentalWarning: hpsearch uses those features on purpose."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield

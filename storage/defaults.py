"""Heartbeat timing and connect timeout: the one home of their defaults, read by the storage, the worker and the
commands."""

from __future__ import annotations

# A dead worker's trial is retried about DEFAULT_GRACE_PERIOD + DEFAULT_HEARTBEAT_INTERVAL after its last beat,
# and at the end of a stage the rest of the fleet waits that long for it. A shorter grace period fails live
# trials during a longer outage or pause (their workers then drop them and a retry trains them again); a
# shorter interval costs one write per running trial per interval. 20 s rides out a database restart.
DEFAULT_HEARTBEAT_INTERVAL = 5  # seconds
CONNECT_TIMEOUT = 10  # seconds; long enough for a busy server, short enough for the CLI to fail fast


def default_grace_period(heartbeat_interval: int) -> int:
    """Seconds without a heartbeat before a RUNNING trial counts as dead: four heartbeat intervals."""
    # Optuna's default is 2x. A false positive is costly (a live trial is failed, retrained elsewhere
    # and its result rejected) while a late detection only delays one retry, so tolerate three
    # missed beats: a slow reconnect, a GC pause or a GIL-heavy epoch must not kill a trial.
    return 4 * heartbeat_interval


DEFAULT_GRACE_PERIOD = default_grace_period(DEFAULT_HEARTBEAT_INTERVAL)  # seconds

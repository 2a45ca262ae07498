"""A storage outage in a worker's log: one line when it starts, one when it ends, no tracebacks."""

import logging

import pytest
import sqlalchemy.exc
from optuna.exceptions import StorageInternalError

from hpsearch.search.run.worker_log import Outage, quiet_outages
from hpsearch.storage.stores import PostgresStore


def _outage_error() -> StorageInternalError:
    try:
        try:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        except sqlalchemy.exc.OperationalError as e:
            raise StorageInternalError("An exception is raised during the commit ... exceeding max length") from e
    except StorageInternalError as e:
        return e


def test_an_outage_is_two_lines_whatever_fails_during_it(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage()
    with caplog.at_level(logging.INFO), quiet_outages(outage, PostgresStore.transient):
        for _ in range(3):  # the main loop, the heartbeat thread, a note that could not be written
            outage.failed(_outage_error())
            logging.getLogger("hpsearch.storage.stores.heartbeat").warning(
                "heartbeat of trial 3 failed, retrying in 1.0 s: OperationalError: server closed the connection")
            try:
                raise _outage_error()
            except StorageInternalError:
                logging.getLogger("hpsearch.search.run.trial_runner").exception("could not write the note of trial 3")
        outage.ok()
        outage.ok()
    text = caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2 and "storage unreachable" in warnings[0] and "reachable again" in warnings[1]
    assert "Traceback" not in text and "exceeding max length" not in text and "heartbeat of trial" not in text

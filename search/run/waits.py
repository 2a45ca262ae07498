"""A worker that starts before its database answers or before `init` wrote its campaign waits, for a bounded time."""

from __future__ import annotations

import logging

from hpsearch.search.errors import CampaignMissing
from hpsearch.search.plan.plan import Plan
from hpsearch.search.run.campaign import load_stored_plan
from hpsearch.storage import open_storage_waiting
from hpsearch.storage.reachable import keep_trying
from hpsearch.storage.stores import store_for

log = logging.getLogger(__name__)

CAMPAIGN_POLL_S = 2.0  # one cheap read of the study list per poll


def stored_plan(storage: str | None, name: str, *, storage_wait: float, campaign_wait: float) -> Plan:
    """The plan `init` stored for campaign `name`: waits up to `storage_wait` s for the storage to answer, then
    up to `campaign_wait` s for the campaign to appear. A bad URL or password fails at once, as does the wait
    that runs out (one line, exit 2)."""
    store = open_storage_waiting(storage, storage_wait, create=False)

    def waiting() -> None:
        log.warning("no campaign %r in the storage yet; waiting up to %g s for 'hpsearch init'", name, campaign_wait)

    try:
        return keep_trying(lambda: load_stored_plan(store, name), CampaignMissing, campaign_wait, waiting=waiting,
                           waited=f"after waiting {campaign_wait:g} s for it", pause=lambda _: CAMPAIGN_POLL_S)
    finally:
        store_for(store).release()  # the workers open their own: one PostgreSQL connection per worker process

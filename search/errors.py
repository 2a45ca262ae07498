"""The search package's errors: bad input to a campaign (a plan, a command-line option)."""

from __future__ import annotations

from hpsearch.objectives.errors import ObjectiveError
from hpsearch.storage.errors import StorageError


class SearchError(Exception):
    """Bad input to the search: the message says what is wrong and how to fix it, on one line.

    The root of this package's errors; the CLI prints it as one line and exits 2.
    """


class PlanError(SearchError):
    """A plan, space, sampler or pruner spec is invalid; the message names the key path and the fix."""


class CampaignMissing(PlanError):
    """The storage holds no campaign of that name (yet: `init` may still be on its way)."""


class OptionError(SearchError):
    """A command-line option's value cannot work on this machine (an address, a port, a device)."""


# Each package's root of bad-input errors: the CLI turns these, and only these, into one line and exit 2.
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (ObjectiveError, SearchError, StorageError)

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


class CampaignFailed(Exception):
    """The campaign stopped because its objective keeps failing; not bad input: the CLI exits 1 with the reason."""

    def __init__(self, campaign: str, failure: dict) -> None:
        self.campaign, self.failure = campaign, failure
        super().__init__(describe_campaign_failure(campaign, failure))


def describe_campaign_failure(campaign: str, failure: dict) -> str:
    """One line: where the campaign stopped, the error's type and message, the objective's frame, what to do."""
    again = "run the plan again under a new campaign name (hpsearch init PLAN --name NEW, or a new name: in the plan)"
    if "type" not in failure:  # no trial raised: every one was pruned or diverged
        return (f"campaign {campaign} failed in stage {failure.get('stage', '?')}: {failure.get('why', '')}. Keep "
                f"the space clear of diverging settings (a lower LR bound) or let the pruner start later, then {again}")
    error = f"{failure['type']}: {failure.get('message', '')}".rstrip(": ")
    where = f" at {failure['where']}" if failure.get("where") else ""
    return (f"campaign {campaign} failed in stage {failure.get('stage', '?')}: {failure.get('why', '')}; "
            f"the error was {error}{where}. Fix the objective, then {again}")


# Each package's root of bad-input errors: the CLI turns these, and only these, into one line and exit 2.
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (ObjectiveError, SearchError, StorageError)

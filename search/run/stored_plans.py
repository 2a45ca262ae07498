"""The campaigns a storage holds: the plan each stored at `init`, and their names."""

from __future__ import annotations

from typing import Any

from optuna.storages import BaseStorage

from hpsearch.search.errors import CampaignMissing
from hpsearch.search.plan.plan import Plan

OBJECTIVE_PATH = "objective_path"  # the folder a user's objective module was found in at init
SHOWN_NAMES = 10  # in the error for a campaign that is not there; `hpsearch list` shows them all


def load_stored_plan(storage: BaseStorage, campaign: str) -> Plan:
    """The plan as stored by `init`; a campaign that is not there is bad input, answered with those that are."""
    summaries = storage.get_all_studies()
    for summary in summaries:
        if summary.study_name.startswith(f"{campaign}.") and "plan" in summary.user_attrs:
            found = summary.user_attrs.get(OBJECTIVE_PATH)  # where init found a user's module, on its machine
            plan = Plan.from_dict(summary.user_attrs["plan"], stored=True,
                                  search_path=(found,) if isinstance(found, str) else ())
            if plan.name == campaign:
                return plan
    shown = campaign if len(campaign) <= 100 else campaign[:100] + "..."
    names = _names_in(summaries)
    held = f" (it holds {_listed(names)}: see 'hpsearch list')" if names else ""
    raise CampaignMissing(f"no campaign {shown!r} in this storage{held}; run 'hpsearch init PLAN --storage S' first")


def the_campaign(storage: BaseStorage, name: str | None, command: str) -> str:
    """`name`, or the storage's only campaign when none is named; several, or none, are bad input."""
    if name is not None:
        return name
    names = campaign_names(storage)
    if len(names) == 1:
        return names[0]
    if not names:
        raise CampaignMissing("no campaigns in this storage; start one with 'hpsearch run PLAN' (or init PLAN), "
                              "or point --storage at the one that holds it")
    raise CampaignMissing(f"this storage holds {len(names)} campaigns ({_listed(names)}); "
                          f"name one: hpsearch {command} {names[0]}")


def campaign_names(storage: BaseStorage) -> list[str]:
    """The campaigns in the storage, sorted: the plan names `init` stored with their stages."""
    return _names_in(storage.get_all_studies())


def _listed(names: list[str]) -> str:
    """The first SHOWN_NAMES names, and how many more."""
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more


def _names_in(summaries: list[Any]) -> list[str]:
    names = set()
    for summary in summaries:
        plan = summary.user_attrs.get("plan")
        if isinstance(plan, dict) and isinstance(plan.get("name"), str) \
                and summary.study_name.startswith(f"{plan['name']}."):
            names.add(plan["name"])
    return sorted(names)

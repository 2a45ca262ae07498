"""Enqueue-once through a gRPC storage proxy: the check and the adds run on the proxy, in one transaction.

Optuna's gRPC protocol has no call that adds trials unless a twin exists; a client's check and then its adds
are two steps, and three workers opening a stage together each add all of its slots (the twins then retire
as FAIL trials when claimed). `hpsearch storage-proxy` therefore understands one more request, sent through
the protocol's own `create_new_trial`: a carrier template whose system attribute `ONCE` holds the templates to
add, the key they are unique by and the states that block a key. The proxy adds them with the PostgreSQL
enqueue (`add_trials_once`: the study's row lock, the check and a multi-row insert in one transaction) and
answers `-1 - <how many it added>` as the trial id; it never stores the carrier.
A client asks once whether its proxy understands this (`get_study_id_from_name(PROBE)` answers `PROBE_ID`
there, KeyError from Optuna's own proxy); with a plain Optuna proxy it checks and then adds, as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

ONCE = "hpsearch:enqueue-once"
PROBE = "hpsearch:enqueue-once?"  # a study name no campaign uses: `study.stage` names only
PROBE_ID = -7
CHUNK = 200  # templates per request: each chunk is atomic, and a key is never split across two

_UNDERSTOOD: weakref.WeakKeyDictionary[BaseStorage, bool] = weakref.WeakKeyDictionary()


def _encode(template: FrozenTrial) -> dict[str, Any]:
    params = {name: [template.distributions[name].to_internal_repr(value),
                     distribution_to_json(template.distributions[name])] for name, value in template.params.items()}
    return {"system_attrs": template.system_attrs, "user_attrs": template.user_attrs, "params": params}


def _decode(data: dict[str, Any]) -> FrozenTrial:
    distributions = {name: json_to_distribution(dist) for name, (_, dist) in data["params"].items()}
    params = {name: distributions[name].to_external_repr(internal) for name, (internal, _) in data["params"].items()}
    return optuna.trial.create_trial(state=TrialState.WAITING, params=params, distributions=distributions,
                                     system_attrs=data["system_attrs"], user_attrs=data["user_attrs"])


def understood(client: BaseStorage) -> bool:
    """Whether the proxy behind `client` adds trials once itself (asked once per client)."""
    known = _UNDERSTOOD.get(client)
    if known is None:
        try:
            known = client.get_study_id_from_name(PROBE) == PROBE_ID
        except KeyError:
            known = False
        _UNDERSTOOD[client] = known
    return known


def add_once_on_proxy(client: BaseStorage, study_id: int, trials: Sequence[FrozenTrial], key: str,
                      blocked_by: Sequence[TrialState]) -> int:
    """Ask the proxy to add each template of `trials` unless its `key` is taken; how many it added."""
    added = 0
    for start in range(0, len(trials), CHUNK):
        order = {"key": key, "blocked_by": [s.name for s in blocked_by],
                 "trials": [_encode(t) for t in trials[start:start + CHUNK]]}
        carrier = optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={ONCE: order})
        reply = client.create_new_trial(study_id, template_trial=carrier)
        if reply >= 0:  # the proxy stored the carrier as a trial: it is not the one that answered the probe
            raise RuntimeError("the storage proxy stopped understanding enqueue-once; restart the workers")
        added += -1 - reply
    return added


def serve_once(served: BaseStorage, add_once: Callable[..., int]) -> None:
    """Teach `served` (the storage the proxy serves) the probe and the carrier; `add_once(study_id, templates,
    key=, blocked_by=)` is the PostgreSQL enqueue-once."""
    create, find = served.create_new_trial, served.get_study_id_from_name

    def create_new_trial(study_id: int, template_trial: FrozenTrial | None = None) -> int:
        order = None if template_trial is None else template_trial.system_attrs.get(ONCE)
        if order is None:
            return create(study_id, template_trial)
        blocked = [TrialState[name] for name in order["blocked_by"]]
        added = add_once(study_id, [_decode(t) for t in order["trials"]], key=order["key"],
                                blocked_by=blocked)
        return -1 - added

    def get_study_id_from_name(study_name: str) -> int:
        return PROBE_ID if study_name == PROBE else find(study_name)

    # Instance attributes: the gRPC servicer calls these two on the storage it serves, and nothing else changes.
    served.create_new_trial = create_new_trial  # type: ignore[method-assign]
    served.get_study_id_from_name = get_study_id_from_name  # type: ignore[method-assign]

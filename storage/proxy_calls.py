"""Two calls `hpsearch storage-proxy` understands beyond Optuna's gRPC protocol: enqueue-once, and several
attributes in one write.

Enqueue-once: the check and the adds run on the proxy, in one transaction.

Optuna's gRPC protocol has no call that adds trials unless a twin exists; a client's check and then its adds
are two steps, and three workers opening a stage together each add all of its slots (the twins then retire
as FAIL trials when claimed). `hpsearch storage-proxy` therefore understands one more request, sent through
the protocol's own `create_new_trial`: a carrier template whose system attribute `ONCE` holds the templates to
add, the key they are unique by and the states that block a key. The proxy adds them with the PostgreSQL
enqueue (`add_trials_once`: the study's row lock, the check and a multi-row insert in one transaction) and
answers `-1 - <how many it added>` as the trial id; it never stores the carrier.
A client asks once whether its proxy understands this (`get_study_id_from_name(PROBE)` answers `PROBE_ID`
there, KeyError from Optuna's own proxy); with a plain Optuna proxy it checks and then adds, as before.

Several attributes in one write: the protocol writes one attribute per call, and a trial records about six
(worker, config, provenance at its start; cost and curve at its end) and its dashboard note two study attributes;
through one proxy serving a fleet, every call is a round trip and a turn of the proxy's Python threads. A client
sends them as one attribute `BATCH` whose value maps each key to its value (`set_trial_user_attr` for a trial's
user attributes, `set_study_system_attr` for a study's system attributes); the proxy writes them with the
PostgreSQL store's one-transaction upsert, in their order, and never stores `BATCH` itself. Its own probe,
`BATCH_PROBE`, answers `BATCH_PROBE_ID`: a proxy from before it answers KeyError, and the client writes one by one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

ONCE = "hpsearch:enqueue-once"
PROBE = "hpsearch:enqueue-once?"  # a study name no campaign uses: `study.stage` names only
PROBE_ID = -7
BATCH = "hpsearch:attrs"
BATCH_PROBE = "hpsearch:batched-writes?"
BATCH_PROBE_ID = -8
Writer = Callable[[int, Mapping[str, Any]], None]
CHUNK = 200  # templates per request: each chunk is atomic, and a key is never split across two

_UNDERSTOOD: weakref.WeakKeyDictionary[BaseStorage, bool] = weakref.WeakKeyDictionary()
_BATCHES: weakref.WeakKeyDictionary[BaseStorage, bool] = weakref.WeakKeyDictionary()


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
    return _asked(client, _UNDERSTOOD, PROBE, PROBE_ID)


def writes_batched(client: BaseStorage) -> bool:
    """Whether the proxy behind `client` writes several attributes in one call (asked once per client)."""
    return _asked(client, _BATCHES, BATCH_PROBE, BATCH_PROBE_ID)


def _asked(client: BaseStorage, answers: weakref.WeakKeyDictionary[BaseStorage, bool], probe: str,
           answer: int) -> bool:
    known = answers.get(client)
    if known is None:
        try:
            known = client.get_study_id_from_name(probe) == answer
        except KeyError:
            known = False
        answers[client] = known
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


def write_trial_on_proxy(client: BaseStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """The user attributes `attrs` of a trial, in one call to a proxy that `writes_batched`."""
    client.set_trial_user_attr(trial_id, BATCH, dict(attrs))


def write_study_on_proxy(client: BaseStorage, study_id: int, attrs: Mapping[str, Any]) -> None:
    """The system attributes `attrs` of a study, in their order and one call, to a proxy that `writes_batched`."""
    client.set_study_system_attr(study_id, BATCH, dict(attrs))


def serve_calls(served: BaseStorage, add_once: Callable[..., int], write_trial: Writer, write_study: Writer) -> None:
    """Teach `served` (the storage the proxy serves) the probes and the carriers: `add_once(study_id, templates,
    key=, blocked_by=)` is the PostgreSQL enqueue-once, `write_trial(trial_id, attrs)` and
    `write_study(study_id, attrs)` the PostgreSQL store's one-transaction writes of a trial's user attributes
    and a study's system attributes."""
    create, find = served.create_new_trial, served.get_study_id_from_name
    set_user, set_study_system = served.set_trial_user_attr, served.set_study_system_attr

    def create_new_trial(study_id: int, template_trial: FrozenTrial | None = None) -> int:
        order = None if template_trial is None else template_trial.system_attrs.get(ONCE)
        if order is None:
            return create(study_id, template_trial)
        blocked = [TrialState[name] for name in order["blocked_by"]]
        added = add_once(study_id, [_decode(t) for t in order["trials"]], key=order["key"],
                                blocked_by=blocked)
        return -1 - added

    def get_study_id_from_name(study_name: str) -> int:
        return {PROBE: PROBE_ID, BATCH_PROBE: BATCH_PROBE_ID}.get(study_name) or find(study_name)

    def set_trial_user_attr(trial_id: int, key: str, value: Any) -> None:
        if key == BATCH:
            write_trial(trial_id, value)
        else:
            set_user(trial_id, key, value)

    def set_study_system_attr(study_id: int, key: str, value: Any) -> None:
        if key == BATCH:
            write_study(study_id, value)
        else:
            set_study_system(study_id, key, value)

    # Instance attributes: the gRPC servicer calls these on the storage it serves, and nothing else changes.
    served.create_new_trial = create_new_trial  # type: ignore[method-assign]
    served.get_study_id_from_name = get_study_id_from_name  # type: ignore[method-assign]
    served.set_trial_user_attr = set_trial_user_attr  # type: ignore[method-assign]
    served.set_study_system_attr = set_study_system_attr  # type: ignore[method-assign]

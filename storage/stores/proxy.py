"""The store of a gRPC storage proxy client: claims from the list of waiting trials its last read saw
(`waiting.py`: each read through the proxy sends every unfinished trial); enqueue-once and several attributes in
one write run by the proxy itself (`proxy_calls.py`) where it is `hpsearch storage-proxy`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import optuna
from optuna.exceptions import StorageInternalError
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.proxy_calls import (
    add_once_on_proxy,
    understood,
    write_study_on_proxy,
    write_trial_on_proxy,
    writes_batched,
)
from hpsearch.storage.stores.base import Claimed, Snapshot, TrialStore
from hpsearch.storage.stores.waiting import claim_remembered


class ProxyStore(TrialStore):
    name = "storage proxy"
    transient = (StorageInternalError, grpc.RpcError)

    def claim(self, study: optuna.Study, snapshot: Snapshot, *, unique_key: str, retired_key: str,
              first_key: str) -> Claimed | None:
        waiting = claim_remembered(self.storage, internals.study_id(study), retired_key=retired_key)
        if waiting is not None:  # the claim recorded its first beat
            return Claimed(internals.trial_from_claimed_copy(study, waiting), True)
        return super().claim(study, snapshot, unique_key=unique_key, retired_key=retired_key, first_key=first_key)

    def write_by_id(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        if len(attrs) > 1 and writes_batched(self.storage):  # one call, one transaction on the proxy
            write_trial_on_proxy(self.storage, trial_id, attrs)
        else:
            super().write_by_id(trial_id, attrs)

    def write_study_system_by_id(self, study_id: int, attrs: Mapping[str, Any]) -> None:
        if len(attrs) > 1 and writes_batched(self.storage):
            write_study_on_proxy(self.storage, study_id, attrs)
        else:
            super().write_study_system_by_id(study_id, attrs)

    def enqueue_by_id(self, study_id: int, templates: Sequence[FrozenTrial], key: str,
                      blocked_by: Sequence[TrialState]) -> int:
        if understood(self.storage):
            return add_once_on_proxy(self.storage, study_id, templates, key, blocked_by)
        return super().enqueue_by_id(study_id, templates, key, blocked_by)  # Optuna's own proxy: twins retire at claim

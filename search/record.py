"""A trial's record: what the worker that ran it wrote on it, as one typed value.

In the storage the record is the trial's user attributes, under the keys below, written in two phases (the start:
worker, config and provenance; the end: history, outcome, cost and why it stopped). `TrialRecord.attrs` is the
one serialisation and `TrialRecord.of` the one reading: notes, status, export and report take the record, not
the raw attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from hpsearch.objectives.result import EpochRecord

_EPOCH_FIELDS = frozenset(f.name for f in dataclasses.fields(EpochRecord))


@dataclass
class TrialRecord:
    """One trial as its worker recorded it; every field is optional, since a trial may end at any phase."""

    worker: dict[str, Any] = field(default_factory=dict)  # host, device, pid
    config: dict[str, Any] | None = None  # the config it trained, as plain data (None: failed before one was built)
    provenance: dict[str, Any] = field(default_factory=dict)  # code version, data hash, seeds
    history: list[EpochRecord] = field(default_factory=list)
    status: str | None = None  # completed | stopped | diverged: how training ended
    seconds: float | None = None  # training time
    cost: dict[str, Any] | None = None  # what it consumed (search/run/cost.py `recorded`)
    pruned_reason: str | None = None  # why training stopped early (pruned, diverged)
    fail_reason: str | None = None  # why the trial failed (a crash, a stop, a config the space allowed)
    resumed_from_epoch: int | None = None  # epochs restored from its predecessor's checkpoint
    checkpoint_ignored: str | None = None  # why a checkpoint that was there was not used
    retry_of: dict[str, Any] | None = None  # {"trial": number, "reason": why} for a retry
    lr_range: tuple[float, float] | None = None  # an LR range test's result
    error: dict[str, Any] | None = None  # a failed trial's exception: {"type", "message", "where"}

    def attrs(self, *names: str) -> dict[str, Any]:
        """The user attributes of the fields `names` (every set field when none), in their stored form."""
        out: dict[str, Any] = {}
        for name in names or tuple(f.name for f in dataclasses.fields(self)):
            value = getattr(self, name)
            if name == "history":
                value = [r.to_dict() for r in value]
            elif name in ("status", "seconds"):
                continue
            elif name == "lr_range" and value is not None:
                value = list(value)
            if value is not None and value != {}:
                out[name] = value
        if "status" in names or "seconds" in names or not names:
            outcome = {k: v for k, v in (("status", self.status), ("seconds", self.seconds)) if v is not None}
            if outcome:
                out["outcome"] = outcome
        return out

    @classmethod
    def of(cls, trial: FrozenTrial | Any) -> TrialRecord:
        """The record of a stored (or running) trial."""
        return cls.from_attrs(trial.user_attrs)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """Read the record back; a malformed part (a campaign from another version, say) is left out, not fatal."""
        outcome = attrs.get("outcome") if isinstance(attrs.get("outcome"), Mapping) else {}
        history = [EpochRecord.from_dict(dict(r)) for r in attrs.get("history") or []
                   if isinstance(r, Mapping) and "epoch" in r and set(r) <= _EPOCH_FIELDS]
        lr_range = attrs.get("lr_range")
        return cls(
            worker=dict(attrs.get("worker") or {}),
            config=dict(attrs["config"]) if isinstance(attrs.get("config"), Mapping) else None,
            provenance=dict(attrs.get("provenance") or {}), history=history,
            status=outcome.get("status"), seconds=outcome.get("seconds"), cost=attrs.get("cost"),
            pruned_reason=attrs.get("pruned_reason"), fail_reason=attrs.get("fail_reason"),
            resumed_from_epoch=attrs.get("resumed_from_epoch"), checkpoint_ignored=attrs.get("checkpoint_ignored"),
            retry_of=attrs.get("retry_of"),
            error=attrs.get("error") if isinstance(attrs.get("error"), Mapping) else None,
            lr_range=(float(lr_range[0]), float(lr_range[1])) if isinstance(lr_range, list | tuple) else None,
        )


def found_lr_range(trials: list[FrozenTrial]) -> tuple[float, float] | None:
    """The LR range an lr_range_test stage found: its completed trial's record, or None while there is none."""
    for t in trials:
        if t.state == TrialState.COMPLETE:
            found = TrialRecord.of(t).lr_range
            if found is not None:
                return found
    return None

"""A campaign's stages: their kinds, one record type per kind with only the fields it uses, and the plan-file form
each writes. `search/plan/stage_parse.py` reads a plan's stage entry into them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from hpsearch.search.plan.narrow import NarrowRule, rule_to_data
from hpsearch.search.plan.samplers import Spec

__all__ = ["COMPARE_ON", "MAX_STAGE_TRIALS", "STAGE_KINDS", "STAGE_TYPES", "CompareStage", "Escalation", "FinalStage",
           "LRRangeTestStage", "SearchStage", "Stage", "StageKind", "stage_to_data"]


class StageKind(StrEnum):
    """What a stage does. Plans, the storage and the exports hold the value; code compares the members."""

    SEARCH = "search"  # samples the space (narrowed from the stage before), pruned by its pruner
    LR_RANGE_TEST = "lr_range_test"  # first only: one LR range test that sets the space's LR bounds
    FINAL = "final"  # last (or before compare stages): the best configs of a search stage over seeds
    COMPARE = "compare"  # named variants of the best or base config over seeds, with intervals


STAGE_KINDS = tuple(k.value for k in StageKind)
COMPARE_ON = ("best", "base")  # compare stages: the config their variants change
MAX_STAGE_TRIALS = 10_000  # a stage's slots are enqueued when it opens; more is a typo, not a budget


@dataclass(frozen=True)
class Stage:
    """One stage of a campaign; one Optuna study with exactly `n_trials` trials.

    The common part of the record types of the kinds below, each holding only the fields its kind uses; `kind`
    (a class attribute) says which one a stage is.
    """

    kind: ClassVar[StageKind]
    keys: ClassVar[tuple[str, ...]]  # the keys of its plan-file entry, in the order they are written

    name: str
    n_trials: int = 1  # final: top * seeds; compare: variants * seeds; lr_range_test: 1
    overrides: dict[str, Any] = field(default_factory=dict)  # fidelity: TrainConfig keys not in the space

    @property
    def study_sampler(self) -> Spec:
        """The sampler of the stage's Optuna study. Only a search stage samples: the other kinds enqueue every
        slot's config, and random fills whatever a slot leaves open."""
        return Spec("random")

    @property
    def study_pruner(self) -> Spec:
        """The pruner of the stage's Optuna study: only a search stage prunes."""
        return Spec("none")

    def to_data(self) -> dict[str, Any]:
        """The stage in the plan-file form, only the keys its kind uses: `parse_stage` reads it back equal."""
        return self._entry()

    def facts(self) -> list[tuple[str, Any]]:
        """What the stage's note says of its kind: (label, text or data to format) rows."""
        return []

    def _entry(self, **own: Any) -> dict[str, Any]:
        """The common keys and the kind's `own` ones, in the order of `keys`; None values are left out."""
        data = {"name": self.name, "kind": self.kind.value, "n_trials": self.n_trials,
                "overrides": dict(self.overrides), **own}
        return {k: data[k] for k in self.keys if data[k] is not None}


@dataclass(frozen=True)
class Escalation:
    """A search stage's other form, for when the ranking of the search stage before it did not hold within its runs
    (agreement below `below`, search/plan/agreement.py) or that stage ran in this form itself: `n_trials` trials
    with `overrides` on top of the stage's own (a higher fidelity), sampled by `sampler` and pruned by `pruner`
    (None: the stage's own) over the previous stage's space, not narrowed from a ranking that did not hold."""

    n_trials: int
    overrides: dict[str, Any]
    below: float = 0.5
    sampler: Spec | None = None
    pruner: Spec | None = None

    def to_data(self) -> dict[str, Any]:
        specs = {k: v.to_data() for k, v in (("sampler", self.sampler), ("pruner", self.pruner)) if v is not None}
        return {"below": self.below, "n_trials": self.n_trials, "overrides": dict(self.overrides), **specs}


@dataclass(frozen=True)
class SearchStage(Stage):
    """Samples the space, narrowed from the previous stage's best trials by its `narrow` rule."""

    kind: ClassVar[StageKind] = StageKind.SEARCH
    keys: ClassVar[tuple[str, ...]] = ("name", "kind", "n_trials", "overrides", "sampler", "pruner", "narrow",
                                       "carry", "escalate")

    sampler: Spec = field(default_factory=lambda: Spec("random"))  # how its params are sampled
    pruner: Spec = field(default_factory=lambda: Spec("none"))  # when a trial falling behind stops
    narrow: NarrowRule | None = None  # how this stage's space comes from the previous stage's best trials
    carry: int = 0  # best configs of the previous stage re-measured here
    escalate: Escalation | None = None  # its other form, where the ranking before it did not hold
    escalated: bool = False  # this record is that form, as the stage opened (never in a plan file)

    def escalated_form(self) -> SearchStage:
        """The stage as it runs escalated: the escalation's trials, fidelity, sampler and pruner, no narrowing."""
        e = self.escalate
        assert e is not None
        return replace(self, n_trials=e.n_trials, overrides={**self.overrides, **e.overrides},
                       sampler=e.sampler or self.sampler, pruner=e.pruner or self.pruner, narrow=None,
                       carry=min(self.carry, e.n_trials),
                       escalated=True)

    @property
    def study_sampler(self) -> Spec:
        return self.sampler

    @property
    def study_pruner(self) -> Spec:
        return self.pruner

    def to_data(self) -> dict[str, Any]:
        return self._entry(sampler=self.sampler.to_data(), pruner=self.pruner.to_data(), carry=self.carry,
                           narrow=rule_to_data(self.narrow) if self.narrow is not None else None,
                           escalate=self.escalate.to_data() if self.escalate is not None else None)

    def facts(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("sampler", self.sampler.to_data()), ("pruner", self.pruner.to_data()),
            ("narrowing rule", rule_to_data(self.narrow) if self.narrow else "none (parent's space)"),
            ("carry", f"{self.carry} best config(s) of the previous stage")]
        if self.escalated:
            rows.append(("escalated", "yes: the ranking before it did not hold, so it runs its escalated form (the "
                                      "trials, fidelity, sampler and pruner above) over the previous stage's space"))
        elif self.escalate is not None:
            rows.append(("escalation", f"not taken: the ranking before it was not measured below "
                                       f"{self.escalate.below:g}"))
        return rows


@dataclass(frozen=True)
class LRRangeTestStage(Stage):
    """One LR range test, first of the plan; the next stage's space takes the LR bounds it found."""

    kind: ClassVar[StageKind] = StageKind.LR_RANGE_TEST
    keys: ClassVar[tuple[str, ...]] = ("name", "kind", "overrides", "margin")

    margin: float = 0.0  # widen the found LR range by this share of its log width per side

    def to_data(self) -> dict[str, Any]:
        return self._entry(margin=self.margin)

    def facts(self) -> list[tuple[str, Any]]:
        return [("margin", f"{self.margin} of the found LR range's log width per side")]


@dataclass(frozen=True)
class FinalStage(Stage):
    """The `top` configs of the search stage before it, re-trained over `seeds` seeds and ranked by their mean."""

    kind: ClassVar[StageKind] = StageKind.FINAL
    keys: ClassVar[tuple[str, ...]] = ("name", "kind", "overrides", "top", "seeds", "smooth")

    top: int = 1  # configs re-trained
    seeds: int = 1  # seeds per config
    # pick the top configs by the kernel-weighted mean of the values around each (this share of the span of the
    # previous stage's trials), not by their own run; 0: by their own run (search/plan/model_rank.py)
    smooth: float = 0.0

    def to_data(self) -> dict[str, Any]:
        return self._entry(top=self.top, seeds=self.seeds, smooth=self.smooth or None)

    def facts(self) -> list[tuple[str, Any]]:
        picked = f", picked by smoothed value (smooth {self.smooth:g})" if self.smooth else ""
        return [("final", f"top {self.top} config(s) x {self.seeds} seed(s), ranked by their mean{picked}")]


@dataclass(frozen=True)
class CompareStage(Stage):
    """Named variants of one config over `seeds` seeds each, every one tested against the first."""

    kind: ClassVar[StageKind] = StageKind.COMPARE
    keys: ClassVar[tuple[str, ...]] = ("name", "kind", "overrides", "config", "seeds", "variants")

    seeds: int = 2  # seeds per variant (an interval needs two values)
    # (name, TrainConfig overrides) per variant, the first being the reference the others are tested against
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()
    compare_on: str = "base"  # the config the variants change: the best so far ("best") or the plan's ("base")

    def to_data(self) -> dict[str, Any]:
        return self._entry(config=self.compare_on, seeds=self.seeds,
                           variants=[{"name": n, "overrides": dict(o)} for n, o in self.variants])

    def facts(self) -> list[tuple[str, Any]]:
        return [("compare", f"{len(self.variants)} variant(s) of the {self.compare_on} config x {self.seeds} "
                            "seed(s); each tested against the first (Welch's t-test)"),
                *((f"variant {name}", changes or "as is") for name, changes in self.variants)]


STAGE_TYPES: dict[StageKind, type[Stage]] = {t.kind: t for t in (SearchStage, LRRangeTestStage, FinalStage,
                                                                  CompareStage)}


def stage_to_data(s: Stage) -> dict[str, Any]:
    """The stage in the plan-file form, only the keys its kind uses: `parse_stage` reads it back equal."""
    return s.to_data()

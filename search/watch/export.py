"""The campaign's best configs, ranked by the final stage's mean over seeds, as files `hpsearch train` reads."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.objectives.objective import VAL_ACC, Metric
from hpsearch.search.errors import describe_campaign_failure
from hpsearch.search.invocation import invoked_as
from hpsearch.search.plan.plan import Plan, StageKind
from hpsearch.search.plan.space import PlanError
from hpsearch.search.plan.stage_logic import config_groups
from hpsearch.search.plan.stages import CompareStage, FinalStage, Stage
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.campaign import Campaign, StageView, rank
from hpsearch.search.run.checkpoints import weights_artifacts
from hpsearch.search.watch.status import StageStatus, is_done

Views = list[tuple[Stage, StageView | None]]  # a campaign's stages as one read saw them (`Campaign.views`)


@dataclass(frozen=True)
class Ranked:
    rank: int
    config: dict[str, Any]
    values: list[float]
    trials: list[int]
    stage: str
    provenance: dict[str, Any]
    variant: str | None = None  # the variant, for a config exported from a comparison stage
    metric: Metric = VAL_ACC  # what `values` measure
    objective: str = "cifar10-resnet18"  # what trained it: `hpsearch train --config` runs the same
    objective_path: str | None = None  # the folder of a user's objective module, where `train` looks for it

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


SEED_BLIND = ("every final config gave the same value on every seed: the objective seems to ignore the seed it is "
              "given (params['seed'] in a function of params, config.seed in a training function), so the repeats "
              "measured no seed-to-seed noise")


def seed_blind(values_per_config: Iterable[Sequence[float]]) -> bool:
    """Whether the configs repeated over seeds (a final stage's) each gave one value on every seed, as an objective
    that ignores its seed does; False where no config was repeated."""
    repeated = [list(v) for v in values_per_config if len(v) > 1]
    return bool(repeated) and all(max(v) - min(v) <= 1e-12 * max(1.0, abs(max(v))) for v in repeated)


def best_configs(storage: BaseStorage, campaign: str, top: int) -> list[Ranked]:
    """Final stage: configs grouped over their seeds, by mean; otherwise the last finished stage's best trials."""
    return ranked_configs(Campaign.load(storage, campaign), top)


def ranked_configs(stored: Campaign, top: int, views: Views | None = None) -> list[Ranked]:
    """`best_configs` of a campaign already loaded; `views`: its stages as already read (`Campaign.views`)."""
    plan, campaign = stored.plan, stored.plan.name
    views = stored.views() if views is None else views
    sign = 1.0 if plan.metric.minimize else -1.0
    for index in reversed(range(len(plan.stages))):
        view = views[index][1]
        if view is None or not any(t.state == TrialState.COMPLETE for t in view.trials):
            continue
        if view.stage.kind == StageKind.LR_RANGE_TEST:
            break
        if view.stage.kind == StageKind.COMPARE:  # a check of the result, not the result: look further back
            continue
        if isinstance(view.stage, FinalStage):
            groups = config_groups(view.trials, view.stage.seeds)
            entries = [_entry(plan, view.stage.name, ts) for ts in groups.values()]
        else:
            entries = [_entry(plan, view.stage.name, [t]) for t in rank(view.trials, plan.metric.minimize)]
        entries.sort(key=lambda e: (sign * e.mean, e.trials[0]))
        return [replace(e, rank=i + 1) for i, e in enumerate(entries[:top])]
    compared = _compared(plan, views)
    if compared:  # a plan of comparisons only: its variants, ranked by their mean over seeds
        compared.sort(key=lambda e: (sign * e.mean, e.stage, e.trials[0]))
        return [replace(e, rank=i + 1) for i, e in enumerate(compared[:top])]
    failure = stored.failure()
    if failure is not None:
        raise PlanError(describe_campaign_failure(campaign, failure))
    raise PlanError(f"campaign {campaign!r} has no completed trial yet; run workers first")


def _compared(plan: Plan, views: Views) -> list[Ranked]:
    """One entry per variant of every comparison stage, over its completed seeds."""
    entries: list[Ranked] = []
    for stage, view in views:
        if view is None or not isinstance(stage, CompareStage):
            continue
        groups = config_groups(view.trials, stage.seeds)
        entries += [replace(_entry(plan, stage.name, ts), variant=stage.variants[v][0])
                    for v, ts in sorted(groups.items())]
    return entries


def _entry(plan: Plan, stage: str, trials: list[FrozenTrial]) -> Ranked:
    trials = sorted(trials, key=lambda t: t.number)
    records = [TrialRecord.of(t) for t in trials]
    first = records[0].config
    assert first is not None  # a completed trial recorded the config it trained
    config = dict(first)
    if "device" in config and plan.schema.field_type("device") is not None and plan.schema.keys():
        config["device"] = "auto"  # the device of the machine that reproduces it
    seeds = [r.config["seed"] for r in records if r.config is not None and "seed" in r.config]
    provenance = {**records[0].provenance, "seeds": seeds}
    return Ranked(0, config, [t.value for t in trials], [t.number for t in trials], stage, provenance,
                  metric=plan.metric, objective=plan.objective,
                  objective_path=plan.objective_fn.folder if plan.objective_fn is not None else None)


def unfinished(stored: Campaign, stages: list[StageStatus]) -> str | None:
    """None when every stage is open with nothing waiting or running; else where the campaign stands.
    `stages`: its status as already read (`status_of`)."""
    failure = stored.failure()
    if failure is not None:
        return f"failed in stage {failure.get('stage')}: {failure.get('type')}: {failure.get('message')}"
    return None if is_done(stages) else progress_line(stages)


def progress_line(stages: list[Any]) -> str:
    """`coarse 17/24, fine not open, ...`: where each stage (a `StageStatus`) stands."""
    return ", ".join(f"{s.name} {s.finished}/{s.n_trials}" if s.opened else f"{s.name} not open" for s in stages)


def write_export(entries: list[Ranked], campaign: str, out: Path, fmt: str,
                 summary: dict[str, Any] | None = None, *, unfinished: str | None = None,
                 under_budget: list[str] | None = None) -> list[Path]:
    """One file per config: `rank-N.yaml` (or .json) with config, result and provenance sections, the
    campaign's cost and comparisons (`summary.summary_to_dict`) when given; an `unfinished` campaign
    (where it stands) and stages that ended `under_budget` are marked in the result and the header."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for e in entries:
        doc = {"objective": e.objective, **({"objective_path": e.objective_path} if e.objective_path else {}),
               "config": e.config,
               "result": {"campaign": campaign, "stage": e.stage, "rank": e.rank,
                          "metric": {"name": e.metric.name, "direction": e.metric.direction},
                          f"mean_{e.metric.name}": round(e.mean, 6), f"std_{e.metric.name}": round(e.std, 6),
                          "values": e.values, "trials": e.trials,
                          **({"unfinished": unfinished} if unfinished else {}),
                          **({"under_budget": under_budget} if under_budget else {})},
               "provenance": e.provenance}
        if e.variant is not None:
            doc["result"]["variant"] = e.variant
        if summary is not None:
            doc["campaign"] = summary
        path = out / f"rank-{e.rank}.{fmt}"
        if fmt == "json":
            path.write_text(json.dumps(doc, indent=2))
        else:
            header = (f"# UNFINISHED campaign ({unfinished}): the best so far, not the campaign's result\n"
                      if unfinished else "")
            header += "".join(f"# UNDER BUDGET: {line}\n" for line in under_budget or [])
            header += (f"# hpsearch export: rank {e.rank} of campaign {campaign!r}, stage {e.stage!r}, "
                       f"objective {e.objective}\n"
                       f"# mean {e.metric.label} {e.mean:.4f} ± {e.std:.4f} over {len(e.values)} run(s) "
                       f"({e.metric.direction})\n"
                       f"# reproduce: {invoked_as()} train --config {path} --seeds {len(e.values)}\n")
            if summary is not None:
                cost = summary["cost"]
                work = (f"{cost['epoch_equivalents']:.4g} epoch-equivalents (full-data epochs at width 64)"
                        if "epoch_equivalents" in cost else f"{cost['work']:.4g} {cost['work_unit']}")
                header += f"# campaign cost: {cost['device_hours']:.4g} device-hours, {work}\n"
            path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
        paths.append(path)
    return paths


def write_weights(stored: Campaign, views: Views, entries: list[Ranked], out: Path, store: Any) -> list[Path]:
    """Each entry's kept final-stage weights (every seed) beside its config: `rank-N.seed-S.pt`, a state_dict
    for `objectives.model.CifarResNet18`. Entries with none kept (not from a final stage) are skipped."""
    from optuna.artifacts import download_artifact

    storage, plan = stored.storage, stored.plan
    paths = []
    for e in entries:
        index = next((i for i, s in enumerate(plan.stages) if s.name == e.stage and s.kind == StageKind.FINAL), None)
        view = views[index][1] if index is not None else None
        if view is None:
            continue
        for t in sorted((t for t in view.trials if t.number in e.trials), key=lambda t: t.number):
            for artifact_id, _ in weights_artifacts(storage, t)[-1:]:
                seed = (TrialRecord.of(t).config or {}).get("seed", 0)
                path = out / f"rank-{e.rank}.seed-{seed}.pt"
                path.unlink(missing_ok=True)  # a new export replaces the files of the last one
                download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
                paths.append(path)
    return paths

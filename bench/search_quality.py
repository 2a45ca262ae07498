"""Search-quality benchmark: the coarse-to-fine plan against single-stage searches at full fidelity, at equal cost.

The coarse-to-fine side is the plan shape of examples/cifar10-resnet18.yaml (LR range test, a cheap wide coarse
stage, narrowed fine and refine stages, a final stage re-training the top configs over seeds; the figures below
are from before the refine stage, when one fine stage of 64 trials held its budget: bench/search_quality_suite.py
has the later ones) with the synthetic objective
in place of CIFAR-10. The baselines search the same base config and space in one stage at the final stage's
fidelity (all the data, the same epochs): TPE + median pruner, TPE + Hyperband, random + median pruner, and
Optuna's GPSampler (no pruner). Every campaign runs through the product: `init_campaign` and the worker loop
(`hpsearch.search.run.worker.work`) in this process, on a journal file in a temporary folder.

Cost is counted in epoch-equivalents: epochs run x data fraction x (width / 64)^2 per trial, pruned, diverged
and failed trials included (an LR range test reports no epoch and counts 0). Each repetition first runs the
coarse-to-fine campaign, then gives each baseline at least the same cost: its worker runs trials until its
campaign has spent that much (the last trial may overshoot by less than one full-fidelity trial).

Each run's exported rank-1 config (`hpsearch export`'s first) is scored by `synthetic.true_value`: its noiseless
converged accuracy at full data and width, which no search sees. Regret is the best known value minus that
score; the best known value comes from a dense optimisation of `true_value` over the space: for every
combination of the categorical choices, 256 random points of the active numeric knobs, then L-BFGS-B from the
best 4 (in log coordinates where the space is on a log scale).

Usage:  python bench/search_quality.py [--reps 20] [--example examples/cifar10-resnet18.yaml]

Results (2-core CPU, quiet; Optuna 5.0.0, torch 2.14.1 for GP; n = 20 repetitions each, two runs of
`python bench/search_quality.py --reps 20`, 7 min each; ± is the standard deviation over repetitions; best known
true value 0.9500):
  search            true value          regret             regret/c2f  cost (ep-eq)  trials
  coarse-to-fine    0.9479 ± 0.0015     0.0021 ± 0.0015      1.00x          680        202
  TPE + median      0.9434 ± 0.0057     0.0066 ± 0.0057      3.17x          690         49
  TPE + Hyperband   0.9433 ± 0.0057     0.0067 ± 0.0057      3.20x          691         58
  random + median   0.9375 ± 0.0070     0.0125 ± 0.0070      6.00x          685         88
  GP                0.9409 ± 0.0061     0.0091 ± 0.0061      4.37x          683        197
The same command again (a run does not repeat exactly: a second sample of 20):
  coarse-to-fine    0.9481 ± 0.0012     0.0019 ± 0.0012      1.00x          677        202
  TPE + median      0.9433 ± 0.0063     0.0067 ± 0.0063      3.49x          691         48
  TPE + Hyperband   0.9432 ± 0.0041     0.0068 ± 0.0041      3.54x          689         54
  random + median   0.9373 ± 0.0071     0.0127 ± 0.0071      6.62x          681         81
  GP                0.9357 ± 0.0113     0.0143 ± 0.0113      7.44x          681        184
The target, coarse-to-fine's mean regret at most half the best baseline's, is met in both: 0.0021 against 0.0066
(3.2x) and 0.0019 against 0.0067 (3.5x). Two earlier runs of 10 repetitions each, on a machine shared with other
jobs, gave 0.0024 against TPE + Hyperband's 0.0062 (2.6x) and 0.0029 against 0.0048 (1.7x): ten repetitions are
too few for the baselines, whose means rest on a few bad repetitions (single regrets of 0.01 to 0.02; their
standard deviation over repetitions is 0.004 to 0.006, so the standard error of a mean of 10 is about 0.0017),
hence 20 here. Coarse-to-fine is also the most consistent search (the smallest spread in every run); 30 more
repetitions of coarse-to-fine alone gave a mean regret of 0.0019, of which 0.0009 is already in the fine stage (its
best config by true value), 0.0016 in its best three by one noisy run (what the final stage re-trains), and the
final stage's mean over three seeds picks nearly the best of those three (0.0019). Ranking the fine stage by a
kernel-smoothed value (each config's value averaged with its neighbours', bandwidths 0.05 to 0.3 of each range)
instead of its own run did not pick a better three (best of three 0.0018 to 0.0022), so the plan ranks by the run.
What moved it: the fine stage went from 32 trials of 30 epochs to 64 of 15 at the same cost (0.5 of the data). The
evaluation noise of one run (0.005 on the synthetic objective) does not shrink with epochs, so twice the configs
near the top beat longer runs of fewer: coarse-to-fine alone (no baselines, 20 repetitions per try) went from 0.0031
to 0.0016, 0.0021 and 0.0025 in three tries (the same command does not repeat a run exactly). The earlier steps:
narrowing around the best 15% with a margin of a quarter gave 0.0062 over 5 (the box kept nearly the whole space);
around the best 6 with a margin of 0.1, 0.0046; a coarse stage of 128 trials instead of 64, 0.0030 over 10 against
TPE + Hyperband's 0.0049 (1.6x); in that run GP ran out of slots, since fixed (the slot bound is the budget). What
did not help (20 repetitions each, mean regret): with the 30-epoch fine stage, the final stage as top 2 x 5 seeds
0.0034, top 5 x 2 seeds 0.0028, top 4 x 3 seeds 0.0040, narrowing around the best 4 with no margin 0.0037; with the
15-epoch one, 96 trials of 10 epochs 0.0026, 128 trials at 0.25 of the data 0.0019 and 0.0021, 256 coarse trials
with 48 fine 0.0020, a third stage narrowed around the fine stage's best 8 (40 + 24 trials) 0.0027, narrowing around
the best 10 0.0027, top 5 x 2 seeds 0.0026, top 2 x 4 seeds 0.0034. What is left is mostly which three the fine
stage hands on: its best three by one noisy run sit in a cluster whose true values span about 0.944 to 0.950 (the
breakdown above). Most exported configs are one-cycle, whose floor the space does not search (`min_lr_ratio` keeps
its default, 0.01, which the synthetic objective rewards as it does for cosine), so the schedule floor that limited
the earlier plan no longer does.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from optuna.distributions import CategoricalDistribution, IntDistribution
from scipy.optimize import minimize

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.synthetic import true_value
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import Space, active_params, is_active
from hpsearch.search.plan.stage_logic import AGREEMENT
from hpsearch.search.run.campaign import init_campaign
from hpsearch.search.run.cost import epoch_equivalents
from hpsearch.search.run.worker import WorkerOptions, work
from hpsearch.search.watch.export import best_configs
from hpsearch.storage import open_storage

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts
import hub_baselines as hub

ROOT = Path(__file__).resolve().parents[1]

# name -> (sampler, pruner) of the one stage; each over the whole run at the final stage's fidelity.
BASELINES: dict[str, tuple[Any, Any]] = {
    "TPE + median": ({"name": "tpe", "n_startup_trials": 10}, {"name": "median", "n_startup_trials": 5,
                                                                "n_warmup_steps": 5}),
    "TPE + Hyperband": ({"name": "tpe", "n_startup_trials": 10}, {"name": "hyperband", "min_resource": 2,
                                                                   "reduction_factor": 3}),
    "random + median": ("random", {"name": "median", "n_startup_trials": 5, "n_warmup_steps": 5}),
    "GP": ({"name": "gp", "n_startup_trials": 10}, "none"),
    hub.NAME: hub.SPEC,  # OptunaHub's DEHB, where optunahub can load it (`hub.usable_baselines`)
}


def trial_cost(trial: optuna.trial.FrozenTrial) -> float:
    """Epoch-equivalents of one trial: epochs it reported x data fraction x (width / 64)^2."""
    config = trial.user_attrs.get("config")
    if not config:  # an LR range test, or a trial that failed before its config was recorded
        return 0.0
    return epoch_equivalents(len(trial.intermediate_values), config["data_fraction"], config["width"])


def campaign_trials(storage: optuna.storages.BaseStorage, campaign: str) -> list[optuna.trial.FrozenTrial]:
    """Every trial of every stage of `campaign`."""
    return [t for s in storage.get_all_studies() if s.study_name.startswith(f"{campaign}.")
            for t in storage.get_all_trials(storage.get_study_id_from_name(s.study_name), deepcopy=False)]


@dataclass(frozen=True)
class Outcome:
    value: float  # true value of the exported rank-1 config
    cost: float  # epoch-equivalents spent
    trials: int  # trials that ran (finished, pruned or failed)
    seconds: float
    agreement: dict[str, float] = field(default_factory=dict)  # stage -> rho of the stage before it (its note's)


def run_campaign(plan: Plan, folder: Path, budget: float | None = None, *,
                 score: Callable[[dict[str, Any]], float] | None = None, data_dir: Path | None = None) -> Outcome:
    """Init `plan` on a fresh journal and run one in-process worker until it is done, or has spent `budget`;
    the exported rank-1 config is scored by `score` (default: the synthetic objective's `true_value`)."""
    journal = str(folder / f"{plan.name}.journal")
    started = time.perf_counter()
    storage = open_storage(journal)
    init_campaign(storage, plan)
    options = WorkerOptions(storage=journal, heartbeat_interval=60, grace_period=600, artifacts=None,
                            data_dir=data_dir)
    full_trial = _stage_cost(plan.stages[-1].overrides, plan.base.to_dict()) or 1.0
    spent = 0.0
    while True:
        chunk = None if budget is None else max(1, int((budget - spent) // full_trial))
        ran = work(plan.name, replace(options, max_trials=chunk), threading.Event())
        trials = [t for t in campaign_trials(storage, plan.name) if t.state != optuna.trial.TrialState.WAITING]
        spent = sum(trial_cost(t) for t in trials)
        if budget is None or spent >= budget or ran < (chunk or 0):  # done, or the stage ran out of slots
            break
    best = best_configs(storage, plan.name, 1)[0]
    value = score(best.config) if score is not None else true_value(TrainConfig.from_dict(best.config))
    agreement = {}
    for summary in storage.get_all_studies():  # what each stage recorded of the ranking before it
        measured = summary.user_attrs.get(AGREEMENT)
        if summary.study_name.startswith(f"{plan.name}.") and isinstance(measured, dict):
            agreement[summary.user_attrs.get("stage", summary.study_name)] = float(measured["rho"])
    return Outcome(value, spent, len(trials), time.perf_counter() - started, agreement)


def _stage_cost(overrides: dict[str, Any], base: dict[str, Any]) -> float:
    config = TrainConfig.from_dict({**base, **overrides})
    return epoch_equivalents(config.epochs, config.data_fraction, config.width)


def coarse_to_fine_plan(example: dict[str, Any], rep: int, objective: str = "synthetic") -> Plan:
    """The example plan with `objective`; the repetition number seeds its QMC sequence."""
    return Plan.from_dict({**example, "name": f"c2f{rep}", "objective": objective, "seed": rep,
                           "base": {**example["base"], "device": "cpu"}})


def single_stage_plan(example: dict[str, Any], name: str, sampler: Any, pruner: Any, budget: float,
                      objective: str = "synthetic") -> Plan:
    """One search stage at the example's final fidelity, with more slots than `budget` can pay for."""
    final = example["stages"][-1]["overrides"]
    epoch = _stage_cost({**final, "epochs": 1}, example["base"])
    slots = int(budget / epoch) + 10  # an upper bound: a pruned or diverged trial still costs at least one epoch
    stage = {"name": "search", "n_trials": slots, "overrides": final, "sampler": sampler, "pruner": pruner}
    return Plan.from_dict({**example, "name": name, "objective": objective, "stages": [stage],
                           "base": {**example["base"], "device": "cpu"}})


def best_known(plan: Plan, points: int = 256, seed: int = 0,
               score: Callable[[dict[str, Any]], float] | None = None) -> float:
    """max of `score` (a config dict's truth; default `true_value`) over the plan's space: every categorical
    combination, `points` random points, then L-BFGS-B from the best few."""
    rng = np.random.default_rng(seed)
    space = plan.space
    categorical = [p for p in space if isinstance(p.distribution, CategoricalDistribution)]
    best = -math.inf
    for choice in itertools.product(*(p.distribution.choices for p in categorical)):
        fixed = dict(zip((p.name for p in categorical), choice, strict=True))
        numeric = [p for p in space if p.name not in fixed and is_active(p, fixed)]
        if any(p.name in fixed and not is_active(p, fixed) for p in categorical):
            continue  # an inactive categorical with a value: the same point as another combination
        best = max(best, _optimise(plan, space, fixed, numeric, rng, points, score))
    return best


def _optimise(plan: Plan, space: Space, fixed: dict[str, Any], numeric: list[Any], rng: np.random.Generator,
              points: int, score: Callable[[dict[str, Any]], float] | None) -> float:
    lows = np.array([_to_unit(p, p.distribution.low) for p in numeric])
    highs = np.array([_to_unit(p, p.distribution.high) for p in numeric])

    def value(x: np.ndarray) -> float:
        params = {**fixed, **{p.name: _from_unit(p, v) for p, v in zip(numeric, x, strict=True)}}
        config = plan.base.replace(**active_params(space, params), device="cpu")
        return true_value(config) if score is None else score(config.to_dict())

    if not numeric:
        return value(np.array([]))
    starts = lows + (highs - lows) * rng.random((points, len(numeric)))
    scores = np.array([value(x) for x in starts])
    best = float(scores.max())
    for x0 in starts[np.argsort(-scores)[: max(1, points // 64)]]:
        found = minimize(lambda x: -value(x), x0, method="L-BFGS-B", bounds=list(zip(lows, highs, strict=True)))
        best = max(best, -float(found.fun))
    return best


def _to_unit(param: Any, v: float) -> float:
    return math.log10(v) if param.distribution.log else float(v)


def _from_unit(param: Any, x: float) -> float | int:
    v = 10**x if param.distribution.log else float(x)
    return round(v) if isinstance(param.distribution, IntDistribution) else v


def compare(example: dict[str, Any], reps: int, names: list[str], *, objective: str = "synthetic",
            score: Callable[[dict[str, Any]], float] | None = None,
            data_dir: Path | None = None, first: int = 0) -> dict[str, list[Outcome]]:
    """`reps` repetitions (numbered from `first`, which seeds the plan) of coarse-to-fine (the plan `example`) and
    of the baselines `names` at its cost, each
    exported rank-1 config scored by `score` (`run_campaign`'s default: the synthetic `true_value`)."""
    results: dict[str, list[Outcome]] = {"coarse-to-fine": [], **{n: [] for n in names}}
    # Journal writes fsync each record: in memory (tmpfs) where there is one, so the disk does not set the pace.
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        for rep in range(first, first + reps):
            folder = Path(tmp) / f"rep{rep}"
            folder.mkdir()
            c2f = run_campaign(coarse_to_fine_plan(example, rep, objective), folder, score=score, data_dir=data_dir)
            results["coarse-to-fine"].append(c2f)
            for i, name in enumerate(names):
                sampler, pruner = BASELINES[name]
                plan = single_stage_plan(example, f"single{i}", sampler, pruner, c2f.cost, objective)
                results[name].append(run_campaign(plan, folder, budget=c2f.cost, score=score, data_dir=data_dir))
            print(f"rep {rep + 1 - first}/{reps}: " + ", ".join(
                f"{n} {r[-1].value:.4f} ({r[-1].cost:.4g} ep-eq)" for n, r in results.items()), file=sys.stderr,
                flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions of every search")
    parser.add_argument("--example", type=Path, default=ROOT / "examples" / "cifar10-resnet18.yaml")
    parser.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated names to run")
    parser.add_argument("--dense-points", type=int, default=256,
                        help="random points per categorical combination in the search for the best known value")
    hub.add_hub_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")  # Optuna's experimental notices (constant_liar, GPSampler, ...)
    example = yaml.safe_load(args.example.read_text())
    names = hub.usable_baselines([n.strip() for n in args.baselines.split(",") if n.strip()], BASELINES,
                                  args.hub_registry)
    optimum = best_known(coarse_to_fine_plan(example, 0), args.dense_points)
    print(f"best known true value {optimum:.4f}", file=sys.stderr, flush=True)
    results = compare(example, args.reps, names)
    print_table(results, optimum, args)


def print_table(results: dict[str, list[Outcome]], optimum: float, args: argparse.Namespace) -> None:
    print(f"\n{args.example.name} on the synthetic objective, {args.reps} repetitions; best known true value "
          f"{optimum:.4f} (dense optimisation of true_value over the space); Optuna {optuna.__version__}")
    print(f"{'search':<16} {'true value':>17} {'regret':>17} {'regret/c2f':>10} {'cost (ep-eq)':>13} "
          f"{'trials':>7} {'wall s':>7}")
    c2f_regret = statistics.fmean(optimum - o.value for o in results["coarse-to-fine"])
    for name, runs in results.items():
        values = [o.value for o in runs]
        regrets = [optimum - v for v in values]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        mean_regret = statistics.fmean(regrets)
        ratio = mean_regret / c2f_regret if c2f_regret > 0 else math.inf
        print(f"{name:<16} {statistics.fmean(values):>9.4f} ± {spread:<6.4f}"
              f" {mean_regret:>9.4f} ± {(statistics.stdev(regrets) if len(regrets) > 1 else 0.0):<6.4f}"
              f" {ratio:>9.2f}x {statistics.fmean(o.cost for o in runs):>13.0f}"
              f" {statistics.fmean(o.trials for o in runs):>7.0f} {statistics.fmean(o.seconds for o in runs):>7.1f}")


if __name__ == "__main__":
    main()

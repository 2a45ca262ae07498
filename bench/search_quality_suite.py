"""Search quality per landscape family: bench/search_quality.py's comparison over the suite of bench/landscapes.py.

For every family and repetition r, the family's member r (`landscapes.build(family, r)`) is searched by the
coarse-to-fine plan (the example plan's shape; without its LR range test except on `synthetic`, and over the
family's own space where it has one) and by the single-stage baselines at the same cost, exactly as
bench/search_quality.py does it. The exported rank-1 config of each search is scored by the member's truth;
regret is the best known value (closed form where known, else search_quality's dense optimisation) minus that.
A family's row gives each search's mean regret with a 95% t-interval over repetitions. Families do not share a
scale (accuracy against -Hartmann), so the pooled row divides each regret by the member's gap between its best
known value and the median truth of 256 random configs of the space, then averages over every repetition of
every family in the run.

Usage:  python bench/search_quality_suite.py --families held-out [--reps 10] [--example PLAN]
        (--families: tuning, held-out, all or comma-separated names; see landscapes.TUNING / HELD_OUT)
        python bench/search_quality_suite.py ... --baselines GP --save gp.json   # the slow baseline apart
        python bench/search_quality_suite.py --merge main.json gp.json            # one table from both
        python bench/search_quality_suite.py ... --baselines DEHB --hub-registry DIR  # OptunaHub's DEHB, offline
        (DEHB needs `pip install optunahub`; DIR is the `package` folder of a copy of the OptunaHub registry,
        github.com/optuna/optunahub-registry; without it optunahub fetches the package from GitHub)
        python bench/search_quality_suite.py ... --first 4 --reps 6 --save more.json  # members 4 to 9

How the example plan's shape was chosen on the tuning set, the screens tried and the held-out results:
docs/search-quality.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts

import hub_baselines as hub
import landscapes
import search_quality as sq

from hpsearch.objectives.objective import OBJECTIVES, Objective
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import active_params, sample_params

C2F = "coarse-to-fine"
# family -> search -> one (regret, normalised regret, cost[, agreement per stage]) per repetition
Results = dict[str, dict[str, list[tuple[Any, ...]]]]


def landscape_example(example: dict[str, Any], landscape: landscapes.Landscape) -> dict[str, Any]:
    """The example plan for `landscape`: its space where it has one, no LR range test but on the synthetic
    objective (the landscapes have none)."""
    if landscape.name.startswith("synthetic-"):
        return example
    stages = [s for s in example["stages"] if s.get("kind") != "lr_range_test"]
    out = {**example, "stages": stages}
    if landscape.space is not None:
        out["space"] = landscape.space
    return out


def objective_name(landscape: landscapes.Landscape) -> str:
    """Registers the landscape's training function as an objective for this process; returns its name."""
    if landscape.name.startswith("synthetic-"):
        return "synthetic"
    name = f"landscape-{landscape.name}"
    OBJECTIVES[name] = Objective(landscape.train)
    return name


def random_median(plan: Plan, landscape: landscapes.Landscape, n: int = 256) -> float:
    """The median truth of `n` random configs of the plan's space: the scale of a member's regrets."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = []
    for _ in range(n):
        params = sample_params(study.ask(), plan.space)
        values.append(landscape.truth(plan.base.replace(**active_params(plan.space, params)).to_dict()))
    return statistics.median(values)


def run_member(example: dict[str, Any], family: str, rep: int, names: list[str], dense: int,
               ) -> dict[str, tuple[float, float, float, dict[str, float]]]:
    """(regret, normalised regret, cost, each stage's recorded agreement of the ranking before it) per search, on
    the family's member `rep`."""
    landscape = landscapes.build(family, rep)
    objective = objective_name(landscape)
    ex = landscape_example(example, landscape)
    plan = sq.coarse_to_fine_plan(ex, rep, objective)
    optimum = landscape.best if landscape.best is not None else sq.best_known(plan, dense, score=landscape.truth)
    scale = max(1e-12, optimum - random_median(plan, landscape))
    results = sq.compare(ex, 1, names, objective=objective, score=landscape.truth, first=rep)
    return {name: (optimum - runs[0].value, (optimum - runs[0].value) / scale, runs[0].cost, runs[0].agreement)
            for name, runs in results.items()}


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))


def print_table(results: Results, example: Path) -> None:
    """One row per family and a pooled row of normalised regrets; a column per search, with its repetitions. A
    search that did not run on a family shows a dash there, and pools only if it ran on every family."""
    names = list(dict.fromkeys(n for by in results.values() for n in by))
    counts = {n: sorted({len(by[n]) for by in results.values() if n in by}) for n in names}
    print(f"\nmean regret ± 95% interval; {example.name}; Optuna {optuna.__version__}; repetitions per family: "
          + ", ".join(f"{n} {'/'.join(map(str, c))}" for n, c in counts.items()))
    print(f"{'family':<20}" + "".join(f"{n:>20}" for n in names) + f"{'best base/c2f':>15}{'cost':>8}")
    for family, by_search in results.items():
        means = {n: interval([r[0] for r in by_search[n]]) for n in names if n in by_search}
        cost = statistics.fmean(r[2] for r in by_search[C2F])
        print(f"{family:<20}" + "".join(_cell(means.get(n)) for n in names)
              + f"{_ratio({n: m for n, (m, _) in means.items()})}{cost:>8.0f}")
    pooled = {n: interval([r[1] for by in results.values() for r in by[n]]) for n in names
              if all(n in by for by in results.values())}
    print(f"{'pooled (normalised)':<20}" + "".join(_cell(pooled.get(n)) for n in names)
          + _ratio({n: m for n, (m, _) in pooled.items()}))
    print_agreement(results)


def print_agreement(results: Results) -> None:
    """Per family, what coarse-to-fine's stages recorded of the ranking of the search stage before each: Spearman's
    rho between its trials' values halfway and at the end of their runs, mean [min, max] over repetitions."""
    rows = {family: [r[3] for r in by[C2F] if len(r) > 3 and r[3]] for family, by in results.items() if C2F in by}
    stages = list(dict.fromkeys(stage for recorded in rows.values() for a in recorded for stage in a))
    if not stages:
        return
    print("\nranking agreement before each stage (coarse-to-fine; rho, mean [min, max])")
    print(f"{'family':<20}" + "".join(f"{'before ' + stage:>22}" for stage in stages))
    for family, recorded in rows.items():
        cells = []
        for stage in stages:
            rhos = [a[stage] for a in recorded if stage in a]
            cells.append(f"{statistics.fmean(rhos):>7.2f} [{min(rhos):5.2f}, {max(rhos):5.2f}]" if rhos else "—")
        print(f"{family:<20}" + "".join(f"{c:>22}" for c in cells))


def _cell(mean_half: tuple[float, float] | None) -> str:
    if mean_half is None:
        return f"{'—':>20}"
    return f"{mean_half[0]:>10.4f} ± {mean_half[1]:<7.4f}"


def _ratio(means: dict[str, float]) -> str:
    """The best baseline's mean regret over coarse-to-fine's, a 15-character cell (a dash without baselines)."""
    baselines = [m for n, m in means.items() if n != C2F]
    if not baselines:
        return f"{'—':>15}"
    return f"{min(baselines) / means[C2F] if means[C2F] > 0 else math.inf:>14.2f}x"


def families(spec: str) -> tuple[str, ...]:
    """The families a --families value names."""
    named = {"tuning": landscapes.TUNING, "held-out": landscapes.HELD_OUT, "all": landscapes.FAMILIES}
    if spec in named:
        return named[spec]
    out = tuple(f.strip() for f in spec.split(",") if f.strip())
    for f in out:
        if f not in landscapes.FAMILIES:
            raise SystemExit(f"--families: unknown family {f!r}; choose from {', '.join(landscapes.FAMILIES)}, "
                             "tuning, held-out or all")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="held-out", help="tuning, held-out, all or comma-separated names")
    parser.add_argument("--reps", type=int, default=10, help="repetitions (members) per family")
    parser.add_argument("--first", type=int, default=0, help="the first repetition's member (more of a run saved "
                        "before: --first 4 runs members 4, 5, ...)")
    parser.add_argument("--example", type=Path, default=sq.ROOT / "examples" / "cifar10-resnet18.yaml")
    parser.add_argument("--baselines", default=",".join(sq.BASELINES), help="comma-separated names to run")
    parser.add_argument("--dense-points", type=int, default=64,
                        help="random points per categorical combination when the optimum is not known")
    parser.add_argument("--save", type=Path, help="also write the per-repetition results to this JSON file")
    parser.add_argument("--merge", type=Path, nargs="+",
                        help="print one table from saved runs instead of running (a search is taken from the first "
                             "file that has it, so a slow baseline can run apart at its own count)")
    hub.add_hub_option(parser)
    args = parser.parse_args(argv)
    if args.merge:
        print_table(merged(args.merge), args.example)
        return
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    example = yaml.safe_load(args.example.read_text())
    names = hub.usable_baselines([n.strip() for n in args.baselines.split(",") if n.strip()], sq.BASELINES,
                                  args.hub_registry)
    results: Results = {}
    # Repetitions outside, families inside: a run stopped early has as many repetitions of every family.
    for rep in range(args.first, args.first + args.reps):
        for family in families(args.families):
            print(f"family {family}, repetition {rep + 1}", file=sys.stderr, flush=True)
            for name, outcome in run_member(example, family, rep, names, args.dense_points).items():
                results.setdefault(family, {}).setdefault(name, []).append(outcome)
            if args.save:
                args.save.write_text(json.dumps(results))
    print_table(results, args.example)


def merged(paths: list[Path]) -> Results:
    """Saved runs as one: per family, each search from the first file that has it."""
    out: Results = {}
    for path in paths:
        for family, by_search in json.loads(path.read_text()).items():
            for name, runs in by_search.items():
                out.setdefault(family, {}).setdefault(name, [tuple(r) for r in runs])
    return out


if __name__ == "__main__":
    main()

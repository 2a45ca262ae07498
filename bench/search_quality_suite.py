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

How the example plan's shape was chosen, on the tuning set only (2-core CPU shared with other jobs; Optuna 5.1.0;
coarse-to-fine alone, 4 repetitions per family, mean regret ± 95% interval; `--baselines ""`):
  plan                                  synthetic        shift-lr         narrow-optimizer  mfh3-good      mfh6-terrible
  A: fine 64 (the plan before), grow 0  0.0011 ± 0.0007  0.0047 ± 0.0053  0.0189 ± 0.0058   0.080 ± 0.123  1.53 ± 1.33
  B: fine 32, refine 32 around the
     fine stage's best 4, margin 0.1    0.0026 ± 0.0017  0.0026 ± 0.0030  0.0214 ± 0.0077   0.186 ± 0.341  1.52 ± 1.81
  E: fine 32, refine 32 around the
     fine stage's best 8, margin 0.25   0.0025 ± 0.0040  0.0007 ± 0.0008  0.0218 ± 0.0032   0.110 ± 0.152  1.89 ± 1.93
Pooled (normalised) A 0.153 ± 0.096, B 0.162 ± 0.105, E 0.176 ± 0.126: within each other's intervals, carried by
the MF-Hartmann families' spread. Two more shapes stopped early as worse on the synthetic objective: the refine
stage at all the data (16 trials of 15 epochs; 0.0049 over 4 repetitions) and GP in the fine and refine stages
(0.0066 over 2). narrow-optimizer's members moved between A/B (peak within 0.4 decade of AdamW's optimum) and E
(0.3, so that it stays inside the space's LR range), so its column compares A with B only. E became the example
plan: it follows the optimum of shift-lr (0.0007 against A's 0.0047) and keeps the synthetic objective within the
target (10 more repetitions of E alone: 0.0022 ± 0.0011, against 0.0015 to 0.0021 for the plan before). A check
of four campaigns' stage notes afterwards found the refine stage re-opening a side in one of them (momentum, on
shift-wd), and three shift-lr campaigns of E run apart gave 0.0054, 0.0034 and 0.0083: a campaign does not repeat
(per-worker sampler seeds), and 4 repetitions per family leave the choice between A and E open.

Then the mechanisms for a coarse fidelity that misleads (search/plan/model_rank.py), screened on E's shape, 4
repetitions per family (mfh6-terrible's row is in its own units; the figures for E are those above):
  plan                                  synthetic        shift-lr         narrow-optimizer  mfh3-good      mfh6-terrible
  E                                     0.0025 ± 0.0040  0.0007 ± 0.0008  0.0218 ± 0.0032   0.110 ± 0.152  1.89 ± 1.93
  R: E with GP in the refine stage      0.0030 ± 0.0044  0.0069 ± 0.0139  0.0229 ± 0.0074   0.137 ± 0.218  1.37 ± 0.71
  S: R, and both narrowings around the
     best by smoothed value (smooth 0.2) 0.0028 ± 0.0036  0.0030 ± 0.0020  0.0210 ± 0.0055   0.192 ± 0.210  1.33 ± 0.43
Pooled (normalised) E 0.176 ± 0.126, R 0.164 ± 0.079, S 0.151 ± 0.073: again within each other's intervals. A
fourth, S with the final stage also picking its three by smoothed value (final `smooth: 0.2`), was stopped after 2
repetitions at 0.164 pooled against S's 0.158 on the same 2 members. S became the example plan, on its pooled mean
and its narrower intervals; the screen cannot tell the three apart, and there was no time for 10 repetitions of
each before the held-out run.

Then where MF-Hartmann's regret comes from, and shapes that spend more at full fidelity (tuning set; 10
repetitions of coarse-to-fine alone each; S is the example plan, run again beside them):
  plan                                  synthetic        shift-lr         narrow-optimizer  mfh3-good      mfh6-terrible
  S                                     0.0028 ± 0.0016  0.0076 ± 0.0076  0.0220 ± 0.0013   0.245 ± 0.152  1.75 ± 0.73
  V2: refine as 10 GP trials at full
      fidelity, final top 3 x 2 seeds   0.0033 ± 0.0013  0.0036 ± 0.0015  0.0223 ± 0.0023   0.111 ± 0.067  1.58 ± 0.32
  V3: refine without a pruner, 24       0.0037 ± 0.0020  0.0070 ± 0.0036  0.0208 ± 0.0015   0.166 ± 0.091  1.78 ± 0.65
  V5: fine not narrowed (carry 4)                 —                —                —       0.176 ± 0.097  2.10 ± 0.62
  V6: fine not narrowed, no carry                 —                —                —       0.264 ± 0.229  1.73 ± 0.81
  V7: coarse, then 16 GP trials at full
      fidelity over the whole space     —                —                —                 0.056 ± 0.065  1.47 ± 0.73
Pooled (normalised) S 0.194 ± 0.068, V2 0.167 ± 0.054, V3 0.189 ± 0.065. On MF-Hartmann a campaign's exported
config is within a few hundredths of the best its refine stage found (stage notes of 5 campaigns): the search at the
fine fidelity, not the final choice, sets its regret. The box is not what misleads there: not narrowing at all (V5,
V6) is no better. The fidelity is: at z = 25 (half the data, 15 epochs) the noise is as large as the function's
range on the bad and terrible presets, and the coarse stage's own ranking barely holds between the middle and the
end of its runs (rho mostly below 0.3 on the two MF-Hartmann families, against 0.5 to 1.0 on the other three:
search/plan/agreement.py, printed below the table). Spending at full fidelity instead (V7) is what helps
on mfh3-good, a fifth of S's regret, and the other families pay for it: V2 moves the synthetic objective past the
target (0.0033 against at most 0.0031).

So a plan should do each where it pays: a search stage's `escalate` form (search/plan/stages.py) opens instead of
the planned one where the stage before ranked with rho below 0.5, and 0.5 splits the tuning set: the coarse stage
gave 0.49 to 0.97 on the three synthetic families over 90 campaigns (below 0.5 once, on shift-lr) and -0.3 to 0.6
on the two MF-Hartmann ones (above 0.5 twice in 60). Screened on S (10 repetitions each; the fine stage escalates to
its form, and the refine stage, with below: -1, re-measures the escalated stage's best at full fidelity):
  plan                                  synthetic        shift-lr         narrow-optimizer  mfh3-good      mfh6-terrible
  S, run again (agreement recorded)     0.0020 ± 0.0013  0.0047 ± 0.0030  0.0217 ± 0.0013   0.141 ± 0.084  1.72 ± 0.66
  E3: fine escalates to 16 GP trials at
      full fidelity, its own pruner     0.0019 ± 0.0009  0.0049 ± 0.0031  0.0221 ± 0.0014   0.209 ± 0.149  1.61 ± 0.66
  E4: E3 without a pruner               0.0032 ± 0.0014  0.0052 ± 0.0025  0.0215 ± 0.0015   0.046 ± 0.043  1.62 ± 0.48
E3's median pruner, reading the early epochs of full-fidelity runs, cut good configs as the coarse ranking had
picked bad ones; E4 (like V7) brings mfh3-good to a third of S's regret and became the example plan. Where the
coarse ranking holds, the plan runs as S does, so the synthetic objective's 0.0032 is one more run of S's path
(runs of it: 0.0028, 0.0020, 0.0019, 0.0032; mean 0.0025, within the target). mfh6-terrible does not move: 16
full-fidelity GP trials in 6 dimensions find little more than the noisy stages did. Other escalations, screened
on the two MF-Hartmann families of the tuning set (10 repetitions each; E4 run again beside them):
  escalated fine stage                  mfh3-good        mfh6-terrible
  E4: 16 GP trials, no pruner           0.036 ± 0.039    1.22 ± 0.54
  G20: 20 GP trials, no pruner          0.036 ± 0.054    1.37 ± 0.55
  H1: 48 TPE trials, Hyperband          0.150 ± 0.125    1.37 ± 0.62
  H2: 48 GP trials, Hyperband           0.559 ± 0.337    1.64 ± 0.49
none better than E4, which stays. What bounds them all is GP's own progress per full-fidelity trial
(bench/gp_ceiling.py): an escalated campaign lands near GP's regret after 16 trials, the GP baseline at equal
cost spends about 33.

Then refine stages at a higher fidelity, against the residual short-horizon bias on shift-lr (the fine fidelity,
g = 0.59, still sees the optimum 0.41 S decades off, about 0.003 of expected regret); members 10 to 39, 30
repetitions of coarse-to-fine alone each, paired by member (difference to S, 95% interval):
  refine stage                          synthetic                    shift-lr                     cost
  S (32 trials, half the data x 15)     0.0029                       0.0045                       678-687
  R15: 16 GP trials, all data x 15      0.0042 (+0.0013 ± 0.0017)    0.0039 (-0.0006 ± 0.0020)    676-706
  R30: 8 trials at full fidelity (the
       4 carried + 4 GP), no pruner     0.0025 (-0.0004 ± 0.0011)    0.0036 (-0.0009 ± 0.0019)    772-781
  R30 around the fine stage's best 4    0.0029 (+0.0000 ± 0.0012)    0.0034 (-0.0011 ± 0.0020)    768-787
R30 gains a fifth on shift-lr, within the interval, and costs 14% more (its full-fidelity trials run unpruned),
which the baselines would get too; S stays.
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

"""How far Optuna's GPSampler gets on MF-Hartmann at full fidelity after N trials: the bound the MF-Hartmann
families of bench/search_quality_suite.py put on any plan that spends part of its budget below full fidelity.

At full fidelity (z = 100) MF-Hartmann is the plain Hartmann function, with neither bias nor noise, so every
member and preset of a dimension is the same function there, and one full-fidelity trial is one exact query. The
single-stage GP baseline (10 random trials first, no pruner) spends its whole budget on such queries: about 33
at the cost of an escalated coarse-to-fine campaign (990 epoch-equivalents, 30 per trial). The campaign spends
12% on its coarse stage (z of about 5, where the presets' bias and noise decide the ranking), 48% on 16
full-fidelity GP trials (4 random first), and the rest re-measuring its best four and re-training three over
three seeds, which buys nothing where the function is exact. So on MF-Hartmann it stands where GP stands after
about 16 trials, and any plan that keeps a cheap first stage and a seeded final stage stands where GP stands
after fewer than 33. The table gives GP's mean regret (Hartmann minus its global minimum, the suite's regret of
an exported config) after N trials, with a 95% t-interval over repetitions, each repetition a study with its own
sampler seed run to 33 trials.

Usage:  python bench/gp_ceiling.py [--reps 20]

Results (2-core CPU; Optuna 5.1.0; `--reps 20`, 4 min):
  N        H3, 10 random first      H3, 4 random first     H6, 10 random first      H6, 4 random first
  8              1.740 ± 0.396           1.007 ± 0.317           2.566 ± 0.252           2.468 ± 0.324
  12             0.976 ± 0.264           0.550 ± 0.328           2.243 ± 0.334           2.050 ± 0.299
  16             0.357 ± 0.204           0.350 ± 0.333           1.707 ± 0.336           1.586 ± 0.369
  20             0.133 ± 0.137           0.315 ± 0.308           1.245 ± 0.309           1.087 ± 0.351
  24             0.042 ± 0.081           0.255 ± 0.236           0.895 ± 0.252           0.756 ± 0.309
  28             0.039 ± 0.081           0.113 ± 0.113           0.538 ± 0.213           0.531 ± 0.287
  33             0.011 ± 0.022           0.047 ± 0.092           0.272 ± 0.186           0.341 ± 0.259
Coarse-to-fine's escalated campaigns land near GP's 16-trial column (held-out: 0.12 and 0.33 in 3-D, 0.82 and 1.27
in 6-D), and no plan with a cheap first stage reaches the 33-trial one: in 6-D, 29 full-fidelity trials after a
coarse stage of 12%, with nothing spent on seeds, would stand near 0.53.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

import optuna
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts
import mf_hartmann as mfh

COUNTS = (8, 12, 16, 20, 24, 28, 33)
STARTUPS = {"10 random first": 10, "4 random first": 4}  # the GP baseline's; the escalated stage's


def regret_curve(dims: int, startup: int, seed: int, trials: int) -> list[float]:
    """Regret of the best of the first n trials, for n = 1 .. `trials`, of one GP study on Hartmann-`dims`."""
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(n_startup_trials=startup, seed=seed))
    study.optimize(lambda t: mfh.hartmann([t.suggest_float(f"x{j}", 0, 1) for j in range(dims)]), n_trials=trials)
    best, curve = float("inf"), []
    for trial in study.trials:
        best = min(best, float(trial.value))
        curve.append(best - mfh.MINIMUM[dims])
    return curve


def cell(values: list[float]) -> str:
    mean = statistics.fmean(values)
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.3f} ± {half:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="GP studies per column (each with its own seed)")
    args = parser.parse_args(argv)
    if args.reps < 2:
        parser.error("--reps must be at least 2: the interval needs two repetitions")
    optuna.logging.set_verbosity(logging.WARNING)
    columns: dict[str, list[list[float]]] = {}
    for dims in (3, 6):
        for label, startup in STARTUPS.items():
            columns[f"H{dims}, {label}"] = [regret_curve(dims, startup, seed, max(COUNTS))
                                            for seed in range(args.reps)]
            print(f"done: H{dims}, {label}", file=sys.stderr, flush=True)
    print(f"mean regret after N full-fidelity trials ({args.reps} repetitions, 95% t-interval)")
    print("N   " + "".join(f"{name:>24}" for name in columns))
    for n in COUNTS:
        print(f"{n:<4}" + "".join(f"{cell([c[n - 1] for c in curves]):>24}" for curves in columns.values()))


if __name__ == "__main__":
    main()

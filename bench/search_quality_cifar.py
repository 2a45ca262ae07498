"""Search quality on real CIFAR-10 at the demo's scale, on the CPU: bench/search_quality.py's comparison with the
real training objective in place of the synthetic one.

Coarse-to-fine is the plan of examples/demo.yaml (a width-8 network on 2% of the training images, three
stages); the baselines are the same single-stage searches (TPE + median, TPE + Hyperband, random + median, GP),
each on the demo's space at its final stage's fidelity (width 16, 4 epochs), run until they have spent what
coarse-to-fine spent, in epoch-equivalents. There is no noiseless value to score a config by here, so each run's
exported rank-1 config is trained again at that fidelity with `--seeds` fresh seeds and scored by the mean
accuracy on CIFAR-10's test set, which no search sees. Every campaign runs through the product, as in
bench/search_quality.py: `init_campaign` and the worker loop in this process, on a journal file.

Usage:  python bench/search_quality_cifar.py [--data-dir DIR] [--reps 3] [--seeds 3] [--baselines NAMES]
(DIR holds cifar-10-batches-py/; `hpsearch run ... --download` or the official archive puts it there.)

This is a few repetitions of a tiny problem, not the synthetic benchmark's twenty: at this scale the test
accuracy of one config moves by about a point from seed to seed, so it shows that the comparison runs on real
data and roughly where each search lands, not which search is better.

Results (2-core CPU, quiet otherwise; Optuna 5.0.0, torch 2.14.1; 3 repetitions, 3 scoring seeds;
`python bench/search_quality_cifar.py --data-dir DIR`, 62 min; ± is the standard deviation over repetitions):
  search            test accuracy       vs c2f   cost (ep-eq)  trials  wall s
  coarse-to-fine    0.3278 ± 0.0238    +0.0000        0.0294      18   317.3
  TPE + median      0.3171 ± 0.0243    -0.0107        0.0304       6   225.2
  TPE + Hyperband   0.2593 ± 0.0374    -0.0685        0.0308       9   232.5
  random + median   0.3428 ± 0.0081    +0.0150        0.0304       6   227.8
  GP                0.3233 ± 0.0286    -0.0045        0.0300       6   228.1
Per repetition, coarse-to-fine scored 0.3016, 0.3478 and 0.3341; random + median 0.3424, 0.3511 and 0.3349. Three
repetitions tell no search apart from the others except TPE + Hyperband, the lowest in all three (Hyperband's
brackets split six or so full-fidelity trials' worth among them). The budget buys about six trials at the final
fidelity, and coarse-to-fine's cheap stages run a width-8 network for two or three epochs on 2% of the data, a
rough guide to the best LR and weight decay of the width-16 network the final stage trains for four.
The synthetic benchmark, with its 20 repetitions, is the one that measures the plan.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts

import search_quality as sq

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import ensure_data
from hpsearch.objectives.errors import DataError
from hpsearch.objectives.train import train

ROOT = Path(__file__).resolve().parents[1]
SCORE_SEED = 10_000  # the rescoring seeds: none of the seeds a search trains with


def test_accuracy(config: dict[str, Any], data_dir: Path, seeds: int) -> float:
    """Mean test accuracy of `config` trained again with `seeds` fresh seeds; a diverged run scores chance."""
    accs = []
    for s in range(seeds):
        result = train(TrainConfig.from_dict({**config, "seed": SCORE_SEED + s, "device": "cpu"}),
                       data_dir=data_dir, evaluate_test=True)
        accs.append(result.test_acc if result.test_acc is not None else 0.1)
    return statistics.fmean(accs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the folder holding cifar-10-batches-py/ "
                        "(default: $HPSEARCH_DATA_DIR)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every search")
    parser.add_argument("--seeds", type=int, default=3, help="fresh seeds the exported config is scored over")
    parser.add_argument("--example", type=Path, default=ROOT / "examples" / "demo.yaml")
    parser.add_argument("--baselines", default=",".join(sq.BASELINES), help="comma-separated names to run")
    args = parser.parse_args(argv)
    try:
        data_dir = ensure_data(args.data_dir)
    except DataError:
        print(f"search_quality_cifar: no CIFAR-10 in {str(args.data_dir or '$HPSEARCH_DATA_DIR')!r}; give --data-dir "
              "the folder holding cifar-10-batches-py/ (hpsearch run ... --download fetches it)", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    example = yaml.safe_load(args.example.read_text())
    names = [n.strip() for n in args.baselines.split(",") if n.strip()]

    def score(config: dict[str, Any]) -> float:
        return test_accuracy(config, data_dir, args.seeds)

    started = time.perf_counter()
    results = sq.compare(example, args.reps, names, objective=example["objective"], score=score, data_dir=data_dir)
    print(f"\n{args.example.name} on CIFAR-10 (CPU), {args.reps} repetitions, each exported config scored by its "
          f"mean test accuracy over {args.seeds} fresh seeds; {time.perf_counter() - started:.0f} s; "
          f"Optuna {optuna.__version__}")
    print(f"{'search':<16} {'test accuracy':>17} {'vs c2f':>8} {'cost (ep-eq)':>13} {'trials':>7} {'wall s':>7}")
    c2f_mean = statistics.fmean(o.value for o in results["coarse-to-fine"])
    for name, runs in results.items():
        values = [o.value for o in runs]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        mean = statistics.fmean(values)
        print(f"{name:<16} {mean:>9.4f} ± {spread:<6.4f} {mean - c2f_mean:>+8.4f}"
              f" {statistics.fmean(o.cost for o in runs):>13.4f} {statistics.fmean(o.trials for o in runs):>7.0f}"
              f" {statistics.fmean(o.seconds for o in runs):>7.1f}")


if __name__ == "__main__":
    main()

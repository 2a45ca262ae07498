"""`hpsearch train --config EXPORT` for an export of any objective other than the CIFAR-10 one: the same
function, the exported params, one run per seed, and the metric the campaign ranked by."""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from hpsearch.objectives.config import MAX_CONFIG_BYTES
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.objective import Metric, Objective, get_objective
from hpsearch.objectives.result import EpochRecord, TrainResult
from hpsearch.objectives.textfile import read_small_text

log = logging.getLogger(__name__)
CIFAR = "cifar10-resnet18"


def exported_objective(path: Path) -> tuple[str, dict[str, Any]]:
    """The objective a config file names (an export records it; a plain config is the CIFAR-10 one's) and the
    file's mapping."""
    text = read_small_text(path, "config file", ConfigError, MAX_CONFIG_BYTES)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return CIFAR, {}  # TrainConfig.from_yaml_file says what is wrong with it
    if isinstance(data, dict) and "stages" in data and "config" not in data:
        raise ConfigError(f"{path} is a plan (it has stages:), not a config: run it with 'hpsearch run {path}', "
                          "or pass a config that 'hpsearch export' wrote")
    if not isinstance(data, dict) or not isinstance(data.get("objective"), str):
        return CIFAR, data if isinstance(data, dict) else {}
    return data["objective"], data


def train_export(spec: str, doc: dict[str, Any], path: Path, seeds: int, data_dir: Path | None,
                 out: Path) -> dict[str, Any]:
    """Run objective `spec` on the export's params once per seed; writes config.yaml and metrics.json in `out`
    and returns the metrics. The objective's module is looked for beside the export, then in the working
    directory and on PYTHONPATH."""
    objective = get_objective(spec, search_path(path, doc))
    params = doc.get("config")
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: no 'config:' mapping; pass a file that 'hpsearch export' wrote")
    metric = _metric(doc.get("result", {}).get("metric"), objective)
    runs: list[dict[str, Any]] = []
    for i in range(seeds):
        run_params = {**params, "seed": int(params["seed"]) + i} if isinstance(params.get("seed"), int) else params
        if seeds > 1 and "seed" not in params:
            log.warning("the exported params have no seed: run %d repeats the same params", i + 1)
        started = time.monotonic()
        value, history = _run(objective, run_params, metric, data_dir)
        runs.append({"params": run_params, "value": value, "seconds": round(time.monotonic() - started, 3),
                     "history": [r.to_dict() for r in history]})
    values = [r["value"] for r in runs if r["value"] is not None]
    metrics = {"objective": spec, "metric": {"name": metric.name, "direction": metric.direction},
               "value": {"mean": statistics.fmean(values) if values else None,
                         "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values},
               "runs": runs}
    (out / "config.yaml").write_text(yaml.safe_dump({"objective": spec, "config": params}, sort_keys=False))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    histories = [[EpochRecord.from_dict(h) for h in r["history"]] for r in runs]
    if any(histories):
        from hpsearch.objectives.plots import plot_curves

        plot_curves([h for h in histories if h], out / "curves.png", title=path.name)
    return metrics


def search_path(path: Path, doc: dict[str, Any]) -> tuple[str | Path, ...]:
    """Where an export's objective module is looked for: beside the export, then where the campaign found it."""
    found = doc.get("objective_path")
    return (path.resolve().parent, *([found] if isinstance(found, str) else []))


def _metric(data: Any, objective: Objective) -> Metric:
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return Metric(data["name"], data.get("direction", "maximize"))
    return objective.default_metric or Metric("value", "maximize")


def _run(objective: Objective, params: dict[str, Any], metric: Metric,
         data_dir: Path | None) -> tuple[float | None, list[EpochRecord]]:
    """One run: a simple objective's returned value, or a full one's last epoch's metric."""
    history: list[EpochRecord] = []
    if objective.simple:
        def report(value: float, step: int) -> None:
            history.append(EpochRecord(int(step), metrics={metric.name: float(value)}))

        value = objective.train(dict(params), report) if objective.reports else objective.train(dict(params))
        return float(value), history
    config = objective.schema.build(params, "exported config")
    result: TrainResult = objective.train(config, data_dir=data_dir, on_epoch=None, on_step=None)
    return result.final_value(metric.name), list(result.history)

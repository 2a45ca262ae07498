"""`hpsearch train` and `hpsearch lr-find`: one config, no search around it."""

from __future__ import annotations

import json
import logging
import shlex
import signal
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpsearch.objectives import provenance
from hpsearch.objectives.checkpoint import DEFAULT_INTERVAL, FileCheckpoint
from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import ensure_data, load_test_split, make_splits
from hpsearch.objectives.errors import ConfigError
from hpsearch.objectives.result import EpochRecord, TrainResult
from hpsearch.search.cli.app import app
from hpsearch.search.cli.outputs import writable_dir
from hpsearch.search.cli.params import Finite
from hpsearch.search.invocation import invoked_as
from hpsearch.search.run.reproduce import CIFAR, exported_objective, search_path, train_export

log = logging.getLogger(__name__)
console = Console(stderr=True)

PathType = click.Path(path_type=Path)


def config_options(f: Any) -> Any:
    """--config, --data-dir, --download and --device, shared by the commands that train."""
    f = click.option("--device", default=None, help="override the config's device: cpu, cuda, cuda:N")(f)
    f = click.option("--download", is_flag=True, help="download CIFAR-10 when it is missing")(f)
    f = click.option("--data-dir", type=PathType, default=None,
                     help="folder holding cifar-10-batches-py/ [default: $HPSEARCH_DATA_DIR]")(f)
    return click.option("--config", "config_path", type=PathType, required=True,
                        help="TrainConfig YAML (or an exported config)")(f)


def load_config(path: Path, device: str | None) -> tuple[TrainConfig, dict]:
    """The config from a file (a plain TrainConfig or an export), plus the export's provenance if any."""
    config = TrainConfig.from_yaml_file(path)
    if device is not None:
        config = config.replace(device=device)
    raw = yaml.safe_load(path.read_text())
    recorded = raw.get("provenance", {}) if isinstance(raw, dict) else {}
    return config, recorded if isinstance(recorded, dict) else {}


@app.command("train")
@config_options
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="train this many seeds: seed, seed+1, ...")
@click.option("--test", is_flag=True, help="also measure the held-out test set")
@click.option("--out", type=PathType, default=Path("runs/train"), show_default=True, help="output folder")
@click.option("--resume", is_flag=True, help="continue from the checkpoints in --out (checkpoint-seed<N>.pt)")
@click.option("--checkpoint-interval", type=Finite(min=0), default=DEFAULT_INTERVAL, show_default=True,
              help="seconds between epoch-end checkpoints (the last epoch and a stop always write one)")
def train_command(
    config_path: Path, seeds: int, test: bool, out: Path, data_dir: Path | None, download: bool, device: str | None,
    resume: bool, checkpoint_interval: float,
) -> None:
    """Train one config (several seeds), writing config.yaml, metrics.json, curves.png and a checkpoint per seed.

    SIGINT or SIGTERM finishes the current batch, writes the checkpoint and exits 130; --resume carries on.

    \b
    Example (an exported config, three seeds, and its test accuracy):
      hpsearch train --config runs/demo/export/rank-1.yaml --seeds 3 --test
    """
    from hpsearch.objectives.plots import plot_curves
    from hpsearch.objectives.train import resolve_device  # torch: imported only by the commands that train

    spec, doc = exported_objective(config_path)
    if spec != CIFAR:  # an export of another objective: run that objective, not ResNet-18
        _train_other(spec, doc, config_path, seeds, test, out, data_dir, download)
        return
    config, recorded = load_config(config_path, device)
    resolve_device(config.device)  # fail before any work when the device is not there
    root = ensure_data(data_dir, download)
    make_splits(config, root)  # a damaged data folder fails here, before any progress bar
    if test:
        load_test_split(config, root)
    current = provenance.collect(root, [config.seed + i for i in range(seeds)])
    for line in provenance.differences(recorded, current):
        log.warning("this config was exported under different conditions: %s", line)
    out = _prepare_out(out)
    (out / "config.yaml").write_text(config.to_yaml())
    results = []
    with _stop_requests() as stop:
        for i in range(seeds):
            run_config = config.replace(seed=config.seed + i)
            keeper = FileCheckpoint(out / f"checkpoint-seed{run_config.seed}.pt", resume=resume)
            try:
                results.append(_train_with_progress(run_config, root, test, f"seed {run_config.seed}", keeper,
                                                    checkpoint_interval, stop))
            except KeyboardInterrupt:
                _say_how_to_resume(keeper, config_path, seeds, out, test)
                raise
            if stop and i + 1 < seeds:
                _say_how_to_resume(keeper, config_path, seeds, out, test)
                raise KeyboardInterrupt
    finals = [r.final_val_acc for r in results]
    metrics = {
        "command": "hpsearch " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None,
        "final_val_acc": _summary(finals),
        "runs": [r.to_dict() for r in results],
        "provenance": current,
    }
    if test:
        metrics["test_acc"] = _summary([r.test_acc for r in results if r.test_acc is not None])
        metrics["test_bacc"] = _summary([r.test_bacc for r in results if r.test_bacc is not None])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_curves([r.history for r in results], out / "curves.png", title=f"{config_path.name}")
    status = ", ".join(f"{r.status}" + (f" ({r.reason})" if r.reason else "") for r in results)
    summary = metrics["final_val_acc"]
    spread = f" ± {summary['std']:.4f}" if seeds > 1 else ""
    line = f"final validation accuracy {summary['mean']:.4f}{spread} over {seeds} seed(s) [{status}]"
    if test:
        line += f"; test accuracy {metrics['test_acc']['mean']:.4f}"
    click.echo(line)
    click.echo(f"wrote {out / 'config.yaml'}, {out / 'metrics.json'}, {out / 'curves.png'}")


@app.command("lr-find")
@config_options
@click.option("--out", type=PathType, default=Path("runs/lr-find"), show_default=True, help="output folder")
@click.option("--iterations", type=click.IntRange(min=10), default=200, show_default=True, help="steps of the sweep")
@click.option("--start-lr", type=Finite(min=0, min_open=True), default=1e-5, show_default=True,
              help="learning rate of the sweep's first step")
@click.option("--end-lr", type=Finite(min=0, min_open=True), default=10.0, show_default=True,
              help="learning rate of its last step (the sweep rises exponentially in between)")
def lr_find_command(
    config_path: Path, out: Path, iterations: int, start_lr: float, end_lr: float,
    data_dir: Path | None, download: bool, device: str | None,
) -> None:
    """LR range test: writes lr-find.png and lr-find.yaml with the suggested [base_lr, max_lr].

    \b
    Example:
      hpsearch lr-find --config examples/config-cpu.yaml --data-dir data
    """
    from hpsearch.objectives.lr_find import lr_range_test
    from hpsearch.objectives.plots import plot_range_test
    from hpsearch.objectives.train import resolve_device

    if start_lr >= end_lr:
        raise ConfigError(f"--start-lr ({start_lr}) must be below --end-lr ({end_lr})")
    spec, _ = exported_objective(config_path)
    if spec != CIFAR:
        raise ConfigError(f"{config_path} is an export of objective {spec!r}, and lr-find runs the LR range test "
                          f"of the built-in {CIFAR} objective; pass a config of that one")
    config, _ = load_config(config_path, device)
    resolve_device(config.device)
    root = ensure_data(data_dir, download)
    out = _prepare_out(out)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:  # steps done of total, not a spinner for minutes
        task = progress.add_task("LR range test steps", total=iterations)
        result = lr_range_test(config, data_dir=root, start_lr=start_lr, end_lr=end_lr, iterations=iterations,
                               on_step=lambda step, total: progress.update(task, completed=step))
    plot_range_test(result, out / "lr-find.png")
    suggestion = {"lr": result.suggestion(), "base_lr": result.base_lr, "max_lr": result.max_lr,
                  "iterations": len(result.lrs)}
    (out / "lr-find.yaml").write_text(yaml.safe_dump(suggestion, sort_keys=False))
    click.echo(f"suggested LR range: base_lr {result.base_lr:.3g}, max_lr {result.max_lr:.3g}")
    click.echo(f"wrote {out / 'lr-find.png'}, {out / 'lr-find.yaml'}")


def _train_other(spec: str, doc: dict, path: Path, seeds: int, test: bool, out: Path, data_dir: Path | None,
                 download: bool) -> None:
    from hpsearch.objectives.objective import get_objective

    if test:
        raise ConfigError(f"--test measures the CIFAR-10 test set, and {path} is an export of objective {spec!r}; "
                          "drop --test (a held-out set of your own belongs in your objective)")
    objective = get_objective(spec, search_path(path, doc))
    root = ensure_data(data_dir, download) if objective.needs_data else data_dir
    out = _prepare_out(out)
    metrics = train_export(spec, doc, path, seeds, root, out)
    value, metric = metrics["value"], metrics["metric"]
    mean = ("none" if value["mean"] is None else f"{value['mean']:.4g}" if seeds == 1
            else _mean_std(value["mean"], value["std"]))
    click.echo(f"objective {spec}: {metric['name']} {mean} over {seeds} run(s) ({metric['direction']})")
    click.echo(f"wrote {out / 'config.yaml'}, {out / 'metrics.json'}")


def _mean_std(mean: float, std: float) -> str:
    """`mean` to four significant digits and `std` to as many decimals (0.283 ± 0.007, 1234 ± 7)."""
    text = f"{mean:.4g}"
    if "e" in text:
        return f"{text} ± {std:.2g}"
    decimals = len(text.partition(".")[2])
    return f"{text} ± {std:.{decimals}f}"


def _say_how_to_resume(keeper: FileCheckpoint, config_path: Path, seeds: int, out: Path, test: bool) -> None:
    saved = f"saved a checkpoint in {keeper.path}" if keeper.path.exists() else "no checkpoint was written yet"
    again = (f"{invoked_as()} train --config {shlex.quote(str(config_path))} --seeds {seeds} "
             f"--out {shlex.quote(str(out))}{' --test' if test else ''} --resume")
    console.print(f"stopped: {saved}; carry on with: {again}", soft_wrap=True, markup=False, highlight=False)


def _train_with_progress(config: TrainConfig, root: Path, test: bool, label: str, checkpoint: FileCheckpoint,
                         checkpoint_interval: float, stop: list[int]) -> TrainResult:
    from hpsearch.objectives.train import train

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[metrics]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        epochs = progress.add_task(f"{label} epochs", total=config.epochs, metrics="")
        batches = progress.add_task("  training batches", total=None, metrics="")

        def on_step(b: int, total: int) -> None:
            # After the epoch's last batch comes its validation pass: the bar says so while it runs.
            last = b + 1 == total
            progress.update(batches, completed=b + 1, total=total,
                            description="  validation pass" if last else "  training batches")
            if stop:
                raise KeyboardInterrupt  # after this batch: train writes the checkpoint, then stops

        def on_epoch(r: EpochRecord) -> None:
            progress.update(epochs, advance=1, metrics=(
                f"train loss {r.train_loss:.3f} acc {r.train_acc:.3f} · validation loss {r.val_loss:.3f} "
                f"acc {r.val_acc:.3f} · lr {r.lr:.2g}"))

        result = train(config, data_dir=root, on_epoch=on_epoch, on_step=on_step, evaluate_test=test,
                       checkpoint=checkpoint, checkpoint_interval=checkpoint_interval)
        progress.remove_task(batches)
    if result.resumed_from_epoch is not None:
        console.print(f"{label}: resumed from epoch {result.resumed_from_epoch} ({checkpoint.path})")
    if result.status == "diverged":
        console.print(f"[red]{label}: {result.reason}[/red]")
    return result


@contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """SIGINT / SIGTERM append to the yielded list instead of killing the run; a second one stops at once."""
    requests: list[int] = []

    def request(signum: int, frame: object) -> None:
        if requests:
            raise KeyboardInterrupt
        requests.append(signum)

    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requests
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _summary(values: list[float]) -> dict[str, float | list[float]]:
    return {"mean": statistics.fmean(values) if values else float("nan"),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def _prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder")
    return writable_dir(out)  # an unwritable folder is one line, not a traceback

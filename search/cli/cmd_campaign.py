"""`hpsearch init | run | worker | storage-proxy`: campaigns on a shared storage."""

from __future__ import annotations

import multiprocessing
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hpsearch.objectives.checkpoint import DEFAULT_INTERVAL
from hpsearch.objectives.data import ensure_data
from hpsearch.search.cli.app import app
from hpsearch.search.cli.outputs import writable_dir
from hpsearch.search.cli.params import Finite
from hpsearch.search.cli.run_view import StageBars
from hpsearch.search.cli.service import until_sigterm
from hpsearch.search.errors import describe_campaign_failure
from hpsearch.search.invocation import invoked_as
from hpsearch.search.plan.objective import objective_for
from hpsearch.search.plan.plan import Plan, load_plan_file
from hpsearch.search.run.campaign import init_campaign
from hpsearch.search.run.processes import device_slots, run_in_process, start_processes, wait_processes
from hpsearch.search.run.waits import stored_plan
from hpsearch.search.run.worker import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, WorkerOptions
from hpsearch.search.run.worker_log import LogRelay
from hpsearch.search.watch.dashboard import artifact_dir
from hpsearch.search.watch.export import SEED_BLIND, progress_line, ranked_configs, seed_blind, write_export
from hpsearch.search.watch.status import is_done, under_budget
from hpsearch.search.watch.summary import summary_of, summary_to_dict
from hpsearch.storage import open_storage, redact_url
from hpsearch.storage.stores import store_for
from hpsearch.storage.urls import parse_storage_string, resolve_storage_string

console = Console(stderr=True)
PathType = click.Path(path_type=Path)


def storage_option(f: Any) -> Any:
    return click.option("--storage", envvar="HPSEARCH_STORAGE", default=None, metavar="S",
                        help="postgresql+psycopg2://..., grpc://HOST:PORT or a journal file "
                             "[env HPSEARCH_STORAGE; default ./hpsearch.journal]")(f)


def checkpoint_place(f: Any) -> Any:
    return click.option("--checkpoints", type=PathType, envvar="HPSEARCH_CHECKPOINT_DIR", default=None,
                        help="where trials checkpoint, a folder every worker shares [env HPSEARCH_CHECKPOINT_DIR; "
                             "default: the artifact store]")(f)


def worker_options(f: Any) -> Any:
    f = click.option("--checkpoint-interval", type=Finite(min=0), default=DEFAULT_INTERVAL,
                     show_default=True, help="seconds between a trial's epoch-end checkpoints (a stop always "
                                             "writes one)")(f)
    f = click.option("--fuse", type=click.IntRange(min=1), default=1, show_default=True,
                     help="train up to K trials of a stage as one model (same width, batch size, classes and data "
                          "fraction; SGD or AdamW); others run alone. On a GPU --per-device K with MPS is faster")(f)
    f = click.option("--no-checkpoints", is_flag=True, help="no trial checkpoints: a retried trial starts over")(f)
    f = checkpoint_place(f)
    f = click.option("--max-retry", type=click.IntRange(min=0), default=3, show_default=True,
                     help="retries of a trial whose worker died or was stopped")(f)
    f = click.option("--grace-period", type=click.IntRange(min=2), default=GRACE_PERIOD_S, show_default=True,
                     help="seconds without a heartbeat before a running trial counts as dead and is retried; "
                          "longer rides out longer outages, shorter hands a dead worker's trial on sooner")(f)
    f = click.option("--heartbeat-interval", type=click.IntRange(min=1), default=HEARTBEAT_INTERVAL_S,
                     show_default=True, help="seconds between a running trial's heartbeats")(f)
    f = click.option("--no-artifacts", is_flag=True, help="no curve images (trial notes are still written)")(f)
    f = click.option("--artifacts", type=PathType, default=None,
                     help="artifact store shared with the dashboard [env HPSEARCH_ARTIFACTS_DIR; ./artifacts]")(f)
    f = click.option("--download", is_flag=True, help="download CIFAR-10 when it is missing")(f)
    return click.option("--data-dir", type=PathType, default=None,
                        help="folder holding cifar-10-batches-py/ [default: $HPSEARCH_DATA_DIR]")(f)


def _options(storage: str | None, kw: dict[str, Any], plan: Plan, max_trials: int | None) -> WorkerOptions:
    data_dir = None
    if objective_for(plan).needs_data:  # an objective that reads no CIFAR-10 needs no folder of it
        data_dir = ensure_data(kw["data_dir"], kw["download"])
    if kw["grace_period"] <= kw["heartbeat_interval"]:
        raise click.BadParameter("--grace-period must exceed --heartbeat-interval", param_hint="--grace-period")
    artifacts = None if kw["no_artifacts"] else writable_dir(artifact_dir(kw["artifacts"]), "--artifacts")
    checkpoints = None if kw["no_checkpoints"] else checkpoint_dir(kw["checkpoints"], kw["artifacts"])
    return WorkerOptions(storage=storage, max_trials=max_trials, data_dir=data_dir,
                         heartbeat_interval=kw["heartbeat_interval"], grace_period=kw["grace_period"],
                         max_retry=kw["max_retry"], artifacts=artifacts, checkpoints=checkpoints,
                         checkpoint_interval=kw["checkpoint_interval"], fuse=kw["fuse"])


def checkpoint_dir(given: Path | None, artifacts: Path | None) -> Path:
    """--checkpoints (or $HPSEARCH_CHECKPOINT_DIR), else the artifact store's folder; checked writable."""
    if given is not None:
        return writable_dir(given, "--checkpoints")
    return writable_dir(artifact_dir(artifacts), "--artifacts")


@app.command("init")
@click.argument("plan_path", metavar="PLAN.yaml", type=PathType)
@storage_option
@click.option("--name", default=None, help="campaign name (default: the plan's name)")
def init_command(plan_path: Path, storage: str | None, name: str | None) -> None:
    """Write a campaign into the storage and open its first stage (idempotent for the same plan).

    \b
    Example (then start 'hpsearch worker cifar10-resnet18' on every GPU machine):
      hpsearch init examples/cifar10-resnet18.yaml --storage postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB
    """
    plan = load_plan_file(plan_path)
    if name is not None:
        plan = Plan.from_dict({**plan.to_dict(), "name": name}, where="--name")
    objective_for(plan)  # a typo here would stop every worker later; say it now, with exit 2
    created = init_campaign(open_storage(storage), plan)
    click.echo(f"campaign {plan.name!r} {'created' if created else 'already exists (same plan)'} "
               f"in {redact_url(storage or 'hpsearch.journal')}")
    where = f" --storage {shlex.quote(redact_url(storage))}" if storage else ""
    click.echo(f"start workers with: {invoked_as()} worker {shlex.quote(plan.name)}{where}; "
               f"follow it with: {invoked_as()} status {shlex.quote(plan.name)}{where}")


@app.command("worker")
@click.argument("name")
@storage_option
@click.option("--devices", default="all", show_default=True, help="cpu, all (GPUs, else CPU) or GPU ids like 0,1")
@click.option("--per-device", type=click.IntRange(min=1), default=1, show_default=True,
              help="worker processes per device")
@click.option("--max-trials", type=click.IntRange(min=1), default=None, help="stop each process after N trials")
@click.option("--wait-for-storage", type=Finite(min=0), default=0, show_default=True, metavar="SECONDS",
              help="wait this long for a storage that does not answer yet (refused, starting up); a bad URL or "
                   "password still fails at once")
@click.option("--wait-for-campaign", type=Finite(min=0), default=0, show_default=True, metavar="SECONDS",
              help="wait this long for 'hpsearch init' to write the campaign")
@worker_options
def worker_command(name: str, storage: str | None, devices: str, per_device: int, max_trials: int | None,
                   wait_for_storage: float, wait_for_campaign: float, **kw: Any) -> int:
    """Pull trials of campaign NAME until it is done (exit 0); SIGTERM hands the running trial back for a retry
    and exits 143 (130 for SIGINT), so a launcher replaces the stopped worker.

    \b
    Example (the storage URL in the environment keeps its password out of `ps`):
      export HPSEARCH_STORAGE=postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB
      hpsearch worker cifar10-resnet18 --devices all --data-dir /data --wait-for-storage 300
    """
    # Fails with exit 2, before any process starts, on bad input or once a wait runs out.
    plan = stored_plan(storage, name, storage_wait=wait_for_storage, campaign_wait=wait_for_campaign)
    options = _options(storage, kw, plan, max_trials)
    slots = device_slots(devices, per_device)
    if len(slots) == 1:  # one GPU per pod or array task: no child process to start and signal
        return run_in_process(name, replace(options, device=slots[0]))
    # Stopped by a signal (128 + its number): the trials were handed back, and the campaign is not done, so
    # an Indexed Job must not count this worker's index as complete.
    return wait_processes(start_processes(name, options, slots))


@app.command("run")
@click.argument("plan_path", metavar="PLAN.yaml", type=PathType)
@storage_option
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="local worker processes [default: one per GPU, else 2]")
@click.option("--out", type=PathType, default=None,
              help="where to export the best config and write the workers' log [runs/NAME]")
@worker_options
def run_command(plan_path: Path, storage: str | None, workers: int | None, out: Path | None, **kw: Any) -> int:
    """Init the campaign and run local workers until it is done, then export the best config.

    SIGTERM or SIGINT hands the running trials back, exports nothing and exits 143 (130 for SIGINT).

    \b
    Example (the CPU demo, about five minutes):
      hpsearch run examples/demo.yaml --download
    """
    plan = load_plan_file(plan_path)
    out = writable_dir(out or Path("runs") / plan.name)  # before any work: a bad --out costs nothing
    queue = multiprocessing.get_context("spawn").Queue()
    options = replace(_options(storage, kw, plan, None), log_queue=queue)  # checks the objective
    store = open_storage(storage)
    init_campaign(store, plan)
    gpus = device_slots("all", 1)  # every GPU once, or ["cpu"]
    count = workers or (2 if gpus == ["cpu"] else len(gpus))
    devices = [gpus[i % len(gpus)] for i in range(count)]  # round robin over the GPUs
    store_for(store).release()  # N workers and this process hold at most N + 1 PostgreSQL connections
    relay = LogRelay(queue, out / "workers.log",
                     lambda line: console.print(line, soft_wrap=True, markup=False, highlight=False))
    console.print(f"workers log to {out / 'workers.log'}")
    procs = start_processes(plan.name, options, devices)
    try:
        with StageBars(store, plan.name, console) as bars:
            code = wait_processes(procs, tick=lambda: (relay.drain(), bars.update()), interval=1.0)
    finally:
        relay.close()
    stages = bars.stages
    stored = bars.campaign  # loaded once for the bars, the failure and the export
    failure = stored.failure()
    if failure is not None:
        console.print(f"hpsearch: {describe_campaign_failure(plan.name, failure)}", soft_wrap=True)
        return 1
    if code >= 128 and not (stages and is_done(stages)):
        where = progress_line(stages) if stages else "see 'hpsearch status'"
        shown = f" --storage {redact_url(storage)}" if storage else ""
        me = invoked_as()
        console.print(f"hpsearch: stopped by a signal; the workers handed their trials back. campaign {plan.name}: "
                      f"{where}. No export written. Continue with: {me} run {plan_path}{shown} "
                      f"(or {me} worker {plan.name}{shown} on any machine)", soft_wrap=True)
        return code
    for i, p in enumerate(procs):
        if p.exitcode not in (0, None):
            why = relay.last_error.get(p.pid, f"see {out / 'workers.log'}")
            console.print(f"hpsearch: worker {i} (pid {p.pid}) exited with code {p.exitcode}: {why}", soft_wrap=True)
    if code != 0:
        return 1
    views = stored.views()  # one read of each stage's trials serves the ranking and the costs
    ranked = ranked_configs(stored, sys.maxsize, views)  # every final config: the export's first, the seed check
    best = ranked[:1]
    short = under_budget(stages)  # slots that failed on every retry: the campaign ran fewer trials than planned
    paths = write_export(best, plan.name, out, "yaml", summary_to_dict(summary_of(views, plan.cost_unit)),
                         under_budget=short)
    for line in short:
        console.print(f"hpsearch: {line}", soft_wrap=True, markup=False)
    metric = plan.metric
    click.echo(f"best config: {paths[0]} (mean {metric.label} {best[0].mean:.4f} over {len(best[0].values)} runs)")
    if seed_blind(r.values for r in ranked):
        console.print(f"hpsearch: note: {SEED_BLIND}", soft_wrap=True, markup=False)
    data = f" --data-dir {shlex.quote(str(options.data_dir))}" if options.data_dir else ""
    test = " --test" if plan.objective == "cifar10-resnet18" else ""  # the one objective with a held-out test set
    click.echo(f"reproduce it: {invoked_as()} train --config {shlex.quote(str(paths[0]))} "
               f"--seeds {len(best[0].values)}{data}{test}")
    return 3 if short else 0  # done, but under budget: a script must not take it for a full campaign


@app.command("storage-proxy")
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on; the proxy has no authentication, so serve other machines (0.0.0.0) only "
                   "behind a firewall or a Kubernetes NetworkPolicy that admits just the workers")
@click.option("--port", type=click.IntRange(1, 65535), default=13000, show_default=True, help="port to listen on")
def storage_proxy_command(storage: str | None, host: str, port: int) -> None:
    """Serve Optuna's gRPC storage proxy in front of PostgreSQL: workers then use grpc://HOST:PORT.

    Runs until Ctrl-C (exit 130) or SIGTERM (exit 0).

    \b
    Example, on a machine the workers reach (its PostgreSQL URL in the environment, not in `ps`):
      HPSEARCH_STORAGE=postgresql+psycopg2://USER:PASSWORD@db:5432/hpsearch \\
        hpsearch storage-proxy --host 0.0.0.0 --port 13000
    """
    from hpsearch.storage import serve_storage_proxy

    url = resolve_storage_string(storage)
    if parse_storage_string(url).kind != "rdb":  # also refuses the default journal before creating it
        raise click.BadParameter(f"{redact_url(url)!r} is not PostgreSQL; the proxy serves a "
                                 "postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB storage", param_hint="--storage")
    click.echo(f"serving {redact_url(url)} on grpc://{host}:{port}")
    with until_sigterm("storage proxy"):
        serve_storage_proxy(url, host, port)

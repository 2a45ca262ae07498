"""`hpsearch list | status | export | dashboard | report`: the campaigns of a storage, where one stands, its best
configs as files, the campaign live in optuna-dashboard, or written up as one HTML file."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
from optuna.artifacts.exceptions import ArtifactNotFound
from rich.console import Console, Group, RenderableType
from rich.live import Live

from hpsearch.search.cli.app import app
from hpsearch.search.cli.cmd_campaign import checkpoint_place, storage_option
from hpsearch.search.cli.outputs import writable_dir
from hpsearch.search.cli.params import Finite
from hpsearch.search.cli.progress import running_table, running_trials
from hpsearch.search.cli.service import until_sigterm
from hpsearch.search.errors import OptionError, describe_campaign_failure
from hpsearch.search.run.campaign import Campaign, load_stored_plan
from hpsearch.search.run.checkpoints import open_store
from hpsearch.search.run.stored_plans import the_campaign
from hpsearch.search.watch.dashboard import artifact_dir, make_dashboard_server, url_of
from hpsearch.search.watch.export import ranked_configs, unfinished, write_export, write_weights
from hpsearch.search.watch.status import StageStatus, is_done, status_of, status_view, under_budget
from hpsearch.search.watch.summary import summary_of, summary_to_dict
from hpsearch.storage import open_storage, redact_url

PathType = click.Path(path_type=Path)


@app.command("list")
@storage_option
def list_command(storage: str | None) -> None:
    """The campaigns in the storage: state, current stage, its progress, device-hours and best so far.

    \b
    Example:
      hpsearch list --storage postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB
    """
    from rich.console import Console

    from hpsearch.search.watch.listing import campaign_lines, campaign_table

    lines = campaign_lines(open_storage(storage, create=False))
    if not lines:
        click.echo(f"no campaigns in {redact_url(storage or 'hpsearch.journal')}; "
                   "start one with 'hpsearch init PLAN' or 'hpsearch run PLAN'")
        return
    Console().print(campaign_table(lines))


@app.command("dashboard")
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on; 0.0.0.0 shows the dashboard to the whole network")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="port to listen on (0: any free one, printed at start)")
@click.option("--artifacts", type=PathType, default=None,
              help="folder of the trials' artifacts (curves) [env HPSEARCH_ARTIFACTS_DIR; default ./artifacts]")
def dashboard_command(storage: str | None, host: str, port: int, artifacts: Path | None) -> None:
    """Serve optuna-dashboard over the campaign's storage until Ctrl-C (exit 130) or SIGTERM (exit 0).

    \b
    Example (then open http://127.0.0.1:8080/dashboard):
      hpsearch dashboard --storage hpsearch.journal --artifacts artifacts
    """
    opened = open_storage(storage, create=False)  # a mistyped journal path is not a new, empty campaign
    server = make_dashboard_server(opened, host, port, writable_dir(artifact_dir(artifacts), "--artifacts"))
    click.echo(f"optuna-dashboard for {redact_url(storage or 'hpsearch.journal')} at {url_of(server, host)} "
               "(Ctrl-C stops it)", err=False)
    try:
        with until_sigterm("optuna-dashboard", stop=server.shutdown):
            server.serve_forever()
    finally:
        server.server_close()


@app.command("report")
@click.argument("name", required=False)
@storage_option
@click.option("--out", type=PathType, default=None, help="folder for NAME-report.html [runs/NAME/report]")
@click.option("--runs", type=PathType, default=None,
              help="folder of 'hpsearch train --test' outputs whose test accuracy the report shows")
def report_command(name: str | None, storage: str | None, out: Path | None, runs: Path | None) -> None:
    """Write one self-contained HTML report of a campaign: spaces, history, importances, curves, seeds.

    NAME may be left out when the storage holds one campaign.

    \b
    Example (writes runs/demo/report/demo-report.html):
      hpsearch report demo
    """
    store = open_storage(storage, create=False)
    name = the_campaign(store, name, "report")
    load_stored_plan(store, name)  # an unknown campaign is one line, before any folder is made for it
    out = writable_dir(out or Path("runs") / name / "report")
    command = ["hpsearch", "report", name, "--out", str(out)]
    if storage:
        command += ["--storage", redact_url(storage)]
    if runs is not None:
        command += ["--runs", str(runs)]
    from hpsearch.search.watch.report import write_report  # matplotlib only for the report

    path = write_report(store, name, out, shlex.join(command), runs)
    click.echo(f"wrote {path}")


@app.command("status")
@click.argument("name", required=False)
@storage_option
@click.option("--watch", is_flag=True, help="refresh until the campaign ends, with the running trials' progress")
@click.option("--interval", type=Finite(min=0.1), default=2.0, show_default=True, metavar="SECONDS",
              help="seconds between refreshes with --watch")
def status_command(name: str | None, storage: str | None, watch: bool, interval: float) -> None:
    """Per stage: the space, trials done / pruned / running / waiting / failed, the best so far.

    NAME may be left out when the storage holds one campaign.

    \b
    Example:
      hpsearch status cifar10-resnet18 --watch
    """
    store = open_storage(storage, create=False)
    stored = Campaign.load(store, the_campaign(store, name, "status"))
    name = stored.plan.name

    def look() -> tuple[list[StageStatus], RenderableType]:
        views = stored.views()  # one read of each stage's trials serves the status and the costs
        plan, failure = stored.plan, stored.failure()
        stages = status_of(views, plan.metric)
        failed = describe_campaign_failure(name, failure) if failure else None
        view = status_view(name, stages, summary_of(views, plan.cost_unit), plan.metric, plan.cost_unit, failed)
        running = running_table(running_trials(views)) if watch else None  # what moves between trials' ends
        return stages, view if running is None else Group(view, running)

    stages, view = look()
    if not watch:
        Console().print(view)
        return
    with Live(view, console=Console(), refresh_per_second=4) as live:
        while not is_done(stages) and stored.failure() is None:  # a failed campaign is over too
            time.sleep(interval)
            stages, view = look()
            live.update(view)


@app.command("export")
@click.argument("name", required=False)
@storage_option
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="how many of the best configs to write, best first: rank-1, rank-2, ...")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="file format of the configs (both read by 'hpsearch train --config')")
@click.option("--out", type=PathType, default=None, help="output folder [runs/NAME/export]")
@click.option("--weights", is_flag=True, help="also the final stage's trained weights, every seed: rank-N.seed-S.pt")
@click.option("--artifacts", type=PathType, default=None,
              help="the workers' artifact store [env HPSEARCH_ARTIFACTS_DIR; ./artifacts]")
@checkpoint_place
def export_command(name: str | None, storage: str | None, top: int, fmt: str, out: Path | None, weights: bool,
                   artifacts: Path | None, checkpoints: Path | None) -> None:
    """Write the best configs, ranked by the final stage's mean over seeds, as files `train --config` reads.

    NAME may be left out when the storage holds one campaign.

    \b
    Example (then: hpsearch train --config runs/demo/export/rank-1.yaml --test):
      hpsearch export demo --top 3
    """
    store = open_storage(storage, create=False)
    stored = Campaign.load(store, the_campaign(store, name, "export"))
    name = stored.plan.name
    views = stored.views()  # one read of each stage's trials serves the ranking, the status and the costs
    best = ranked_configs(stored, top, views)
    stages = status_of(views, stored.plan.metric)
    note = unfinished(stored, stages)
    short = under_budget(stages)
    folder = writable_dir(out or Path("runs") / name / "export")
    paths = write_export(best, name, folder, fmt, summary_to_dict(summary_of(views, stored.plan.cost_unit)),
                         unfinished=note, under_budget=short)
    for line in short:
        click.echo(line)
    if note:
        click.echo(f"campaign {name} is unfinished ({note}): these are the best configs so far")
    if weights:
        place = checkpoints or artifact_dir(artifacts)
        if not place.is_dir():
            raise OptionError(f"no folder {str(place)!r} to take the weights from; pass --checkpoints (or "
                              "--artifacts) with the folder the workers kept checkpoints in")
        try:
            paths += write_weights(stored, views, best, folder, open_store(place))
        except ArtifactNotFound:
            raise OptionError(f"the weights are not in {str(place)!r}; pass --checkpoints (or --artifacts) with "
                              "the folder the workers kept checkpoints in") from None
        if not any(p.suffix == ".pt" for p in paths):
            raise OptionError(f"campaign {name} kept no weights: only a completed final stage with checkpoints "
                              "on keeps them (workers without --no-checkpoints)")
    for p in paths:
        click.echo(str(p))

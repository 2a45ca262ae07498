"""`hpsearch list | dashboard | report`: the campaigns of a storage, one live in optuna-dashboard, or written up as
one HTML file."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from hpsearch.search.cli.app import app
from hpsearch.search.cli.cmd_campaign import storage_option
from hpsearch.search.cli.outputs import writable_dir
from hpsearch.search.cli.service import until_sigterm
from hpsearch.search.run.campaign import load_stored_plan
from hpsearch.search.watch.dashboard import artifact_dir, make_dashboard_server, url_of
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
@click.argument("name")
@storage_option
@click.option("--out", type=PathType, default=None, help="folder for NAME-report.html [runs/NAME/report]")
@click.option("--runs", type=PathType, default=None,
              help="folder of 'hpsearch train --test' outputs whose test accuracy the report shows")
def report_command(name: str, storage: str | None, out: Path | None, runs: Path | None) -> None:
    """Write one self-contained HTML report of a campaign: spaces, history, importances, curves, seeds.

    \b
    Example (writes runs/demo/report/demo-report.html):
      hpsearch report demo
    """
    store = open_storage(storage, create=False)
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

"""`hpsearch dashboard | report`: watch a campaign live in optuna-dashboard, or write it up as one HTML file."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from hpsearch.search.app import app
from hpsearch.search.cmd_campaign import storage_option
from hpsearch.search.dashboard import artifact_dir, make_dashboard_server, url_of
from hpsearch.search.outputs import writable_dir
from hpsearch.search.service import until_sigterm
from hpsearch.storage import open_storage, redact_url

PathType = click.Path(path_type=Path)


@app.command("dashboard")
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on; 0.0.0.0 shows the dashboard to the whole network")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--artifacts", type=PathType, default=None,
              help="folder of the trials' artifacts (curves) [env HPSEARCH_ARTIFACTS_DIR; default ./artifacts]")
def dashboard_command(storage: str | None, host: str, port: int, artifacts: Path | None) -> None:
    """Serve optuna-dashboard over the campaign's storage until Ctrl-C (exit 130) or SIGTERM (exit 0)."""
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
@click.option("--out", type=PathType, required=True, help="folder for NAME-report.html")
@click.option("--runs", type=PathType, default=None,
              help="folder of 'hpsearch train --test' outputs whose test accuracy the report shows")
def report_command(name: str, storage: str | None, out: Path, runs: Path | None) -> None:
    """Write one self-contained HTML report of a campaign: spaces, history, importances, curves, seeds."""
    command = ["hpsearch", "report", name, "--out", str(out)]
    if storage:
        command += ["--storage", redact_url(storage)]
    if runs is not None:
        command += ["--runs", str(runs)]
    from hpsearch.search.report import write_report  # matplotlib only for the report

    path = write_report(open_storage(storage, create=False), name, writable_dir(out), shlex.join(command), runs)
    click.echo(f"wrote {path}")

"""optuna-dashboard over a campaign's storage, with the trials' artifacts (curves) from a folder."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage

from hpsearch.search.errors import OptionError

log = logging.getLogger(__name__)

ARTIFACTS_ENV = "HPSEARCH_ARTIFACTS_DIR"
DEFAULT_ARTIFACTS = Path("artifacts")


def artifact_dir(given: Path | None) -> Path:
    """--artifacts, else $HPSEARCH_ARTIFACTS_DIR, else ./artifacts."""
    if given is not None:
        return given
    return Path(os.environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


def make_dashboard_server(storage: BaseStorage, host: str, port: int, artifacts: Path) -> WSGIServer:
    """Bind the dashboard to host:port; a port in use is bad input, said in one line before anything is served."""
    artifacts.mkdir(parents=True, exist_ok=True)
    app = optuna_dashboard.wsgi(storage, artifact_store=FileSystemArtifactStore(str(artifacts)))
    try:
        return make_server(host, port, app, handler_class=_QuietHandler)
    except socket.gaierror as e:
        raise OptionError(f"--host {host!r} does not resolve ({e.strerror}); use an address like 127.0.0.1") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise OptionError(f"port {port} on {host} is already in use; pick another with --port") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise OptionError(f"--host {host!r} is not an address of this machine; use 127.0.0.1 or 0.0.0.0") \
                from None
        if e.errno == errno.EACCES:
            raise OptionError(f"port {port} needs privileges to bind; pick one above 1023 with --port") from None
        raise


def url_of(server: WSGIServer, host: str) -> str:
    shown = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{server.server_port}/dashboard"

"""Serve a PostgreSQL storage over Optuna's gRPC proxy, so a large fleet shares one connection pool."""

from __future__ import annotations

import logging
import socket
import warnings
from concurrent.futures import ThreadPoolExecutor

import optuna
from optuna.exceptions import ExperimentalWarning

from hpsearch.storage.errors import StorageError
from hpsearch.storage.factory import open_storage
from hpsearch.storage.proxy_calls import serve_calls
from hpsearch.storage.stores import store_for
from hpsearch.storage.stores.backends import postgres_backend
from hpsearch.storage.urls import redact_url, resolve_storage_string

logger = logging.getLogger(__name__)

PROXY_THREADS = 10  # concurrent requests served (Optuna's default), each holding one DB connection


def serve_storage_proxy(url: str | None, host: str, port: int) -> None:
    """Serve the PostgreSQL storage `url` (None: `$HPSEARCH_STORAGE`) as `grpc://host:port` until stopped."""
    url = resolve_storage_string(url)
    # One connection per server thread and no more: the proxy exists to share one pool among many workers.
    storage = open_storage(url, pool_size=PROXY_THREADS)
    rdb = postgres_backend(storage)
    if rdb is None:
        raise StorageError(
            f"the storage proxy serves PostgreSQL only, not {redact_url(url)!r};"
            " give --storage postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB"
        )
    _check_port_free(host, port)
    logger.info("storage proxy for %s listening on %s:%d", redact_url(url), host, port)
    # Not `using_experimental_optuna`: its lock would be held for as long as the server runs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        try:
            # Optuna asks for its cached storage here: without the cache every client request
            # re-reads whole studies from the database.
            served = optuna.storages.get_storage(storage)
            store = store_for(storage)  # PostgreSQL's: enqueue and attribute writes in one transaction each
            serve_calls(served, store.enqueue_by_id, store.write_by_id, store.write_study_system_by_id)
            optuna.storages.run_grpc_proxy_server(
                served,
                host=host,
                port=port,
                thread_pool=ThreadPoolExecutor(max_workers=PROXY_THREADS),
            )
        except RuntimeError as exc:  # grpc's "Failed to bind" when the port was taken meanwhile
            raise StorageError(f"cannot listen on {host}:{port} ({exc}); pick another --port") from None


def _check_port_free(host: str, port: int) -> None:
    # gRPC binds with SO_REUSEPORT, so a second proxy on a busy port would start quietly and share
    # the traffic with the first. A plain bind without it fails when anyone listens there.
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise StorageError(
            f"cannot resolve host {host!r} to listen on ({exc.strerror}); fix --host"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            probe.bind(address)
        except OSError as exc:
            raise StorageError(
                f"cannot listen on {host}:{port}: {exc.strerror};"
                " stop what uses the port or pick another --port"
            ) from None

"""Shared fixtures: a throwaway PostgreSQL cluster for the whole session, one fresh database per test."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

# One thread per test process (and the workers it starts, which inherit the environment): the suite runs its
# tests in parallel processes (pytest-xdist), and OpenMP threads of several processes on the same cores spin
# against each other: a CPU training test took three times the CPU seconds with two threads as with one.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Inductor compiles its kernels in the test process: a pool of compile workers costs more to start than the few
# kernels a CPU test compiles (40 s of CPU more on a cold cache).
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

if TYPE_CHECKING:
    from pgcluster import PostgresServer  # bench/pgcluster.py


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session; fails (never skips) when PostgreSQL is not installed."""
    # Imported here so that test folders without PostgreSQL (the GPU check) collect without psycopg2.
    from tests.bench.scripts import bench_script

    pgcluster = bench_script("pgcluster")  # the benchmarks start the same throwaway clusters
    PostgresServer, find_postgres_bindir = pgcluster.PostgresServer, pgcluster.find_postgres_bindir

    bindir = find_postgres_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH, via pg_config"
            " or in /usr/lib/postgresql/*/bin; install the postgresql package",
            pytrace=False,
        )
    server = PostgresServer(bindir)
    try:
        server.init()
        server.start()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        server.destroy()
        pytest.fail(f"cannot start a throwaway PostgreSQL cluster: {exc}", pytrace=False)
    yield server
    server.destroy()


@pytest.fixture
def pg_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to a fresh, empty database of its own for this test."""
    import psycopg2

    if not pg_server.is_running():  # an earlier test stopped it and failed before starting it again
        pg_server.start()
    name = pg_server.create_database(request.node.name)
    yield pg_server.url_for(name)
    # A test that left the server stopped leaves its database behind; the cluster goes at session end.
    with contextlib.suppress(psycopg2.OperationalError):
        pg_server.drop_database(name)


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands and workers that take the default artifact store (curves, checkpoints) write to a temporary
    folder, not to ./artifacts of the checkout; worker processes inherit it through the environment."""
    monkeypatch.setenv("HPSEARCH_ARTIFACTS_DIR", str(tmp_path_factory.mktemp("artifacts")))

"""A throwaway PostgreSQL cluster started from the server binaries (initdb, pg_ctl), for tests and benchmarks."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg2

_PG_USER = "hpsearch"
_SERVER_USER_FALLBACK = "hpsearch-pg"  # created only when running as root and `postgres` is missing
_PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",  # ~80 concurrent clients in the distributed tests, with room to spare
    # A throwaway cluster needs no durability; skipping fsync keeps test setup fast.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def find_postgres_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, `pg_config --bindir` or a glob."""
    candidates: list[str] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(os.path.dirname(os.path.realpath(initdb)))  # follow symlinks to the real bindir
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(result.stdout.strip())
    newest_first = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(re.sub(r"\D", "", p) or 0), reverse=True
    )
    candidates += newest_first
    for folder in candidates:
        if folder and all(os.access(os.path.join(folder, p), os.X_OK) for p in _PG_PROGRAMS):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    # initdb refuses to run as root; CI runs tests as root, so the server runs as someone else.
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _SERVER_USER_FALLBACK):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _SERVER_USER_FALLBACK],
        check=True,
        capture_output=True,
    )
    return _SERVER_USER_FALLBACK


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1, with role `hpsearch` and a random password."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # URL-special characters on purpose: they exercise quoting and redaction.
        self.password = f"pw@{secrets.token_hex(8)}/x"
        self.port = _free_port()
        self._user = _server_user()
        self._root = Path(tempfile.mkdtemp(prefix="hpsearch-pg-"))
        self._data = self._root / "data"
        self._log = self._root / "server.log"
        self._db_counter = itertools.count()
        if self._user is not None:
            shutil.chown(self._root, user=self._user)

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None and shutil.which("runuser"):
            command = ["runuser", "-u", self._user, "--", *command]
        elif self._user is not None:  # no util-linux runuser (e.g. Alpine): su does the same
            command = ["su", self._user, "-s", "/bin/sh", "-c", shlex.join(command)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            log = self._log.read_text().strip().splitlines()[-3:] if self._log.exists() else []
            raise RuntimeError(f"{args[0]} ({args[-1]}) failed: {tail[0]} {log}")

    def init(self) -> None:
        """Create the cluster: role `hpsearch` with a password, on 127.0.0.1, its socket in its own folder."""
        pwfile = self._root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._user is not None:
            shutil.chown(pwfile, user=self._user)
        self._run(
            "initdb", "-D", str(self._data), "-U", _PG_USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        settings = {**_SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self._root}'"}
        with open(self._data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server, cutting every client off (as a failover would); committed data stays."""
        # "fast", not "immediate": with synchronous_commit off, a crash-like stop loses recent commits.
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def is_running(self) -> bool:
        """Whether the server is up (pg_ctl removes the pid file once it has stopped)."""
        return (self._data / "postmaster.pid").exists()

    def restart(self) -> None:
        """Stop and start the server; clients must reconnect."""
        self.stop()
        self.start()

    def url_for(self, dbname: str, *, password: str | None = None, port: int | None = None) -> str:
        """A `postgresql+psycopg2://` URL for database `dbname` (override password or port to break it)."""
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql+psycopg2://{_PG_USER}:{secret}@127.0.0.1:{port or self.port}/{dbname}"

    def _admin(self, sql: str) -> None:
        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=_PG_USER, password=self.password, dbname="postgres"
        )
        try:
            connection.autocommit = True  # CREATE/DROP DATABASE refuse to run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create_database(self, hint: str) -> str:
        """Create an empty database whose name starts from `hint`; return its name."""
        name = f"t{next(self._db_counter)}_" + re.sub(r"[^a-z0-9_]", "_", hint.lower())[:40]
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing its clients' connections so they free server slots."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        """Stop the server if it runs and delete the cluster's files."""
        if self.is_running():
            self.stop()
        shutil.rmtree(self._root, ignore_errors=True)

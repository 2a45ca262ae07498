"""`storage-proxy` and `dashboard` as real processes: loopback by default, any PostgreSQL spelling for the proxy,
and SIGTERM (docker stop, a rolling update) ends them with exit code 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hpsearch.search.cli import main
from hpsearch.storage import open_storage
from tests.storage.test_storage_proxy import _free_port


def _serve(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hpsearch.search", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


def test_storage_proxy_help_shows_the_loopback_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["storage-proxy", "--help"]) == 0
    assert "[default: 127.0.0.1]" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_storage_proxy_takes_a_postgres_url_listens_on_loopback_and_exits_0_on_sigterm(
        pg_url: str, tmp_path: Path) -> None:
    port = _free_port()
    short = "postgres://" + pg_url.split("://", 1)[1]  # what Heroku-style tools print
    proc = _serve(["storage-proxy", "--port", str(port)], {"HPSEARCH_STORAGE": short}, tmp_path)
    try:
        open_storage(f"grpc://127.0.0.1:{port}").get_all_studies()  # waits for the proxy to answer
    except BaseException:
        proc.kill()
        raise
    code, out = _stop(proc)
    assert code == 0, out
    assert f"on grpc://127.0.0.1:{port}" in out and "Traceback" not in out


def test_storage_proxy_refuses_a_journal_without_creating_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "hpsearch.journal"
    assert main(["storage-proxy", "--storage", str(journal)]) == 2
    assert "is not PostgreSQL" in capsys.readouterr().err
    assert not journal.exists()


def test_dashboard_exits_0_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "j.journal").touch()
    port = _free_port()
    proc = _serve(["dashboard", "--storage", str(tmp_path / "j.journal"), "--port", str(port),
                   "--artifacts", str(tmp_path / "a")], {}, tmp_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(proc.communicate()[0]) from None
            time.sleep(0.2)
    code, out = _stop(proc)
    assert code == 0, out
    assert "Traceback" not in out

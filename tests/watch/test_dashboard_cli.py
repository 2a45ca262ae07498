import socket
from pathlib import Path

import pytest

from hpsearch.search.cli import (
    cmd_watch,  # noqa: F401  (registers the commands)
    main,
)


def test_port_in_use_is_one_line_of_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "j.journal").touch()  # the dashboard serves an existing storage only
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["dashboard", "--storage", str(tmp_path / "j.journal"), "--port", str(port),
                     "--artifacts", str(tmp_path / "a")])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"hpsearch: error: port {port} on 127.0.0.1 is already in use; pick another with --port\n"


@pytest.mark.slow
def test_report_command_writes_the_file_and_records_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           campaign) -> None:
    out = tmp_path / "out"
    assert main(["report", "watch", "--storage", str(campaign.path), "--out", str(out)]) == 0
    text = (out / "watch-report.html").read_text()
    assert f"hpsearch report watch --out {out} --storage {campaign.path}" in text
    assert f"wrote {out / 'watch-report.html'}" in capsys.readouterr().out


@pytest.mark.slow
def test_report_writes_under_runs_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str], campaign,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["report", "watch", "--storage", str(campaign.path)]) == 0
    assert (tmp_path / "runs" / "watch" / "report" / "watch-report.html").is_file()
    capsys.readouterr()
    assert main(["report", "nope", "--storage", str(campaign.path)]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "nope").exists()

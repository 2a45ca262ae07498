"""bench/journal_lock.py still runs end to end, and refuses bad arguments in one line."""

from __future__ import annotations

import pytest

from tests.bench.scripts import bench_script


@pytest.mark.slow
def test_journal_lock_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    bench_script("journal_lock").main(["--workers", "1,2", "--trials", "8", "--repeats", "1"])
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[0] == "W" and [r.split()[0] for r in rows[1:]] == ["1", "2"]
    assert all(r.endswith("x") for r in rows[1:])


@pytest.mark.parametrize("argv", [["--workers", "x"], ["--workers", "4", "--trials", "2"]])
def test_journal_lock_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_script("journal_lock").main(argv)
    assert exit_.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1

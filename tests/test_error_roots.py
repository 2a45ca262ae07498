"""Each package has its own error root; the CLI turns every one of them into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.objectives.errors import ConfigError, DataError, ObjectiveError
from hpsearch.search.cli import BAD_INPUT_ERRORS, cmd_watch, main
from hpsearch.search.errors import OptionError, PlanError, SearchError
from hpsearch.storage.errors import StorageError

ROOTS = (ObjectiveError, SearchError, StorageError)


def test_the_roots_are_independent() -> None:
    for root in ROOTS:
        assert root.__bases__ == (Exception,)
        assert not any(issubclass(root, other) for other in ROOTS if other is not root)
    assert set(BAD_INPUT_ERRORS) == set(ROOTS)


@pytest.mark.parametrize("error", [ConfigError, DataError, PlanError, OptionError, StorageError])
def test_every_package_error_is_one_line_and_exit_2(error: type[Exception], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error("something is wrong\nwith this input; fix it like so")

    monkeypatch.setattr(cmd_watch, "open_storage", fail)  # fault injection: the command's first step
    assert main(["status", "c", "--storage", str(tmp_path / "x.journal")]) == 2
    err = capsys.readouterr().err
    assert err == "hpsearch: error: something is wrong with this input; fix it like so\n"


def test_a_bug_is_not_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(cmd_watch, "open_storage", fail)
    with pytest.raises(KeyError):
        main(["status", "c", "--storage", str(tmp_path / "x.journal")])

"""What a user looks for in `--help`: every option says what it does, and the main commands show an example."""

from __future__ import annotations

import click
import pytest

from hpsearch.search.cli import app, main

MAIN_COMMANDS = ("run", "init", "worker", "status", "export", "train", "lr-find", "report", "dashboard", "list",
                 "storage-proxy")


@pytest.mark.parametrize("name", sorted(app.commands))
def test_every_option_has_help(name: str) -> None:
    missing = [p.opts[0] for p in app.commands[name].params if isinstance(p, click.Option) and not p.help]
    assert not missing, f"hpsearch {name}: {missing} have no help text"


@pytest.mark.parametrize("name", MAIN_COMMANDS)
def test_main_commands_show_an_example(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Example" in text
    example = text.split("Example", 1)[1].splitlines()[1].strip()
    assert example.startswith(("hpsearch ", "export ", "HPSEARCH_STORAGE=")), example

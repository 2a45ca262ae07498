"""The command line imports its command modules at the top, without a cycle, and without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ("dashboard", "export", "init", "list", "lr-find", "report", "run", "status", "storage-proxy", "train",
            "worker")


@pytest.mark.parametrize("first", ["hpsearch.search.cli", "hpsearch.search.cli.cmd_campaign",
                                   "hpsearch.search.cli.cmd_train", "hpsearch.search.cli.cmd_watch"])
def test_any_module_imports_first_and_help_lists_every_command_without_torch(first: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({first!r}); from hpsearch.search.cli import app, main; "
            "assert sorted(app.commands) == sorted(sys.argv[1:]), sorted(app.commands); "
            "assert 'torch' not in sys.modules, 'torch imported by the CLI itself'; "
            "sys.exit(main(['--help']))")
    result = subprocess.run([sys.executable, "-c", code, *COMMANDS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in COMMANDS)

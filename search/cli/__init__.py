"""The `hpsearch` command line: `main(argv) -> exit code`; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import enum
import logging
import sys

import click

# Each command module adds its commands to `app` when imported; torch is imported only inside the commands
# that train, so `hpsearch --help` and the campaign commands stay light.
from hpsearch.search.cli import cmd_campaign, cmd_train, cmd_watch  # noqa: F401
from hpsearch.search.cli.app import app
from hpsearch.search.errors import BAD_INPUT_ERRORS, CampaignFailed

__all__ = ["BAD_INPUT_ERRORS", "ExitStatus", "app", "entry", "main"]


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status instead of exiting, so tests can call it in-process."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = argv if argv is not None else sys.argv[1:]
    try:
        result = app.main(args=args, prog_name="hpsearch", standalone_mode=False)
    except BAD_INPUT_ERRORS as e:
        _fail(str(e))
        return ExitStatus.BAD_INPUT
    except CampaignFailed as e:  # the objective keeps failing: not the command line's fault, but one line too
        _fail(str(e))
        return ExitStatus.ERROR
    except click.UsageError as e:
        ctx = e.ctx
        where = ctx.command_path if ctx is not None else "hpsearch"
        _fail(f"{e.format_message().rstrip('.')}; see '{where} --help'")
        return ExitStatus.BAD_INPUT
    except click.ClickException as e:
        _fail(e.format_message())
        return ExitStatus.BAD_INPUT
    except (click.Abort, KeyboardInterrupt):
        _fail("interrupted")
        return ExitStatus.INTERRUPTED
    return int(result) if isinstance(result, int) else ExitStatus.OK


def _fail(message: str) -> None:
    print(f"hpsearch: error: {' '.join(message.split())}", file=sys.stderr)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())

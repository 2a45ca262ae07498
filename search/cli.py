"""The `hpsearch` command line: `main(argv) -> exit code`; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import enum
import logging
import sys

import click

from hpsearch.objectives.errors import ObjectiveError
from hpsearch.search.errors import SearchError
from hpsearch.storage.errors import StorageError

# Each package's root of bad-input errors; the one place where they become exit code 2 and one line.
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (ObjectiveError, SearchError, StorageError)


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hpsearch")
def app() -> None:
    """Coarse-to-fine hyperparameter search for ResNet-18 on CIFAR-10, on Optuna."""


def _register_commands() -> None:
    # Each module adds its commands to `app`; imported here so `hpsearch --help` lists them all.
    from hpsearch.search import cmd_campaign, cmd_train, cmd_watch  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status instead of exiting, so tests can call it in-process."""
    _register_commands()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = argv if argv is not None else sys.argv[1:]
    try:
        result = app.main(args=args, prog_name="hpsearch", standalone_mode=False)
    except BAD_INPUT_ERRORS as e:
        _fail(str(e))
        return ExitStatus.BAD_INPUT
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

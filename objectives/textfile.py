"""Reading a small text file given on the command line (a config, a plan): size, encoding, one-line errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_TEXT_BYTES = 1_000_000  # a config or a plan is a page of YAML; refuse /dev/zero or a wrong file at once


def read_small_text(path: str | Path, what: str, error: type[Exception], limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of `path`; a missing, unreadable, oversized or non-UTF-8 file raises `error` with one line
    naming `what` (`config file`, `plan file`) and the fix. At most `limit` + 1 bytes are ever read."""
    where = str(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer; a regular file ignores the flag.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            kind = os.fstat(f.fileno()).st_mode
            if stat.S_ISFIFO(kind) or stat.S_ISSOCK(kind) or stat.S_ISDIR(kind):
                what_it_is = "a folder" if stat.S_ISDIR(kind) else "a pipe or socket, not a file"
                raise error(f"{what} {where!r} is {what_it_is}; pass a YAML file")
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{what} {where!r} does not exist; pass an existing YAML file") from None
    except OSError as e:
        raise error(f"cannot read {what} {where!r}: {e.strerror}; check the path") from None
    if len(raw) > limit:
        raise error(f"{what} {where!r} is over {limit / 1_000_000:g} MB; pass a {what.split()[0]} YAML file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} {where!r} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); "
                    "save it as UTF-8") from None

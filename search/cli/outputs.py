"""Where a command writes: checked before any work starts, so a bad --out costs one line, not a campaign."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hpsearch.search.errors import OptionError


def writable_dir(path: Path, option: str = "--out") -> Path:
    """Create `path` if needed and prove it takes a file; OptionError naming `option` when it cannot."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise OptionError(f"{option} {str(path)!r} is not a writable folder ({reason}); "
                            f"choose another {option}") from None
    return path

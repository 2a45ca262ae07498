"""Command-line value types that click's own ranges let through."""

from __future__ import annotations

import math
from typing import Any

import click


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf: nan compares false with every bound, so a plain range takes
    it, and a worker with `--checkpoint-interval nan` would never checkpoint."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

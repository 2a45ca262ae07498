"""The trials running now, each with its stage, epoch of epochs, last value and time left: what `hpsearch run`
and `hpsearch status --watch` show between the ends of trials (a stage's bar moves only when a trial ends)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from optuna.trial import TrialState
from rich.table import Table

from hpsearch.search.plan.plan import Stage
from hpsearch.search.run.campaign import DUPLICATE, StageView

MAX_ROWS = 8  # a fleet runs more at once: the screen shows the first ones and how many more


@dataclass(frozen=True)
class RunningTrial:
    stage: str
    number: int
    epoch: int  # epochs reported so far (a resumed trial reports its checkpoint's epochs again first)
    epochs: int | None  # epochs it will train, from the config it recorded at its start
    last: float | None  # the value it reported last (validation accuracy by default)
    left_s: float | None  # seconds to its last epoch at the pace of those so far


def running_trials(views: list[tuple[Stage, StageView | None]], now: datetime | None = None) -> list[RunningTrial]:
    """Every running trial of the open stages (`Campaign.views`), in stage and trial order."""
    now = now or datetime.now()
    out = []
    for stage, view in views:
        if view is None:
            continue
        for t in view.trials:
            if t.state != TrialState.RUNNING or DUPLICATE in t.system_attrs:
                continue
            epoch = max(t.intermediate_values, default=0)
            config = t.user_attrs.get("config")
            epochs = config.get("epochs") if isinstance(config, dict) else None
            left = None
            if epoch and isinstance(epochs, int) and t.datetime_start is not None:
                pace = (now - t.datetime_start).total_seconds() / epoch
                left = max(0.0, pace * (epochs - epoch))
            out.append(RunningTrial(stage.name, t.number, epoch, epochs if isinstance(epochs, int) else None,
                                    t.intermediate_values.get(epoch), left))
    return out


def running_table(trials: list[RunningTrial]) -> Table | None:
    """The running trials as a small table; None when none runs."""
    if not trials:
        return None
    table = Table(title="running", box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for col in ("stage", "trial", "epoch", "last value", "left"):
        table.add_column(col, no_wrap=True, justify="left" if col == "stage" else "right")
    for r in trials[:MAX_ROWS]:
        epoch = f"{r.epoch}/{r.epochs}" if r.epochs else str(r.epoch)
        last = "-" if r.last is None else f"{r.last:.4f}"
        table.add_row(r.stage, str(r.number), epoch, last, _duration(r.left_s))
    if len(trials) > MAX_ROWS:
        table.add_row("", f"+{len(trials) - MAX_ROWS} more", "", "", "")
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

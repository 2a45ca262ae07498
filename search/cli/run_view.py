"""What `hpsearch run` shows while its workers run, and what it says when it stops early."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpsearch.search.cli.progress import running_table, running_trials
from hpsearch.search.run.campaign import Campaign
from hpsearch.search.watch.status import StageStatus, status_of
from hpsearch.storage.stores import store_for


class _BarsAndTrials(Progress):
    """The stages' bars, then the table of running trials (rich's way to add to what a Progress draws)."""

    running: RenderableType | None = None

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.running is not None:
            yield self.running


class StageBars:
    """A progress bar per stage, finished slots out of the budget, and below them the running trials (epoch of
    epochs, last value, time left), while `hpsearch run` waits.

    A storage outage leaves the bars where they were until it ends, as the workers wait it out too. The
    bars keep one PostgreSQL connection for the whole run (the "+ 1" of N workers + 1): closing it after each
    refresh would start a server process every second, and a reconnect can overlap the closing connection.
    """

    def __init__(self, storage: Any, campaign: str, console: Console) -> None:
        self._storage, self._campaign = storage, campaign
        self._bars = _BarsAndTrials(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TextColumn("{task.fields[best]}"), console=console)
        self._tasks: dict[str, Any] = {}
        self._stored: Campaign | None = None  # loaded once; each refresh reads the stages' trials again
        self.stages: list[StageStatus] | None = None  # the last status read, None before the first

    @property
    def campaign(self) -> Campaign:
        """The campaign the bars show, loaded at the first refresh (or now)."""
        if self._stored is None:
            self._stored = Campaign.load(self._storage, self._campaign)
        return self._stored

    def __enter__(self) -> StageBars:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.update()  # the final counts, then leave the bars on screen
        self._bars.stop()

    def update(self) -> None:
        try:
            stored = self.campaign
            views = stored.views()  # one read serves the bars and the running trials
            self.stages = status_of(views, stored.plan.metric)  # the best by the plan's metric and direction
            self._bars.running = running_table(running_trials(views))
        except (*store_for(self._storage).transient, OSError):  # an outage: the workers wait it out too
            return
        for s in self.stages:
            if s.name not in self._tasks:
                self._tasks[s.name] = self._bars.add_task(s.name, total=s.n_trials, best="")
            best = f"best {s.best_value:.4f}" if s.best_value is not None else ""
            # total again: a stage that opens in its escalated form has that form's budget
            self._bars.update(self._tasks[s.name], total=s.n_trials, completed=s.finished, best=best)

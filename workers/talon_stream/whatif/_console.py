"""What ``talon-stream what-if`` shows while it runs: :class:`ConsoleObserver`, a
:class:`~talon_stream.whatif.WhatIfObserver` drawing live progress on the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from talon_stream.whatif._diff import EventDiff
from talon_stream.whatif._report import WhatIfReport
from talon_stream.whatif._run import WhatIfObserver

__all__ = ["ConsoleObserver"]

_PHASES = {"live": "reading live effects", "window": "evaluating the window"}


class ConsoleObserver(WhatIfObserver):
    """A progress bar per phase on stderr, when it is a terminal (or ``show_progress``): offsets
    read, and for the window the events evaluated, changed and skipped so far. Use as a
    context manager."""

    def __init__(self, *, show_progress: bool | None = None) -> None:
        console = Console(stderr=True)
        shown = console.is_terminal if show_progress is None else show_progress
        self._progress = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("offsets"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}"),
                console=console,
                transient=True,
            )
            if shown
            else None
        )
        self._task: Any = None
        self._report: WhatIfReport | None = None

    def __enter__(self) -> ConsoleObserver:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def phase(self, name: str) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(_PHASES.get(name, name), total=None, detail="")

    def progress(self, read: int, total: int | None, report: WhatIfReport) -> None:
        self._report = report
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=read, total=total, detail=_detail(report))

    def evaluated(self, diff: EventDiff) -> None:
        if self._progress is not None and self._task is not None and self._report is not None:
            self._progress.update(self._task, detail=_detail(self._report))


def _detail(report: WhatIfReport) -> str:
    if not (report.read or report.evaluated):
        return ""
    return (
        f"evaluated {report.evaluated}, changed {report.changed}, "
        f"skipped {report.skipped.total()}, refused {report.refused.total()}"
    )

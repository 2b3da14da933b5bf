"""What ``talon-stream dlq replay`` shows while it runs: :class:`ConsoleObserver`, a
:class:`~talon_stream.dlq.ReplayObserver` writing to the terminal."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from talon_stream.dlq._model import DeadLetter, Replay, ReplayObserver

__all__ = ["ConsoleObserver"]


class ConsoleObserver(ReplayObserver):
    """What ``talon-stream dlq replay`` shows: one line per selected record on stdout when
    ``list_selected`` (the dry run), a warning per skipped record on stderr, and a progress bar
    on stderr when it is a terminal. Use as a context manager."""

    def __init__(self, *, list_selected: bool, show_progress: bool | None = None) -> None:
        self._echo = click.echo
        console = Console(stderr=True)
        self._list = list_selected
        self._progress = (
            Progress(
                TextColumn("reading the DLQ"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("offsets"),
                console=console,
                transient=True,
            )
            if (console.is_terminal if show_progress is None else show_progress)
            else None
        )
        self._task: Any = None

    def __enter__(self) -> ConsoleObserver:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("replay", total=None)
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def selected(self, replay: Replay) -> None:
        if not self._list:
            return
        letter = replay.letter
        where = "by key" if replay.partition is None else f"partition {replay.partition}"
        failed_at = letter.failed_at.isoformat(timespec="milliseconds") if letter.failed_at else "-"
        self._echo(
            f"{letter.coordinates} -> {replay.topic} ({where}) key={_show_key(letter)} "
            f"{letter.error_class or 'unknown'} failed {failed_at}"
        )

    def skipped(self, letter: DeadLetter, reason: str) -> None:
        self._echo(f"skipped {letter.coordinates} key={_show_key(letter)}: {reason}", err=True)

    def progress(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)


def _show_key(letter: DeadLetter) -> str:
    key = letter.record.key
    return "-" if key is None else key.decode(errors="replace")

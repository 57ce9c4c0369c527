"""All terminal output goes through here, so commands never touch rich directly.

Messages (progress, warnings, errors) go to stderr; data a user may pipe
(hashes, tables, JSON) goes to stdout. Progress bars and spinners are drawn
only when stderr is an interactive terminal and ``--quiet`` is not given, so
logs and pipes never see them (rich's TTY_COMPATIBLE=1 / TTY_INTERACTIVE=1
force a terminal, e.g. in tests).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text


class Terminal:
    def __init__(self, *, verbosity: int = 0, color: bool | None = None) -> None:
        self.verbosity = verbosity
        no_color = color is False
        self.out = Console(highlight=False, no_color=no_color, force_terminal=color or None, soft_wrap=True)
        # --color forces colors, not animation: a forced terminal on a pipe still gets no live bars
        interactive = None if not color else _isatty(sys.stderr)
        self.err = Console(
            stderr=True,
            highlight=False,
            no_color=no_color,
            force_terminal=color or None,
            force_interactive=interactive,
            soft_wrap=True,
        )

    @property
    def shows_progress(self) -> bool:
        """Whether bars and spinners are drawn (skip work done only to decorate them when not)."""
        return self.verbosity >= 0 and self.err.is_interactive

    def display(self, text: str = "") -> None:
        """Data for stdout, printed as is."""
        self.out.print(text, markup=False)

    def display_json(self, data: Any) -> None:
        self.out.print(json.dumps(data, indent=2), markup=False)

    def display_info(self, text: str) -> None:
        if self.verbosity >= 0:
            self.err.print(text, markup=False)

    def display_debug(self, text: str) -> None:
        if self.verbosity >= 1:
            self.err.print(text, style="dim", markup=False)

    def display_success(self, text: str) -> None:
        if self.verbosity >= 0:
            self.err.print(text, style="green", markup=False)

    def display_warning(self, text: str) -> None:
        self.err.print(f"warning: {text}", style="yellow", markup=False)

    def display_error(self, text: str) -> None:
        self.err.print(f"error: {text}", style="bold red", markup=False)

    def display_table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.out.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None, *, unit: str = "bytes") -> Iterator[Callable[[int], None]]:
        """A bar with the count done, the rate and the time left; yields ``advance(n)``.

        ``unit="bytes"`` shows sizes and transfer speed; any other unit (e.g.
        ``"frames"``) shows ``done/total unit`` and units per second. An unknown
        ``total`` (None) draws a pulsing bar. Nothing is drawn when not a terminal.
        """
        if not self.shows_progress:
            yield lambda n: None
            return
        counts: tuple[ProgressColumn, ...] = (
            (DownloadColumn(), TransferSpeedColumn())
            if unit == "bytes"
            else (MofNCompleteColumn(), TextColumn(unit), _RateColumn(unit))
        )
        columns = (TextColumn("{task.description}"), BarColumn(), *counts, TimeRemainingColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)

    @contextlib.contextmanager
    def status(self, text: str, *, size: int | None = None) -> Iterator[None]:
        """A spinner with the elapsed time for work that reports nothing until it ends.

        ``size`` (bytes), when known, is shown beside the text so a user can judge the wait.
        """
        if not self.shows_progress:
            yield
            return
        label = text if size is None else f"{text} ({decimal(size)})"
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=self.err, transient=True
        ) as spinner:
            spinner.add_task(label, total=None)
            yield


class _RateColumn(ProgressColumn):
    """Units per second for counts that are not bytes (frames, files)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s", style="progress.data.speed")


def _isatty(stream: object) -> bool:
    try:
        return bool(getattr(stream, "isatty", lambda: False)())
    except ValueError:  # a closed stream
        return False

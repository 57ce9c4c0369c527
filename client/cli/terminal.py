"""All terminal output goes through here, so commands never touch rich directly.

Messages (progress, warnings, errors) go to stderr; data a user may pipe
(hashes, tables, JSON) goes to stdout.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table


class Terminal:
    def __init__(self, *, verbosity: int = 0, color: bool | None = None) -> None:
        self.verbosity = verbosity
        no_color = color is False
        self.out = Console(highlight=False, no_color=no_color, force_terminal=color or None, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, no_color=no_color, force_terminal=color or None, soft_wrap=True)

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
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A byte-count progress bar on an interactive terminal; yields ``update(done_bytes)``."""
        if not (self.err.is_terminal and self.verbosity >= 0):
            yield lambda done: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda done: bar.update(task, completed=done)

    @contextlib.contextmanager
    def status(self, text: str) -> Iterator[None]:
        """A spinner while slow work runs (only on an interactive terminal)."""
        if self.err.is_terminal and self.verbosity >= 0:
            with self.err.status(text):
                yield
        else:
            yield

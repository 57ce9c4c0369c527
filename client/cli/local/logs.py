"""``ipoc local logs``."""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application

FOLLOW_INTERVAL = 0.2


@click.command(short_help="Show the local stack's log")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C (across restarts).")
@click.option(
    "--lines",
    "-n",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many of the last lines to print first (0: all).",
)
@click.pass_obj
def logs(app: Application, follow: bool, lines: int) -> None:
    """Print the log of the stack `ipoc local up --detach` started ($IPOC_HOME/local/stack.log)."""
    from ipoc.paths import ipoc_home

    path = ipoc_home() / "local" / "stack.log"
    if not path.exists() and not follow:
        app.abort(
            f"no local stack log at {path}: `ipoc local up --detach` writes it "
            "(a foreground `ipoc local up` logs to its terminal)"
        )
    out = sys.stdout
    position = 0
    if path.exists():
        with open(path, "rb") as handle:
            tail = deque(handle, maxlen=lines or None)
            position = handle.tell()
        for line in tail:
            out.write(line.decode(errors="replace"))
        out.flush()
    if not follow:
        return
    try:
        while True:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size < position:  # a new stack started and truncated the log
                position = 0
            if size > position:
                with open(path, "rb") as handle:
                    handle.seek(position)
                    data = handle.read(size - position)
                position += len(data)
                out.write(data.decode(errors="replace"))
                out.flush()
            time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        return

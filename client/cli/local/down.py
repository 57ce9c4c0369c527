"""``ipoc local down``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application

STOP_TIMEOUT = 30.0


@click.command(short_help="Stop the local stack and its runtimes")
@click.pass_obj
def down(app: Application) -> None:
    """Stop the local stack and every runtime it started. Safe to run when nothing is up."""
    from ipoc.paths import ipoc_home
    from local.runtimes import running_ports, stop_pool, stop_runtime
    from local.stack import process_alive, read_state

    state = read_state()
    home = Path(state["home"]) if state else ipoc_home()
    if state is not None:
        pid = int(state["pid"])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.05)
        if process_alive(pid):
            app.terminal.display_warning(f"the stack (pid {pid}) did not stop in {STOP_TIMEOUT:g} s; killing it")
            os.kill(pid, signal.SIGKILL)
    runtimes = home / "local" / "runtimes"
    stop_pool(runtimes)  # warm runtimes a killed stack left (they also exit when its pipe closes)
    leftovers = running_ports(runtimes)
    for port in leftovers:  # a stack that was killed cannot stop its runtimes itself
        stop_runtime(runtimes, port)
    (home / "local" / "stack.json").unlink(missing_ok=True)
    if state is None and not leftovers:
        app.terminal.display_info("No local stack is running.")
    else:
        app.terminal.display_success("Local stack stopped.")

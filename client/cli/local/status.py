"""``ipoc local status``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Show the local stack")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_obj
def status(app: "Application", as_json: bool) -> None:
    """Show the local stack's endpoints, tables, buckets and running runtimes; exit 1 if it is not running."""
    from lambdas.vaas.backends.local import running_ports
    from local.stack import read_state

    state = read_state()
    if state is None:
        if as_json:
            app.terminal.display_json({"running": False})
            raise SystemExit(1)
        app.abort("no local stack is running; start one with `ipoc local up --detach`")
    runtimes = running_ports(Path(state["home"]) / "local" / "runtimes")
    if as_json:
        app.terminal.display_json({"running": True, **state, "running_runtimes": runtimes})
        return
    from client.cli.local.up import show_endpoints

    show_endpoints(app, state)
    app.terminal.display_table(
        "Tables", ["Table", "Name"], [[k, v] for k, v in state["tables"].items()]
    )
    app.terminal.display(f"Running runtimes: {', '.join(map(str, runtimes)) if runtimes else 'none'}")
    app.terminal.display(f"Stack pid {state['pid']}, started {state['started_at']}, state in {state['home']}")

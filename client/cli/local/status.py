"""``ipoc local status``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Show whether the local stack is running")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_obj
def status(app: Application, as_json: bool) -> None:
    """Say whether the local stack is running, stopped or unhealthy (and why), with its endpoints, tables,
    buckets and running runtimes; exit 1 unless it is running."""
    from ipoc.paths import ipoc_home
    from local.runtimes import running_ports
    from local.stack import stack_status

    condition, reason, state = stack_status()
    runtimes = running_ports(Path(state["home"] if state else ipoc_home()) / "local" / "runtimes")
    left = (
        f"; {len(runtimes)} runtime process(es) of the last stack still run (ports "
        f"{', '.join(map(str, runtimes))}): `ipoc local down` stops them"
        if runtimes and condition != "running"
        else ""
    )
    if state is None:
        if as_json:
            app.terminal.display_json(
                {"status": condition, "running": False, "reason": reason, "running_runtimes": runtimes}
            )
            raise SystemExit(1)
        app.abort(f"local stack stopped: {reason}{left}")
    if as_json:
        app.terminal.display_json(
            {
                "status": condition,
                "running": condition == "running",
                "reason": reason,
                **state,
                "running_runtimes": runtimes,
            }
        )
        if condition != "running":
            raise SystemExit(1)
        return
    if condition != "running":
        app.abort(f"local stack unhealthy: {reason}{left}")
    from client.cli.local.up import show_endpoints

    show_endpoints(app, state)
    app.terminal.display_table("Tables", ["Table", "Name"], [[k, v] for k, v in state["tables"].items()])
    app.terminal.display(f"Running runtimes: {', '.join(map(str, runtimes)) if runtimes else 'none'}")
    app.terminal.display(
        f"Local stack running: pid {state['pid']}, started {state['started_at']}, "
        f"state in {state.get('state_dir', state['home'])}"
    )

"""``ipoc function list``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from client.api import ApiError

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command("list", short_help="List registered functions")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(app: Application, as_json: bool) -> None:
    """List the functions registered with CCFaaS: each one's latest version and whether it is fully loaded."""
    api = app.api()
    try:
        names = api.call("ccfaas", "GET", "/function")["functions"]
        statuses = [api.call("ccfaas", "GET", f"/function/{n}/status") for n in names]
    except ApiError as exc:
        app.abort(exc.message)
    if as_json:
        app.terminal.display_json(
            [{"function": s["function"], "latest": s["version"], "loaded": s["loaded"]} for s in statuses]
        )
        return
    app.terminal.display_table(
        "Functions",
        ["Function", "Latest", "Loaded", "Files"],
        [[s["function"], str(s["version"]), "yes" if s["loaded"] else "no", str(len(s["files"]))] for s in statuses],
    )

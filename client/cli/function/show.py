"""``ipoc function show``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from client.api import ApiError

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Show a function's policy and files")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the policy and the files).")
@click.pass_obj
def show(app: "Application", name: str, as_json: bool) -> None:
    """Show function NAME: its policy's settings and every program and data file with its status."""
    api = app.api()
    try:
        policy = api.call("ccfaas", "GET", f"/function/{name}")
        status = api.call("ccfaas", "GET", f"/function/{name}/status")
    except ApiError as exc:
        app.abort(exc.message)
    if as_json:
        app.terminal.display_json({"policy": policy, "files": status["files"], "loaded": status["loaded"]})
        return
    app.terminal.display(f"Function {name}: {policy['execution_strategy']}, {policy['max_memory_mib']} MiB, "
                         f"clock {'on' if policy['enable_clock'] else 'off'}, {'loaded' if status['loaded'] else 'NOT fully loaded'}")
    app.terminal.display_table(None, ["Path", "Kind", "Status", "sha256"],
                               [[f["path"], f["kind"].replace("_", " "), f["status"], f["pi_hash"]] for f in status["files"]])

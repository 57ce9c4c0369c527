"""``ipoc function delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from client.api import ApiError

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Delete a function and its binaries")
@click.argument("name")
@click.pass_obj
def delete(app: "Application", name: str) -> None:
    """Delete function NAME and every binary uploaded for it (refused while it has live instances)."""
    try:
        app.api().call("ccfaas", "DELETE", f"/function/{name}")
    except ApiError as exc:
        app.abort(exc.message)
    app.terminal.display_success(f"Deleted function {name}")

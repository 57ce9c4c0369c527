"""``ipoc profile list``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command("list", short_help="List the configured profiles")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(app: Application, as_json: bool) -> None:
    """Show each profile's type, region and CCFaaS endpoint."""
    from client import profiles

    try:
        found = profiles.load_all()
    except profiles.ProfileError as exc:
        app.abort(str(exc))
    rows = [[p.name, p.kind, p.region, p.endpoints.get("ccfaas", "")] for p in found.values()]
    if as_json:
        app.terminal.display_json([dict(zip(("name", "type", "region", "ccfaas"), row, strict=True)) for row in rows])
        return
    if not rows:
        app.terminal.display(
            f"No profiles in {profiles.config_path()}: run `ipoc local up` or `ipoc profile from-stack`"
        )
        return
    app.terminal.display_table("Profiles", ["Profile", "Type", "Region", "CCFaaS"], rows)

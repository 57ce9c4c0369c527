"""``ipoc local reset``."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Delete the local stack's kept state (asks first)")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.pass_obj
def reset(app: Application, yes: bool) -> None:
    """Delete every function, artifact and instance record the local stack keeps in $IPOC_HOME/local/state.
    Identities, the proxy attestation CA and CLI profiles stay. The stack must be stopped."""
    from ipoc.paths import ipoc_home
    from local.stack import read_state

    if read_state() is not None:
        app.abort("the local stack is running; stop it with `ipoc local down` first")
    root = ipoc_home() / "local" / "state"
    if not root.exists():
        app.terminal.display_info(f"Nothing to delete: {root} does not exist.")
        return
    files = [p for p in root.rglob("*") if p.is_file()]
    items = sum(1 for p in files if p.parent.parent.name == "dynamodb")
    objects = [p for p in files if p.suffix == ".object"]
    size = sum(p.stat().st_size for p in objects)
    summary = (
        f"{items} records (functions, instances, slots) and {len(objects)} objects ({size / 2**20:.1f} MiB) in {root}"
    )
    if not yes and not click.confirm(f"Delete {summary}?", default=False):
        app.abort("nothing deleted")
    shutil.rmtree(root)
    app.terminal.display_success(f"Deleted {summary}.")

"""``ipoc function delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Delete a function, or one version of it")
@click.argument("reference", metavar="NAME[:VERSION]")
@click.pass_obj
def delete(app: Application, reference: str) -> None:
    """Delete function NAME (every version), or only NAME:VERSION, with the binaries no remaining version uses.

    Refused while instances use a version being deleted or an alias points at it:
    the message names them.
    """
    name, separator, version = reference.partition(":")
    if separator and not version.isdigit():
        hint = (
            "`latest` is not an alias to delete: it always names the newest version; delete that version "
            f"by its number (`ipoc function versions {name}` lists them)"
            if version == "latest"
            else f"aliases are deleted with `ipoc function alias {name} {version} --delete`"
            if version
            else "give a version number after ':', or none to delete every version"
        )
        raise click.BadParameter(f"{version!r} is not a version number ({hint})", param_hint="NAME[:VERSION]")
    app.call("ccfaas", "DELETE", f"/function/{name}/versions/{version}" if version else f"/function/{name}")
    app.terminal.display_success(
        f"Deleted version {version} of function {name}" if version else f"Deleted function {name}"
    )

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
    name, _, version = reference.partition(":")
    if version and not version.isdigit():
        raise click.BadParameter(
            f"{version!r} is not a version number (aliases are deleted with `ipoc function alias "
            f"{name} {version} --delete`)",
            param_hint="NAME[:VERSION]",
        )
    app.call("ccfaas", "DELETE", f"/function/{name}/versions/{version}" if version else f"/function/{name}")
    app.terminal.display_success(
        f"Deleted version {version} of function {name}" if version else f"Deleted function {name}"
    )

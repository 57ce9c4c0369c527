"""``ipoc function versions`` and ``ipoc function alias``: a function's versions, and the aliases that name them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from client.api import ApiError

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="List a function's versions and aliases")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (versions, their files and the aliases).")
@click.pass_obj
def versions(app: Application, name: str, as_json: bool) -> None:
    """List the versions of function NAME, oldest first: when each was published, whether its files are all
    loaded, the sha256 of its policy, and the aliases pointing at it."""
    listing = app.call("ccfaas", "GET", f"/function/{name}/versions")
    if as_json:
        app.terminal.display_json(listing)
        return
    app.terminal.display_table(
        f"Function {name}",
        ["Version", "Published", "Loaded", "Aliases", "Policy sha256"],
        [
            [
                str(v["version"]),
                v["created_at"],
                "yes" if v["loaded"] else "no",
                ", ".join(v["aliases"]),
                v["policy_sha256"],
            ]
            for v in listing["versions"]
        ],
    )


@click.command(short_help="Point an alias at a version (create, move: the rollback; or --delete)")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=click.IntRange(min=1), required=False)
@click.option("--delete", "delete_", is_flag=True, help="Delete the alias instead.")
@click.pass_obj
def alias(app: Application, name: str, alias: str, version: int | None, delete_: bool) -> None:
    """Point ALIAS of function NAME at VERSION; users then run NAME:ALIAS.

    Moving an alias back to an earlier version is the rollback. It changes which
    version new instances of NAME:ALIAS run; instances already running keep theirs.
    `latest` always follows the newest version and cannot be moved.
    """
    if delete_ == (version is not None):
        raise click.UsageError("give VERSION to point the alias, or --delete to delete it (not both)")
    api = app.api()
    try:
        if delete_:
            reply = api.call("ccfaas", "DELETE", f"/function/{name}/aliases/{alias}")
        else:
            reply = api.call("ccfaas", "PUT", f"/function/{name}/aliases/{alias}", body={"version": version})
    except ApiError as exc:
        app.abort(exc.message)
    app.terminal.display_success(f"Deleted alias {name}:{alias}" if delete_ else f"{name}:{alias} → version {version}")
    app.terminal.display(", ".join(f"{a} → {v}" for a, v in reply["aliases"].items()))

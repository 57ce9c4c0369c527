"""``ipoc function show``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Show a function version's policy and files")
@click.argument("reference", metavar="NAME[:VERSION|:ALIAS]")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (the version, its aliases, the policy and the files)."
)
@click.pass_obj
def show(app: Application, reference: str, as_json: bool) -> None:
    """Show a function version: NAME (the latest), NAME:VERSION or NAME:ALIAS; its policy's settings and every
    program and data file with its status."""
    name, _, selector = reference.partition(":")
    shown = app.call("ccfaas", "GET", f"/function/{name}/versions/{selector or 'latest'}")
    if as_json:
        app.terminal.display_json(shown)
        return
    policy = shown["policy"]
    aliases = f" ({', '.join(shown['aliases'])})" if shown["aliases"] else ""
    app.terminal.display(
        f"Function {name} version {shown['version']}{aliases}: {policy['execution_strategy']}, "
        f"{policy['max_memory_mib']} MiB, clock {'on' if policy['enable_clock'] else 'off'}, "
        f"{'loaded' if shown['loaded'] else 'NOT fully loaded'}"
    )
    app.terminal.display_table(
        None,
        ["Path", "Kind", "Status", "sha256"],
        [[f["path"], f["kind"].replace("_", " "), f["status"], f["pi_hash"]] for f in shown["files"]],
    )

"""``ipoc function``: the publisher's commands."""

import click

from client.cli.function.delete import delete
from client.cli.function.list import list_
from client.cli.function.register import publish, register
from client.cli.function.show import show
from client.cli.function.versions import alias, versions


@click.group(short_help="Register and manage functions, their versions and aliases (publishers)")
def function() -> None:
    """Register functions (policy, programs, data files) with CCFaaS, publish new versions and move aliases."""


function.add_command(register)
function.add_command(publish)
function.add_command(list_)
function.add_command(show)
function.add_command(versions)
function.add_command(alias)
function.add_command(delete)

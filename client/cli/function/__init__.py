"""``ipoc function``: the publisher's commands."""

import click

from client.cli.function.delete import delete
from client.cli.function.list import list_
from client.cli.function.register import register
from client.cli.function.show import show


@click.group(short_help="Register and manage functions (publishers)")
def function() -> None:
    """Register functions (policy, programs, data files) with CCFaaS and manage them."""


function.add_command(register)
function.add_command(list_)
function.add_command(show)
function.add_command(delete)

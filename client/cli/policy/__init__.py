"""``ipoc policy``: check, hash and explain policies."""

import click

from client.cli.policy.explain import explain
from client.cli.policy.hash import hash_
from client.cli.policy.validate import validate


@click.group(short_help="Validate, hash and explain policies")
def policy() -> None:
    """Work with i-PoC policy files (function, user, VaaS and full policies)."""


policy.add_command(validate)
policy.add_command(hash_)
policy.add_command(explain)

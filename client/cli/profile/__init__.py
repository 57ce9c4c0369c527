"""``ipoc profile``: where the CLI sends requests."""

import click

from client.cli.profile.from_stack import from_stack
from client.cli.profile.list import list_


@click.group(short_help="Manage CLI profiles")
def profile() -> None:
    """Profiles name the services' endpoints and how to sign requests (~/.config/ipoc/config.toml,
    or IPOC_CONFIG). `ipoc local up` writes `local`; `ipoc profile from-stack` writes one for AWS."""


profile.add_command(from_stack)
profile.add_command(list_)

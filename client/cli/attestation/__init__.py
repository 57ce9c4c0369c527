"""``ipoc attestation``: the local proxy attestation service."""

import click

from client.cli.attestation.serve import serve


@click.group(short_help="Run the local proxy attestation service")
def attestation() -> None:
    """The proxy attestation service that certifies local runtimes (simulated linux platform)."""


attestation.add_command(serve)

"""``ipoc attestation``: the proxy attestation service and the Nitro document verifier."""

import click

from client.cli.attestation.serve import serve
from client.cli.attestation.verify import verify


@click.group(short_help="Proxy attestation service; verify Nitro attestation documents")
def attestation() -> None:
    """The proxy attestation service that certifies runtimes, and the AWS Nitro attestation document verifier."""


attestation.add_command(serve)
attestation.add_command(verify)

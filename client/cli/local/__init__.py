"""``ipoc local``: the whole system on this machine."""

import click

from client.cli.local.down import down
from client.cli.local.logs import logs
from client.cli.local.reset import reset
from client.cli.local.status import status
from client.cli.local.up import up


@click.group(short_help="Run the whole system on this machine")
def local() -> None:
    """The embedded deployment: moto (S3, DynamoDB, Step Functions), the proxy
    attestation service, and CCFaaS, VaaS and the S3 streamer on the seed's ports. What the stack
    acknowledged is kept in $IPOC_HOME/local/state across restarts and crashes."""


local.add_command(up)
local.add_command(status)
local.add_command(down)
local.add_command(logs)
local.add_command(reset)

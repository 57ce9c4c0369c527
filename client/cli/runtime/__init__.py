"""``ipoc runtime``: the local Veracruz-compatible runtime."""

import click

from client.cli.runtime.measurement import measurement
from client.cli.runtime.serve import serve


@click.group(short_help="Run a local Veracruz-compatible runtime")
def runtime() -> None:
    """A Veracruz v1.3-compatible runtime on a simulated platform, linux or nitro-sim (no hardware isolation)."""


runtime.add_command(serve)
runtime.add_command(measurement)

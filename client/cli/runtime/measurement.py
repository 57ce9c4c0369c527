"""``ipoc runtime measurement``."""

import click


@click.command(short_help="Print this runtime's measurement")
def measurement() -> None:
    """Print the runtime measurement a policy pins as runtime_manager_hash_linux.

    It is the sha256 over the sources of the runtime and ipoc packages, so it
    changes whenever the code that enforces policies changes.
    """
    from runtime.measurement import measurement as measure

    click.echo(measure())

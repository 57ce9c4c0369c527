"""``ipoc runtime measurement``."""

import click


@click.command(short_help="Print this runtime's measurement")
@click.option(
    "--platform",
    type=click.Choice(["linux", "nitro-sim"]),
    default="linux",
    show_default=True,
    help="linux: runtime_manager_hash_linux; nitro-sim: runtime_manager_hash_nitro (PCR0's first 32 bytes).",
)
@click.option(
    "--pcr0", is_flag=True, help="nitro-sim only: print the whole PCR0 (96 hex digits), as measurements.json holds it."
)
def measurement(platform: str, pcr0: bool) -> None:
    """Print the runtime measurement a policy pins as runtime_manager_hash_linux (or _nitro).

    It is the sha256 (linux) or SHA-384 (nitro-sim PCR0) over the sources of
    the runtime and ipoc packages, so it changes whenever the code that
    enforces policies changes.
    """
    from runtime.measurement import measurement as measure
    from runtime.measurement import nitro_sim_pcr0

    if pcr0 and platform != "nitro-sim":
        raise click.UsageError("--pcr0 needs --platform nitro-sim")
    if platform == "nitro-sim":
        click.echo(nitro_sim_pcr0() if pcr0 else nitro_sim_pcr0()[:64])
    else:
        click.echo(measure())

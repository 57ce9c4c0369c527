"""``ipoc policy hash``."""

from __future__ import annotations

from pathlib import Path

import click

from ipoc.policy import instance_hash, policy_hash


@click.command("hash", short_help="Print a policy's hash")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--instance", is_flag=True, help="Print the 59-character instance hash instead.")
def hash_(policy_file: Path, instance: bool) -> None:
    """Print the lowercase hex sha256 of POLICY_FILE's exact bytes (equal to sha256sum's).

    This is the hash a runtime reports and every client checks; a trailing
    newline or reformatting changes it.
    """
    data = policy_file.read_bytes()
    click.echo(instance_hash(data) if instance else policy_hash(data))

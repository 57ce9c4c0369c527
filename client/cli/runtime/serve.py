"""``ipoc runtime serve``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click

from client.cli.serving import serve_until_stopped
from ipoc import paths
from ipoc.errors import IpocError
from ipoc.policy import parse_full_policy

if TYPE_CHECKING:
    from client.cli.application import Application


def _hex32(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise click.BadParameter("must be 64 hex characters")
    return value.lower() if value else None


@click.command(short_help="Attest and serve one policy")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--platform-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the simulated platform key lives. [default: $IPOC_HOME/platform]")
@click.option("--scratch-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Parent of the runtime's private file system, removed at exit. [default: system temp]")
@click.option("--time-limit", default=600.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Seconds one program execution may run.")
@click.option("--simulate-measurement", callback=_hex32, default=None, hidden=True,
              help="Test hook: present this measurement instead of the real one (simulated platform only).")
@click.pass_obj
def serve(
    app: "Application",
    policy_file: Path,
    platform_dir: Path | None,
    scratch_dir: Path | None,
    time_limit: float,
    simulate_measurement: str | None,
) -> None:
    """Attest with the policy's proxy, then serve POLICY_FILE's instance at its veracruz_server_url.

    The port opens only once attestation has succeeded. The process exits 0
    after a client's shutdown request (or SIGTERM), removing everything the
    instance held.
    """
    from runtime.measurement import measurement
    from runtime.server import StartupError, build_server

    app.configure_logging()
    try:
        policy = parse_full_policy(policy_file.read_bytes())
        server, scratch = build_server(
            policy,
            platform_dir=platform_dir or paths.platform_dir(),
            measurement=simulate_measurement or measurement(),
            scratch_parent=scratch_dir,
            time_limit=time_limit,
        )
    except (IpocError, StartupError) as exc:
        app.abort(str(exc) if isinstance(exc, StartupError) else exc.message)

    try:
        serve_until_stopped(server)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    app.terminal.display_info("Runtime stopped")

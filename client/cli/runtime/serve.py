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


def _hex_measurement(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}|[0-9a-fA-F]{96}", value):
        raise click.BadParameter("must be 64 hex characters (linux) or 96 (a nitro-sim PCR0)")
    return value.lower() if value else None


@click.command(short_help="Attest and serve one policy")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--platform-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the simulated platform key lives. [default: $IPOC_HOME/platform]")
@click.option("--scratch-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Parent of the runtime's private file system, removed at exit. [default: system temp]")
@click.option("--time-limit", default=600.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Seconds one program execution may run.")
@click.option("--platform", type=click.Choice(["linux", "nitro-sim"]), default="linux", show_default=True,
              help="Simulated platform: linux (Veracruz's mock PSA token) or nitro-sim (Nitro attestation "
                   "documents from a simulated NSM; the policy pins runtime_manager_hash_nitro).")
@click.option("--simulate-measurement", callback=_hex_measurement, default=None, hidden=True,
              help="Test hook: present this measurement (linux) or PCR0 (nitro-sim) instead of the real one.")
@click.pass_obj
def serve(
    app: "Application",
    policy_file: Path,
    platform_dir: Path | None,
    scratch_dir: Path | None,
    time_limit: float,
    platform: str,
    simulate_measurement: str | None,
) -> None:
    """Attest with the policy's proxy, then serve POLICY_FILE's instance at its veracruz_server_url.

    The port opens only once attestation has succeeded. The process exits 0
    after a client's shutdown request (or SIGTERM), removing everything the
    instance held. With ``--platform nitro-sim`` the runtime presents a Nitro
    attestation document signed under this installation's simulated NSM root;
    the certificate then carries the first 32 bytes of PCR0
    (``ipoc runtime measurement --platform nitro-sim``).
    """
    from runtime.measurement import measurement, nitro_sim_pcr0
    from runtime.server import StartupError, build_server

    if simulate_measurement and len(simulate_measurement) != (96 if platform == "nitro-sim" else 64):
        raise click.BadParameter("64 hex characters for linux, 96 (PCR0) for nitro-sim", param_hint="--simulate-measurement")

    app.configure_logging()
    try:
        policy = parse_full_policy(policy_file.read_bytes())
        server, scratch = build_server(
            policy,
            platform_dir=platform_dir or paths.platform_dir(),
            measurement=simulate_measurement or (nitro_sim_pcr0() if platform == "nitro-sim" else measurement()),
            scratch_parent=scratch_dir,
            time_limit=time_limit,
            platform=platform,
        )
    except (IpocError, StartupError) as exc:
        app.abort(str(exc) if isinstance(exc, StartupError) else exc.message)

    try:
        serve_until_stopped(server)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    app.terminal.display_info("Runtime stopped")

"""``ipoc runtime serve``."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from client.cli.params import platform_dir_option
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


MAX_POLICY_BYTES = 16 * 1024 * 1024  # a full policy with many identities is well under 1 MiB


@click.command(short_help="Attest and serve one policy")
@click.argument("policy_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--warm",
    is_flag=True,
    help="Attest first, then read a scratch directory line and the policy from stdin (until EOF): for a "
    "warm pool. Needs --proxy-url and --proxy-cert; stdout reports 'attested', then 'listening <url>'.",
)
@click.option("--proxy-url", default=None, help="With --warm: the proxy attestation service (host:port).")
@click.option(
    "--proxy-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --warm: PEM file of the proxy CA the policy will carry as proxy_service_cert.",
)
@platform_dir_option
@click.option(
    "--scratch-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Parent of the runtime's private file system, removed at exit. [default: system temp]",
)
@click.option(
    "--time-limit",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Seconds one program execution may run.",
)
@click.option(
    "--platform",
    type=click.Choice(["linux", "nitro-sim"]),
    default="linux",
    show_default=True,
    help="Simulated platform: linux (Veracruz's mock PSA token) or nitro-sim (Nitro attestation "
    "documents from a simulated NSM; the policy pins runtime_manager_hash_nitro).",
)
@click.option(
    "--simulate-measurement",
    callback=_hex_measurement,
    default=None,
    hidden=True,
    help="Test hook: present this measurement (linux) or PCR0 (nitro-sim) instead of the real one.",
)
@click.pass_obj
def serve(
    app: Application,
    policy_file: Path | None,
    warm: bool,
    proxy_url: str | None,
    proxy_cert: Path | None,
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

    With ``--warm`` (no POLICY_FILE) the runtime attests with ``--proxy-url``
    first, says ``attested`` on stdout, then waits on stdin, the pipe only the
    process that started it holds (the VaaS local backend's warm pool), for a
    line naming the scratch directory (empty: ``--scratch-dir``) and then the
    policy's exact bytes until EOF. The policy must name that proxy and CA; the
    port opens as before. An empty stdin (the pool shut down, or its owner
    died) ends the process with 0.
    """
    from runtime.measurement import measurement, nitro_sim_pcr0
    from runtime.server import StartupError, attest, build_server

    if simulate_measurement and len(simulate_measurement) != (96 if platform == "nitro-sim" else 64):
        raise click.BadParameter(
            "64 hex characters for linux, 96 (PCR0) for nitro-sim", param_hint="--simulate-measurement"
        )
    if warm == (policy_file is not None):
        raise click.UsageError("give either POLICY_FILE or --warm (the policy then comes on stdin)")
    if warm and (not proxy_url or proxy_cert is None):
        raise click.UsageError("--warm needs --proxy-url and --proxy-cert (the runtime attests before it has a policy)")

    app.configure_logging()
    platform_dir = platform_dir or paths.platform_dir()
    measured = simulate_measurement or (nitro_sim_pcr0() if platform == "nitro-sim" else measurement())
    try:
        attested = None
        if warm:
            assert proxy_url is not None and proxy_cert is not None
            attested = attest(proxy_url, proxy_cert.read_text(), platform_dir, measured, platform)
            _say(
                f"attested {attested.valid_until():.0f}"
            )  # the pool hands out only certificates that outlive an instance
            message = sys.stdin.buffer.read(MAX_POLICY_BYTES + 1)
            if not message:
                app.terminal.display_info("No policy came (the warm pool closed): exiting")
                return
            if len(message) > MAX_POLICY_BYTES:
                app.abort(f"the policy on stdin exceeds {MAX_POLICY_BYTES} bytes")
            directory, _, text = message.partition(b"\n")
            if directory:  # the slot's directory, known only now: the instance's files live there
                scratch_dir = Path(directory.decode())
        else:
            assert policy_file is not None
            text = policy_file.read_bytes()
        try:
            policy = parse_full_policy(text)
        except IpocError:
            hint = _other_kind(text)
            if hint:
                app.abort(hint)
            raise
        server, scratch = build_server(
            policy,
            platform_dir=platform_dir,
            measurement=measured,
            scratch_parent=scratch_dir,
            time_limit=time_limit,
            platform=platform,
            attested=attested,
        )
    except (IpocError, StartupError) as exc:
        app.abort(str(exc) if isinstance(exc, StartupError) else exc.message)
    if warm:
        _say(f"listening {policy.server_url}")

    try:
        serve_until_stopped(server)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    app.terminal.display_info("Runtime stopped")


def _say(line: str) -> None:
    """One line on the warm pool's control pipe (stdout); a vanished reader is not an error of ours."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def _other_kind(text: bytes) -> str | None:
    """Why ``text`` is not a full policy when it is a policy of another kind (a user's, a function's, VaaS's):
    the serde error alone ("missing field `id`") does not say so."""
    import json

    from client.cli.policy.loading import detect_kind

    try:
        kind = detect_kind(json.loads(text))
    except (ValueError, IpocError):
        return None
    if kind == "full":
        return None
    return (
        f"this is a {kind} policy; `ipoc runtime serve` needs a full policy, the one VaaS completes "
        "(`ipoc instance show ID --policy-out FILE` writes an instance's)"
    )

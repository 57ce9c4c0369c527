"""The root ``ipoc`` group: global flags, the Application, and every command group."""

from __future__ import annotations

import os
import sys
import traceback

import click

from client.cli.application import Application
from client.cli.attestation import attestation
from client.cli.camera import camera
from client.cli.function import function
from client.cli.instance import instance
from client.cli.local import local
from client.cli.policy import policy
from client.cli.profile import profile
from client.cli.run import run
from client.cli.runtime import runtime
from client.cli.steps import exec_, results, stream
from client.cli.veracruz import veracruz
from ipoc import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More output; repeatable. [env: IPOC_VERBOSE]")
@click.option(
    "-q",
    "--quiet",
    count=True,
    help="Less output; repeatable. -q also hides progress bars and spinners. [env: IPOC_QUIET]",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Force or forbid colored output (default: only on a terminal). [env: IPOC_COLOR, NO_COLOR]",
)
@click.option(
    "--profile",
    default=None,
    envvar="IPOC_PROFILE",
    help="Profile in ~/.config/ipoc/config.toml to use (default: local). [env: IPOC_PROFILE]",
)
@click.version_option(__version__, prog_name="ipoc")
@click.pass_context
def ipoc(ctx: click.Context, verbose: int, quiet: int, color: bool | None, profile: str | None) -> None:
    """i-PoC: confidential-computing functions as a service on Veracruz.

    Long steps (uploads, encryption, streaming, execution) draw progress bars
    and spinners on stderr only when it is a terminal, so pipes and logs get
    plain lines.

    Set IPOC_DEBUG=1 to see a traceback when a command fails unexpectedly, and
    IPOC_HOME to choose where local state (CA and platform keys) is kept.
    """
    verbose = verbose or int(os.environ.get("IPOC_VERBOSE", "0") or 0)
    quiet = quiet or int(os.environ.get("IPOC_QUIET", "0") or 0)
    if color is None and "IPOC_COLOR" in os.environ:
        color = os.environ["IPOC_COLOR"] not in ("0", "false", "no")
    if color is None and os.environ.get("NO_COLOR"):
        color = False
    ctx.obj = Application(verbosity=verbose - quiet, color=color, profile=profile)


ipoc.add_command(veracruz)
ipoc.add_command(attestation)
ipoc.add_command(runtime)
ipoc.add_command(policy)
ipoc.add_command(local)
ipoc.add_command(profile)
ipoc.add_command(camera)
ipoc.add_command(function)
ipoc.add_command(instance)
ipoc.add_command(run)
ipoc.add_command(stream)
ipoc.add_command(exec_)
ipoc.add_command(results)


def main() -> None:
    try:
        ipoc(prog_name="ipoc", auto_envvar_prefix=None)
    except Exception as exc:  # anything a command did not turn into a clean error
        if os.environ.get("IPOC_DEBUG"):
            traceback.print_exc()
        else:
            print(f"error: unexpected {type(exc).__name__}: {exc} (set IPOC_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(1)

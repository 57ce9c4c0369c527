"""The root ``ipoc`` group: global flags, the Application, and every command group."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from client.cli.application import Application
from ipoc import __version__

# Each command group's module, imported when the command is used (or listed): `ipoc runtime serve`, which
# the local stack starts per runtime, and `ipoc local up` do not import the publisher's and user's
# commands (jsonschema, requests, the camera's video codecs).
COMMANDS = {
    "attestation": "client.cli.attestation:attestation",
    "camera": "client.cli.camera:camera",
    "exec": "client.cli.steps:exec_",
    "function": "client.cli.function:function",
    "instance": "client.cli.instance:instance",
    "local": "client.cli.local:local",
    "policy": "client.cli.policy:policy",
    "profile": "client.cli.profile:profile",
    "results": "client.cli.steps:results",
    "run": "client.cli.run:run",
    "runtime": "client.cli.runtime:runtime",
    "stream": "client.cli.steps:stream",
    "veracruz": "client.cli.veracruz:veracruz",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; ``commands`` fills in as they are."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            if command.name != cmd_name:
                raise RuntimeError(f"{COMMANDS[cmd_name]} is named {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def main() -> None:
    from client.profiles import ProfileError

    try:
        ipoc(prog_name="ipoc", auto_envvar_prefix=None)
    except ProfileError as exc:  # a profile's own words: what is wrong in which file (wherever a command met it)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # anything a command did not turn into a clean error
        if os.environ.get("IPOC_DEBUG"):
            traceback.print_exc()
        else:
            print(f"error: unexpected {type(exc).__name__}: {exc} (set IPOC_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(1)

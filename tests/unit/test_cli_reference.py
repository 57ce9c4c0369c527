"""docs/cli.md is the CLI's own help, regenerated: it must not drift from the commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_every_command_has_help():
    import click

    from client.cli import ipoc

    def walk(command: click.Command, path: str) -> None:
        assert command.help or command.short_help, f"{path} has no help"
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None, f"{path} {name} is listed but does not load"
                walk(sub, f"{path} {name}")

    walk(ipoc, "ipoc")

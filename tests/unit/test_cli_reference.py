"""Every command has help: docs/cli.md is made of it (tests/unit/test_generated_docs.py)."""

from __future__ import annotations


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

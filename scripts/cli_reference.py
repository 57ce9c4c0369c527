"""Generate docs/cli.md, the CLI reference, from the CLI's own help texts.

.venv/bin/python scripts/cli_reference.py          # rewrite docs/cli.md
.venv/bin/python scripts/cli_reference.py --check  # exit 1 when docs/cli.md is stale (a test runs this)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client.cli import ipoc  # noqa: E402
from scripts.generated_docs import write_or_check  # noqa: E402

TARGET = ROOT / "docs" / "cli.md"


def sections(command: click.Command, path: list[str]) -> list[str]:
    context = click.Context(command, info_name=" ".join(path), terminal_width=100, max_content_width=100)
    out = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```text", command.get_help(context), "```", ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            subcommand = command.get_command(context, name)
            assert subcommand is not None  # the group listed it
            out += sections(subcommand, [*path, name])
    return out


def render() -> str:
    header = [
        "# `ipoc` command reference",
        "",
        "Generated from the CLI's own `--help` by `scripts/cli_reference.py`; do not edit by hand.",
        "",
    ]
    return "\n".join(header + sections(ipoc, ["ipoc"]))


def main() -> int:
    return write_or_check(TARGET, render(), "cli_reference.py", sys.argv)


if __name__ == "__main__":
    sys.exit(main())

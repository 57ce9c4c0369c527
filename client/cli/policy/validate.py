"""``ipoc policy validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from client.cli.policy.loading import PolicyKind, detect_kind, load_json
from ipoc import schemas
from ipoc.errors import IpocError
from ipoc.policy import parse_full_policy

if TYPE_CHECKING:
    from client.cli.application import Application

KIND_CHOICES: dict[str, PolicyKind] = {
    "function": "function",
    "user": "user",
    "vaas": "vaas",
    "full": "full",
    "s3": "s3_app_input",
}


@click.command(short_help="Check a policy against its schema")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(list(KIND_CHOICES)),
    default=None,
    help="Which schema to use. [default: guessed from the keys]",
)
@click.pass_obj
def validate(app: Application, policy_file: Path, kind: str | None) -> None:
    """Validate POLICY_FILE; on failure name each offending JSON path (every problem, one a line) and exit 1.

    A full policy is read as Veracruz v1.3's parser reads it (serde types:
    docs/veracruz-policy-parity.md), then checked as a runtime loads it:
    identity certificates that parse, hex file hashes, at least one identity.
    Runtime hashes may be null for platforms that were not measured.
    """
    found: list[tuple[str, str]] = []  # a schema's problems (a full policy's parser stops at its first)
    try:
        chosen = KIND_CHOICES[kind] if kind else detect_kind(load_json(policy_file))
        if chosen == "full":
            parse_full_policy(policy_file.read_bytes())
            label = "full policy"
        else:
            found = schemas.problems(chosen, load_json(policy_file))
            label = schemas.LABELS[chosen]
    except IpocError as exc:
        app.abort(exc.message)
    if found:  # every problem, each on its line with its JSON path, in document order
        lines = [f"{label} is invalid at {where}: {message}" for where, message in found]
        for line in lines[:-1]:
            app.terminal.display_error(line)
        app.abort(lines[-1])
    app.terminal.display_success(f"{policy_file}: valid {label}")

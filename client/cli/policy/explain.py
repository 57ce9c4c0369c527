"""``ipoc policy explain``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from client.cli.policy.loading import detect_kind, load_json
from ipoc import rights, schemas
from ipoc.certs import load_certificate
from ipoc.errors import IpocError
from ipoc.policy_serde import read_policy

if TYPE_CHECKING:
    from client.cli.application import Application

# What a grant lets a principal do, by the rights each client operation needs.
_ABILITIES = [
    ("read", rights.READ_FILE_NEEDS),
    ("write", rights.WRITE_FILE_NEEDS | rights.CREATE_FILE_NEEDS),
    ("append", rights.APPEND_FILE_NEEDS | rights.CREATE_FILE_NEEDS),
    ("execute", rights.EXECUTE_NEEDS),
]
_STREAM_ABILITIES = [("read", rights.READ_STREAM_NEEDS), ("write", rights.Rights.FD_WRITE)]


def abilities(path: str, value: int) -> str:
    table = _STREAM_ABILITIES if path in rights.STREAMS else _ABILITIES
    found = [name for name, needs in table if value & needs == needs]
    return ", ".join(found) if found else "-"


def _subject(certificate: str) -> str:
    try:
        cert = load_certificate(certificate)
    except IpocError:
        return "unparsable certificate"
    return cert.subject.rfc4514_string() or "(empty subject)"


def rows_for(document: dict[str, Any], kind: str) -> list[dict[str, str]]:
    """One row per (principal, path) grant in policy order."""
    rows: list[dict[str, str]] = []

    def add(principal: str, file_rights: list[dict[str, Any]]) -> None:
        for entry in file_rights:
            name, value = entry.get("file_name", ""), int(entry.get("rights", 0))
            rows.append(
                {
                    "principal": principal,
                    "path": name,
                    "rights": rights.render(value & rights.ALL),
                    "value": str(value),
                    "allows": abilities(rights.normalise_path(name) if name else name, value),
                }
            )

    for index, identity in enumerate(document.get("identities", [])):
        label = f"identity {identity.get('id', index)} ({_subject(identity.get('certificate', ''))})"
        add(label, identity.get("file_rights", []))
    if kind == "function":
        add("program-load identity (CCFaaS)", document.get("file_rights", []))
    for program in document.get("programs", []):
        add(f"program {program.get('program_file_name')}", program.get("file_rights", []))
    return rows


@click.command(short_help="Show who may do what, where")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.pass_obj
def explain(app: Application, policy_file: Path, as_json: bool) -> None:
    """Explain POLICY_FILE as a table: each identity and program, each path, its rights as names.

    Works on function, user, VaaS and full policies.
    """
    try:
        document = load_json(policy_file)
        kind = detect_kind(document)
        if kind == "full":
            document = read_policy(policy_file.read_bytes())  # as Veracruz reads it
        else:
            schemas.validate(kind, document)
        rows = rows_for(document, kind)
    except IpocError as exc:
        app.abort(exc.message)
    if as_json:
        app.terminal.display_json(rows)
        return
    app.terminal.display_table(
        f"{policy_file} ({schemas.LABELS[kind]})",
        ["Principal", "Path", "Rights", "Value", "Allows"],
        [[r["principal"], r["path"], r["rights"], r["value"], r["allows"]] for r in rows],
    )
    hashes = document.get("file_hashes") or []
    if hashes:
        app.terminal.display_table(
            "Files that must match a hash", ["Path", "sha256"], [[h["file_path"], h["hash"]] for h in hashes]
        )

"""``ipoc attestation verify``."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

if TYPE_CHECKING:
    from client.cli.application import Application
    from ipoc.nitro import Report


def _parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> _dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise click.BadParameter("must be an ISO 8601 time, e.g. 2024-09-09T19:49:12Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)


def document_bytes(data: bytes) -> bytes:
    """Raw NSM bytes (CBOR array or tag 18), or the same as base64 text (how samples and logs carry them)."""
    if data[:1] in (b"\x84", b"\xd2"):
        return data
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return data  # not base64 either: the verifier names what is wrong with it


@click.command(short_help="Verify an AWS Nitro Enclaves attestation document")
@click.argument("document", type=click.File("rb"))
@click.option(
    "--at",
    "at",
    callback=_parse_time,
    default=None,
    metavar="TIME",
    help="Verify the certificates as of this ISO 8601 time (UTC unless it says otherwise). [default: now]",
)
@click.option(
    "--at-document-time",
    is_flag=True,
    help="Verify as of the document's own timestamp (for recorded documents whose certificates have expired).",
)
@click.option(
    "--root",
    "root_pem",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM root to trust in place of the pinned AWS Nitro Enclaves root G1.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def verify(
    app: Application,
    document: BinaryIO,
    at: _dt.datetime | None,
    at_document_time: bool,
    root_pem: Path | None,
    as_json: bool,
) -> None:
    """Check DOCUMENT (raw CBOR or base64; - for stdin) the way the proxy does.

    Prints the module id, timestamp, PCRs and each check's verdict: COSE
    structure, ES384 algorithm, payload fields, the root (cabundle[0] is the
    trusted root), the chain, validity, key usages and the signature. Exits 1
    if any check fails.
    """
    from cryptography import x509

    from ipoc.nitro import AttestationError, check_document, document_time

    if at is not None and at_document_time:
        raise click.UsageError("--at and --at-document-time are exclusive")
    data = document_bytes(document.read())
    root = None
    if root_pem is not None:
        try:
            root = x509.load_pem_x509_certificate(root_pem.read_bytes())
        except ValueError as exc:
            app.abort(f"{root_pem} is not a PEM certificate: {exc}")
    if at_document_time:
        try:
            at = document_time(data)
        except AttestationError:
            at = None  # undecodable: the report below names the failed check
    report = check_document(data, root=root, at=at)
    if as_json:
        app.terminal.display_json(report.to_json())
    else:
        _print(app, report)
    if not report.valid:
        failure = report.first_failure()
        app.terminal.display_error(f"invalid: {failure.name}: {failure.detail}" if failure else "invalid")
        raise SystemExit(1)


def _print(app: Application, report: Report) -> None:
    from ipoc.nitro import CHECKS

    out = app.terminal.display
    doc = report.document
    if doc is not None:
        out(f"module_id   {doc.module_id}")
        out(f"timestamp   {doc.timestamp.isoformat(timespec='milliseconds')}")
        out(f"digest      {doc.digest}")
        for index, value in doc.pcrs.items():
            out(f"PCR{index:<2}       {value.hex()}")
        for name in ("public_key", "user_data", "nonce"):
            value = getattr(doc, name)
            out(f"{name:<11} {'absent' if value is None else f'{len(value)} bytes: {value.hex()}'}")
    out(f"verified at {report.at.isoformat()} against root sha256 {report.root_sha256}")
    ran = {check.name: check for check in report.checks}
    for name in CHECKS:
        check = ran.get(name)
        verdict = "not run" if check is None else ("ok" if check.passed else f"FAILED: {check.detail}")
        out(f"  {name:<10} {verdict}")
    out("valid" if report.valid else "INVALID")

"""``ipoc veracruz``: veracruz-client's command, with attestation checks it never made.

Order as veracruz-client: programs, then data, then computes, then results,
all in one attested session; a shutdown follows the results unless
``--no-shutdown``, or comes alone with ``--shutdown``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from client.cli.params import enclave_file_pair
from client.cli.policy.loading import load_credentials
from ipoc.client import VeracruzClient
from ipoc.errors import IpocError
from ipoc.policy import policy_hash

if TYPE_CHECKING:
    from client.cli.application import Application


def _open_source(local: str) -> tuple[BinaryIO, str]:
    if local == "-":
        return sys.stdin.buffer, "<stdin>"
    try:
        return open(local, "rb"), local
    except OSError as exc:
        raise click.BadParameter(f"cannot read {local}: {exc.strerror}") from None


@click.command(short_help="Talk to a Veracruz instance as one policy identity (veracruz-client compatible)")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--identity",
    "identity",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate of a policy identity.",
)
@click.option(
    "--key",
    "key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key of that certificate.",
)
@click.option(
    "--program",
    "programs",
    multiple=True,
    metavar="ENCLAVE_PATH=FILE",
    help="Write a program into the enclave ('-' reads stdin). Repeatable.",
)
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="ENCLAVE_PATH=FILE",
    help="Write a data file into the enclave, streamed in chunks ('-' reads stdin). Repeatable.",
)
@click.option("--compute", "computes", multiple=True, metavar="PATH", help="Execute a program. Repeatable.")
@click.option(
    "--result",
    "results",
    multiple=True,
    metavar="ENCLAVE_PATH=FILE|-",
    help="Read a file (or stdout/stderr) out of the enclave into FILE, '-' for stdout. Repeatable.",
)
@click.option("-n", "--no-shutdown", is_flag=True, help="Do not shut the instance down after reading results.")
@click.option("--shutdown", "force_shutdown", is_flag=True, help="Shut the instance down at the end.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for any one runtime reply.")
@click.pass_obj
def veracruz(
    app: Application,
    policy_file: Path,
    identity: Path,
    key: Path,
    programs: tuple[str, ...],
    data: tuple[str, ...],
    computes: tuple[str, ...],
    results: tuple[str, ...],
    no_shutdown: bool,
    force_shutdown: bool,
    timeout: float,
) -> None:
    """Connect to the instance POLICY_FILE describes, verify it, and run the requested actions.

    Before anything is sent, the runtime's certificate must chain to the
    policy's proxy_service_cert, its measurement must equal the policy's
    runtime_manager_hash_*, and its policy hash must equal the sha256 of
    POLICY_FILE's exact bytes.
    """
    uploads = [("program", *enclave_file_pair(v, "--program")) for v in programs] + [
        ("data", *enclave_file_pair(v, "--data")) for v in data
    ]
    reads = [enclave_file_pair(v, "--result") for v in results]
    if force_shutdown and no_shutdown:
        raise click.UsageError("--shutdown and --no-shutdown contradict each other: give one")
    shutdown = force_shutdown or (bool(reads) and not no_shutdown)
    if not uploads and not computes and not reads and not shutdown:
        raise click.UsageError("Nothing to do: give --program, --data, --compute, --result or --shutdown")

    terminal = app.terminal
    policy_bytes = policy_file.read_bytes()
    terminal.display_info(f"Loaded policy {policy_file} {policy_hash(policy_bytes)}")
    try:
        policy, certificate, private_key = load_credentials(policy_file, identity, key)
        client = VeracruzClient(policy, certificate, private_key, timeout=timeout)
        terminal.display_info(f"Connecting to {client.policy.server_url} as identity {client.identity_id}")
        with client:
            terminal.display_info(f"Verified runtime hash {client.verified['runtime_hash']}")
            terminal.display_info(f"Verified policy hash {client.verified['policy_hash']}")
            for kind, enclave, local in uploads:
                source, name = _open_source(local)
                size = os.fstat(source.fileno()).st_size if source is not sys.stdin.buffer else 0
                started = time.monotonic()
                with source if source is not sys.stdin.buffer else _NoClose(source):
                    with terminal.progress(f"{kind} {enclave}", size or None) as advance:
                        sent = client.stream_file(enclave, source, progress=advance)
                terminal.display_info(
                    f"Wrote {kind} {name} into <enclave>{enclave} ({sent} bytes, {time.monotonic() - started:.2f} s)"
                )
            for program in computes:
                started = time.monotonic()
                with terminal.status(f"running {program}"):
                    code = client.execute(program)
                terminal.display_info(f"Executed {program}: exit code {code} ({time.monotonic() - started:.2f} s)")
            for enclave, local in reads:
                content = client.read_file(enclave)
                if local == "-":
                    terminal.display_info(f"Reading <enclave>{enclave} into <stdout>")
                    sys.stdout.buffer.write(content)
                    sys.stdout.buffer.flush()
                else:
                    Path(local).write_bytes(content)
                    terminal.display_info(f"Read <enclave>{enclave} into {local} ({len(content)} bytes)")
            if shutdown:
                terminal.display_info("Shutting down enclave")
                client.shutdown()
    except IpocError as exc:
        app.abort(exc.message)
    except OSError as exc:
        app.abort(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


class _NoClose:
    """Use stdin in a with-block without closing it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None

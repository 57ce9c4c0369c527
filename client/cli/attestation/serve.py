"""``ipoc attestation serve``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from client.cli.params import platform_dir_option
from client.cli.serving import serve_until_stopped
from ipoc import paths

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Serve the proxy attestation service")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=3010, show_default=True, type=click.IntRange(0, 65535), help="Port (0 picks a free one)."
)
@click.option(
    "--mode",
    type=click.Choice(["local", "aws"]),
    default="local",
    show_default=True,
    help="local: trust this installation's simulated platforms (linux, nitro-sim); "
    "aws: trust only the pinned AWS Nitro root, refuse simulated evidence.",
)
@click.option(
    "--allow-pcr0",
    "allow_pcr0",
    multiple=True,
    envvar="IPOC_PCR0_ALLOWLIST",
    metavar="HEX",
    help="A PCR0 (96 hex digits) or its first 32 bytes (64, as runtime_manager_hash_nitro) whose enclaves "
    "may be certified; repeat, or comma-separate. [env: IPOC_PCR0_ALLOWLIST]",
)
@click.option(
    "--nitro-root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM root Nitro documents must chain to, in place of the default "
    "(AWS's pinned root in aws mode, the simulated NSM root in local mode).",
)
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA certificate to issue enclave certificates with (with --ca-key); "
    "default: the CA in --state-dir, created on first start.",
)
@click.option(
    "--ca-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --ca-cert.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the CA key and certificate live (created on first start). [default: $IPOC_HOME/attestation]",
)
@platform_dir_option
@click.option(
    "--cert-validity-hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Validity of issued enclave certificates.",
)
@click.pass_obj
def serve(
    app: Application,
    host: str,
    port: int,
    mode: str,
    allow_pcr0: tuple[str, ...],
    nitro_root: Path | None,
    ca_cert: Path | None,
    ca_key: Path | None,
    state_dir: Path | None,
    platform_dir: Path | None,
    cert_validity_hours: float,
) -> None:
    """Certify runtimes: check their evidence and issue enclave certificates (Veracruz v1.3's proxy routes).

    Nitro documents are refused unless they chain to the trusted root, answer
    this proxy's challenge, carry the enclave's CSR and a PCR0 in the allow-list.
    Runs until interrupted (Ctrl-C or SIGTERM).
    """
    # imported late: keeps `ipoc --help` fast
    from cryptography import x509

    from runtime.attestation.ca import CaError, CertificateAuthority
    from runtime.attestation.nitro import parse_allowlist
    from runtime.attestation.service import make_server

    app.configure_logging()
    if (ca_cert is None) != (ca_key is None):
        raise click.UsageError("--ca-cert and --ca-key go together")
    try:
        allowed = parse_allowlist(allow_pcr0)
        ca = CertificateAuthority.from_files(ca_cert, ca_key) if ca_cert and ca_key else None
        root = x509.load_pem_x509_certificate(nitro_root.read_bytes()) if nitro_root else None
    except (ValueError, CaError) as exc:
        app.abort(str(exc))
    try:
        server = make_server(
            host,
            port,
            state_dir or paths.attestation_dir(),
            platform_dir or paths.platform_dir(),
            _dt.timedelta(hours=cert_validity_hours),
            mode=mode,
            allowed_pcr0=allowed,
            ca=ca,
            nitro_root=root,
        )
    except ValueError as exc:
        app.abort(str(exc))
    except OSError as exc:
        app.abort(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound_host, bound_port = server.server_address[:2]
    app.terminal.display_info(f"CA certificate: {server.state.ca.cert_path}")
    if server.state.nitro is not None:
        app.terminal.display_info(f"Nitro documents must chain to the {server.state.nitro.summary()}")
    app.terminal.display_info(f"Proxy attestation service ({mode}) listening on http://{bound_host!s}:{bound_port}")

    serve_until_stopped(server)

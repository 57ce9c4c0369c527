"""``ipoc attestation serve``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from client.cli.serving import serve_until_stopped
from ipoc import paths

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Serve the proxy attestation service")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=3010, show_default=True, type=click.IntRange(0, 65535), help="Port (0 picks a free one).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the CA key and certificate live (created on first start). [default: $IPOC_HOME/attestation]")
@click.option("--platform-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the simulated platform key lives. [default: $IPOC_HOME/platform]")
@click.option("--cert-validity-hours", default=24.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Validity of issued enclave certificates.")
@click.pass_obj
def serve(
    app: "Application",
    host: str,
    port: int,
    state_dir: Path | None,
    platform_dir: Path | None,
    cert_validity_hours: float,
) -> None:
    """Certify local runtimes: check their simulated evidence and issue enclave certificates.

    Runs until interrupted (Ctrl-C or SIGTERM).
    """
    from runtime.attestation.service import make_server  # imported late: keeps `ipoc --help` fast

    app.configure_logging()
    try:
        server = make_server(
            host,
            port,
            state_dir or paths.attestation_dir(),
            platform_dir or paths.platform_dir(),
            _dt.timedelta(hours=cert_validity_hours),
        )
    except OSError as exc:
        app.abort(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound_host, bound_port = server.server_address[:2]
    app.terminal.display_info(f"CA certificate: {server.state.ca.cert_path}")
    app.terminal.display_info(f"Proxy attestation service listening on http://{bound_host}:{bound_port}")

    serve_until_stopped(server)

"""Command-line parameters more than one command declares, declared once."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

platform_dir_option = click.option(
    "--platform-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the simulated platform's key and NSM root live. [default: $IPOC_HOME/platform]",
)


def enclave_file_pair(value: str, option: str) -> tuple[str, str]:
    """``ENCLAVE_PATH=FILE`` → ``(ENCLAVE_PATH, FILE)``; both parts are required (``--program /p.wasm=p.wasm``)."""
    enclave, sep, local = value.partition("=")
    if not sep or not enclave or not local:
        raise click.BadParameter(f"expected ENCLAVE_PATH=FILE, got {value!r}", param_hint=option)
    return enclave, local


def s3_url(value: str, param_hint: str | None = None) -> tuple[str, str]:
    """``s3://BUCKET/KEY`` → ``(BUCKET, KEY)``; anything else is a usage error."""
    parts = urlsplit(value)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise click.BadParameter(f"expected s3://BUCKET/KEY, got {value!r}", param_hint=param_hint)
    return parts.netloc, parts.path.lstrip("/")

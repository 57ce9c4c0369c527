"""A local stack (`ipoc local up --detach`) as the benchmarks and the tests that start their own drive it:
its ports, its command line, its environment, a client of its local AWS, and the echo function registered
over its HTTP API (bench may not import tests; tests/support/local_stack.py re-exports these)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import boto3
import requests

from bench.harness import policies


def stack_ports(base: int) -> dict[str, int]:
    """The five services' ports of a stack started on ``base`` (``free_port_range(5 + slots)``); its runtimes'
    ports follow them."""
    return {"ccfaas": base, "vaas": base + 1, "s3stream": base + 2, "proxy": base + 3, "aws": base + 4}


def up_args(base: int, slots: int, *extra: str) -> list[str]:
    """`ipoc local up --detach` on the ports from ``base``: the services', then ``slots`` runtime ports."""
    return [
        "local",
        "up",
        "--detach",
        *[arg for name, port in stack_ports(base).items() for arg in (f"--{name}-port", str(port))],
        "--runtime-ports",
        f"{base + 5}-{base + 4 + slots}",
        *extra,
    ]


def stack_env(home: Path, **extra: str) -> dict[str, str]:
    """A stack's own IPOC_HOME and profile file (nothing of the developer's), plus ``extra`` settings."""
    return {"IPOC_HOME": str(home), "IPOC_CONFIG": str(home / "config.toml"), **extra}


def aws_client(endpoint: str, service: str, **options: Any) -> Any:
    """A boto3 client of a local AWS (a stack's ``url["aws"]``), as the stack's own processes reach it: moto checks
    no signature, so any key signs; ``options`` go to boto3 (a ``config``)."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        **options,
    )


def register_echo(ccfaas: str, name: str, wasm: bytes) -> None:
    """Register the echo function ``name`` through CCFaaS's HTTP API and upload its program (each a 201)."""
    created = requests.post(f"{ccfaas}/function", json=policies.echo_function(name, wasm), timeout=60)
    assert created.status_code == 201, created.text
    segment = base64.b64encode(policies.ECHO.encode()).decode()
    uploaded = requests.post(f"{ccfaas}/function/{name}/program/{segment}", data=wasm, timeout=60)
    assert uploaded.status_code == 201, uploaded.text

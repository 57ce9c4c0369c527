"""The whole local stack as real subprocesses (`ipoc local up --detach`), as a module-scoped fixture, and the
pieces the tests that start their own stack share: its command line, its environment, and registering and
creating over its HTTP API.

Shared by the e2e, reliability and compatibility suites: each conftest (or
module) that needs it imports ``stack`` from here, never from another suite's
conftest.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from ipoc.certs import Identity
from tests.support import policies, processes
from tests.support.waiting import free_port_range

SLOTS = 10  # runtime slots (and runtime ports) the stack is started with


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
    assert requests.post(f"{ccfaas}/function", json=policies.echo_function(name, wasm), timeout=60).status_code == 201
    segment = base64.b64encode(policies.ECHO.encode()).decode()
    assert requests.post(f"{ccfaas}/function/{name}/program/{segment}", data=wasm, timeout=60).status_code == 201


def create_ready(ccfaas: str, instance_id: str, user: Identity, function: str = "echo") -> str:
    """An instance of ``function`` for ``user`` through CCFaaS, waited for until READY (the original's 200); its
    exact policy text."""
    body: dict[str, Any] = {
        "function": function,
        "instanceid": instance_id,
        "identities": [{"certificate": user.certificate, "file_rights": policies.USER_RIGHTS}],
    }
    created = requests.post(f"{ccfaas}/instance", json=body, timeout=120)
    assert created.status_code == 200, created.text
    return created.json()["policy"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`ipoc local up --detach` with its own IPOC_HOME, profile file and free ports (once per module)."""
    home = tmp_path_factory.mktemp("stack-home")
    base = free_port_range(5 + SLOTS)
    ports, env = stack_ports(base), stack_env(home)
    started = processes.run(up_args(base, SLOTS, "--reaper-interval", "1"), env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    status = processes.run(["local", "status", "--json"], env=env)
    state = json.loads(status.stdout)
    try:
        yield {"env": env, "state": state, "home": home, "url": {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}}
    finally:
        stopped = processes.run(["local", "down"], env=env, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert processes.run(["local", "status"], env=env).returncode == 1

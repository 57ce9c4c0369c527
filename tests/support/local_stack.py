"""The whole local stack as real subprocesses (`ipoc local up --detach`), as a module-scoped fixture, and the
pieces the tests that start their own stack share: its command line, its environment, and registering and
creating over its HTTP API (all but creating from :mod:`bench.harness.stack`, which the benchmarks share).

Shared by the e2e, reliability and compatibility suites: each conftest (or
module) that needs it imports ``stack`` from here, never from another suite's
conftest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from bench.harness.stack import aws_client, register_echo, stack_env, stack_ports, up_args
from ipoc.certs import Identity
from tests.support import policies, processes
from tests.support.waiting import free_port_range

__all__ = ["SLOTS", "aws_client", "create_ready", "register_echo", "stack", "stack_env", "stack_ports", "up_args"]

SLOTS = 10  # runtime slots (and runtime ports) the stack is started with


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

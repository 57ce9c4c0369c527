"""The whole local stack as real subprocesses (`ipoc local up --detach`), as a module-scoped fixture.

Shared by the e2e, reliability and compatibility suites: each conftest (or
module) that needs it imports ``stack`` from here, never from another suite's
conftest.
"""

from __future__ import annotations

import json

import pytest

from tests.support import processes
from tests.support.waiting import free_port_range

SLOTS = 10  # runtime slots (and runtime ports) the stack is started with


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`ipoc local up --detach` with its own IPOC_HOME, profile file and free ports (once per module)."""
    home = tmp_path_factory.mktemp("stack-home")
    base = free_port_range(5 + SLOTS)
    ports = {"ccfaas": base, "vaas": base + 1, "s3stream": base + 2, "proxy": base + 3, "aws": base + 4}
    env = {"IPOC_HOME": str(home), "IPOC_CONFIG": str(home / "config.toml")}
    started = processes.run(
        [
            "local",
            "up",
            "--detach",
            "--ccfaas-port",
            str(ports["ccfaas"]),
            "--vaas-port",
            str(ports["vaas"]),
            "--s3stream-port",
            str(ports["s3stream"]),
            "--proxy-port",
            str(ports["proxy"]),
            "--aws-port",
            str(ports["aws"]),
            "--runtime-ports",
            f"{base + 5}-{base + 4 + SLOTS}",
            "--reaper-interval",
            "1",
        ],
        env=env,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr
    status = processes.run(["local", "status", "--json"], env=env)
    state = json.loads(status.stdout)
    try:
        yield {"env": env, "state": state, "home": home, "url": {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}}
    finally:
        stopped = processes.run(["local", "down"], env=env, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert processes.run(["local", "status"], env=env).returncode == 1

"""End-to-end fixtures: the ``ipoc`` CLI as real subprocesses on loopback ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import json

import pytest

from tests.support import processes
from ipoc.wire.carrier import port_open
from tests.support.waiting import free_port, free_port_range, wait_until

SLOTS = 10


@dataclass(frozen=True)
class CliProxy:
    url: str
    ca_pem: str
    process: processes.Process


@pytest.fixture(scope="module")
def cli_proxy(tmp_path_factory: pytest.TempPathFactory, ipoc_home: Path) -> Iterator[CliProxy]:
    """`ipoc attestation serve` on a free port, with its own state directory."""
    state = tmp_path_factory.mktemp("proxy-state")
    port = free_port()
    process = processes.start(
        ["attestation", "serve", "--port", str(port), "--state-dir", str(state)], state / "proxy.log"
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port) or process.proc.poll() is not None, what="the proxy's port")
        assert process.proc.poll() is None, process.output()
        wait_until(lambda: "CA certificate:" in process.output(), what="the proxy's CA line")
        yield CliProxy(url=f"127.0.0.1:{port}", ca_pem=(state / "ca-cert.pem").read_text(), process=process)
    finally:
        process.stop()


@pytest.fixture
def serve_runtime(tmp_path: Path) -> Iterator[Callable[..., processes.Process]]:
    """Start `ipoc runtime serve POLICY` and wait until its port opens (i.e. it has attested)."""
    started: list[processes.Process] = []

    def serve(policy_text: str, *extra: str) -> processes.Process:
        from ipoc.policy import parse_full_policy
        from ipoc.wire.carrier import split_url

        policy_file = tmp_path / f"policy-{len(started)}.json"
        policy_file.write_text(policy_text)
        host, port = split_url(parse_full_policy(policy_text).server_url)
        process = processes.start(["runtime", "serve", str(policy_file), *extra], tmp_path / f"runtime-{len(started)}.log")
        started.append(process)
        wait_until(lambda: port_open(host, port) or process.proc.poll() is not None, what="the runtime's port")
        assert process.proc.poll() is None, process.output()
        return process

    yield serve
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`ipoc local up --detach` with its own IPOC_HOME, profile file and free ports (once per module)."""
    home = tmp_path_factory.mktemp("stack-home")
    base = free_port_range(5 + SLOTS)
    ports = {"ccfaas": base, "vaas": base + 1, "s3stream": base + 2, "proxy": base + 3, "aws": base + 4}
    env = {"IPOC_HOME": str(home), "IPOC_CONFIG": str(home / "config.toml")}
    started = processes.run(
        ["local", "up", "--detach", "--ccfaas-port", str(ports["ccfaas"]), "--vaas-port", str(ports["vaas"]),
         "--s3stream-port", str(ports["s3stream"]), "--proxy-port", str(ports["proxy"]), "--aws-port", str(ports["aws"]),
         "--runtime-ports", f"{base + 5}-{base + 4 + SLOTS}", "--reaper-interval", "1"],
        env=env, timeout=180,
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



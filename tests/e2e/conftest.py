"""End-to-end fixtures: the ``ipoc`` CLI as real subprocesses on loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipoc.wire.carrier import port_open
from tests.support import processes
from tests.support.waiting import free_port, wait_until


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
        process = processes.start(
            ["runtime", "serve", str(policy_file), *extra], tmp_path / f"runtime-{len(started)}.log"
        )
        started.append(process)
        wait_until(lambda: port_open(host, port) or process.proc.poll() is not None, what="the runtime's port")
        assert process.proc.poll() is None, process.output()
        return process

    yield serve
    for process in started:
        process.stop()

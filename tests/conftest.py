"""Shared fixtures: an isolated IPOC_HOME, identities, the echo program, a proxy, runtimes.

Proxies and runtimes here are the real servers on real loopback sockets, run
in threads of the test process; tests under ``e2e/`` start them as
subprocesses of the ``ipoc`` CLI instead.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ipoc.certs import Identity, new_identity
from tests.support import policies
from tests.support.waiting import free_port
from tests.support.wasm import zig_wasi_command

ROOT = Path(__file__).resolve().parent.parent
ECHO_SOURCE = ROOT / "functions" / "echo" / "echo.c"
ECHO_WASM = ROOT / "build" / "functions" / "echo" / "echo.wasm"

# Fixtures kept with the helpers they go with in tests/support/, offered to every test here (a test module that
# imported them would shadow them, and ruff reads that as a redefinition): `aws` (moto, and VaaS on its local
# backend), `setup` (the S3 streamer over moto and a runtime), `matrix` (a runtime for the rights matrix), `stack`
# (the local stack as subprocesses, per module) and `synth` (one synthesis of the CDK app per session).
pytest_plugins = [
    "tests.support.vaas",
    "tests.support.s3stream",
    "tests.support.rights_matrix",
    "tests.support.local_stack",
    "tests.support.synth",
]


@pytest.fixture(scope="session", autouse=True)
def ipoc_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test (and every subprocess it starts) keeps local state in a private IPOC_HOME."""
    home = tmp_path_factory.mktemp("ipoc-home")
    previous = os.environ.get("IPOC_HOME")
    os.environ["IPOC_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("IPOC_HOME", None)
    else:
        os.environ["IPOC_HOME"] = previous


@pytest.fixture(scope="session", autouse=True)
def atomic_moto_dynamodb() -> None:
    """moto races under threads where AWS does not (see local/moto_patches.py)."""
    from local import moto_patches

    moto_patches.apply_all()


@pytest.fixture(scope="session", autouse=True)
def local_vaas_backend() -> None:
    """Handlers run in the test process reach IPOC_VAAS_BACKEND=local as the local stack wires it in."""
    from local import runtimes

    runtimes.register()


@pytest.fixture(scope="session")
def echo_wasm() -> bytes:
    """The echo test program, built by `make functions` (or here, the same way, when missing)."""
    if not ECHO_WASM.exists() or ECHO_WASM.stat().st_mtime < ECHO_SOURCE.stat().st_mtime:
        ECHO_WASM.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(zig_wasi_command(ECHO_SOURCE, ECHO_WASM), check=True, timeout=300)
    return ECHO_WASM.read_bytes()


@dataclass(frozen=True)
class Identities:
    user: Identity
    loader: Identity
    streamer: Identity
    outsider: Identity


@pytest.fixture(scope="session")
def ids() -> Identities:
    return Identities(
        user=new_identity("user"),
        loader=new_identity("program-loader"),
        streamer=new_identity("streamer"),
        outsider=new_identity("outsider"),
    )


@dataclass(frozen=True)
class Proxy:
    url: str
    ca_pem: str
    platform_dir: Path


@pytest.fixture(scope="session")
def proxy(ipoc_home: Path) -> Iterator[Proxy]:
    """The proxy attestation service, in a thread, on a free loopback port."""
    from runtime.attestation.service import make_server

    server = make_server("127.0.0.1", 0, ipoc_home / "attestation", ipoc_home / "platform")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # an AF_INET address, not a Unix socket's bytes
    try:
        yield Proxy(url=f"{host}:{port}", ca_pem=server.state.ca.certificate_pem, platform_dir=ipoc_home / "platform")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Runtime:
    policy: str
    server: Any
    scratch: Path
    thread: threading.Thread

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


class RuntimeLauncher:
    """Starts in-process runtimes (attested by ``proxy``) and stops them all at the end."""

    def __init__(self, proxy: Proxy, scratch_parent: Path) -> None:
        self.proxy = proxy
        self.scratch_parent = scratch_parent
        self.started: list[Runtime] = []

    def start(
        self,
        vaas: dict[str, Any],
        *,
        measurement: str | None = None,
        time_limit: float = 30.0,
    ) -> Runtime:
        from runtime.measurement import measurement as real_measurement

        text = policies.full_policy(
            vaas,
            proxy_url=self.proxy.url,
            proxy_cert=self.proxy.ca_pem,
            measurement=real_measurement(),
            port=free_port(),
        )
        return self.serve(text, measurement=measurement, time_limit=time_limit)

    def serve(self, text: str, *, measurement: str | None = None, time_limit: float = 30.0) -> Runtime:
        """Attest and serve this exact policy text (its URL, proxy and hashes are used as written)."""
        from ipoc.policy import parse_full_policy
        from runtime.measurement import measurement as real_measurement
        from runtime.server import build_server

        server, scratch = build_server(
            parse_full_policy(text),
            platform_dir=self.proxy.platform_dir,
            measurement=measurement or real_measurement(),
            scratch_parent=self.scratch_parent,
            time_limit=time_limit,
        )
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        runtime = Runtime(policy=text, server=server, scratch=scratch, thread=thread)
        self.started.append(runtime)
        return runtime

    def stop_all(self) -> None:
        for runtime in self.started:
            runtime.server.shutdown()
            runtime.server.server_close()
            runtime.thread.join(10)


@pytest.fixture
def start_runtime(proxy: Proxy, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Start in-process runtimes for policies completed from a VaaS policy; all stopped at teardown."""
    launcher = RuntimeLauncher(proxy, tmp_path / "scratch")
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_launcher(proxy: Proxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLauncher]:
    launcher = RuntimeLauncher(proxy, tmp_path_factory.mktemp("scratch"))
    yield launcher
    launcher.stop_all()

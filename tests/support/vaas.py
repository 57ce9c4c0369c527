"""VaaS over moto with the local backend: real runtime processes attested by the test session's proxy.

Used by tests/functional/lambdas/test_vaas.py and tests/compat/test_vaas_original_calls.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from moto import mock_aws

from local.runtimes import running_ports
from runtime.measurement import measurement
from tests.support.aws import Names, configure
from tests.support.waiting import free_port_range

SLOTS = 2


@dataclass
class LocalVaaS(Names):
    """The tables and buckets, and where the local backend keeps its runtimes and the first port it gives."""

    state_dir: Path
    base: int


@pytest.fixture
def aws(monkeypatch, proxy, tmp_path: Path) -> Iterator[LocalVaaS]:
    """moto with VaaS's settings and the local backend (real runtime processes on free ports); stops every runtime
    after."""
    base = free_port_range(SLOTS)
    with mock_aws():
        names = configure(
            monkeypatch,
            IPOC_VAAS_BACKEND="local",
            IPOC_STATE_DIR=str(tmp_path / "runtimes"),
            IPOC_PROXY_URL=proxy.url,
            IPOC_PROXY_CERT=proxy.ca_pem,
            IPOC_RUNTIME_HASH=measurement(),
            IPOC_PORT_MIN=str(base),
            IPOC_PORT_MAX=str(base + SLOTS - 1),
        )
        yield LocalVaaS(**asdict(names), state_dir=tmp_path / "runtimes", base=base)
        for port in running_ports(tmp_path / "runtimes"):  # never leave a runtime behind
            from local.runtimes import LocalBackend

            LocalBackend.from_settings().stop(port, {})

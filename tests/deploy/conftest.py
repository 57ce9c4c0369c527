"""The deployment proofs reuse the template tests' synthesis (``tests/support/synth.py``) and add a moto server
for the synthesized code to talk to."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.synth import Synth
from tests.support.waiting import free_port


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port (its endpoint URL): AWS as the isolated Lambda processes see it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def stack_template(synth: Synth, name: str = "Ipoc") -> dict:
    return synth.assembly.get_stack_by_name(name).template


def assembly_directory(synth: Synth) -> str:
    return os.fspath(synth.assembly.directory)

"""Every TLS 1.3 ciphersuite Veracruz's parser accepts works, pinned, in our runtime and client.

mbedTLS's table (the oracle: veracruz-policy-types.md §1) has five TLS 1.3
suites; generate-policy writes ChaCha20, and the tag's parser accepts the AES
ones too. Each suite is pinned on both sides (exactly one offered), checked
over a real TCP socket and through a real runtime.
"""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from ipoc.certs import new_identity
from ipoc.client import VeracruzClient
from ipoc.policy_serde import TLS13_SUITES
from ipoc.wire.tls import client_context, server_context
from runtime.measurement import measurement
from tests.compat.shapes import generate_policy
from tests.support.waiting import free_port

SUITES = [name.replace("-", "_") for name in TLS13_SUITES]
SERVER, CLIENT = new_identity("enclave"), new_identity("client")


def _handshake(server_suite: str, client_suite: str) -> tuple[tuple | None, object]:
    """One TLS handshake over a loopback TCP socket; returns (client's cipher, server's cipher or error)."""
    server_ctx = server_context(SERVER.certificate, SERVER.private_key, [CLIENT.certificate], server_suite)
    client_ctx = client_context(SERVER.certificate, CLIENT.certificate, CLIENT.private_key, client_suite)
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: dict[str, object] = {}

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
                outcome["server"] = tls.cipher()
        except (ssl.SSLError, OSError) as exc:
            outcome["server"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    client_cipher = None
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_ctx.wrap_socket(raw) as tls:
                tls.sendall(b"x")
                client_cipher = tls.cipher()
    except (ssl.SSLError, OSError):
        pass
    finally:
        thread.join(10)
        listener.close()
    return client_cipher, outcome.get("server")


@pytest.mark.parametrize("suite", SUITES)
def test_each_tls13_suite_is_negotiated_over_a_real_socket(suite: str):
    client_cipher, server_cipher = _handshake(suite, suite)
    expected = TLS13_SUITES[suite.replace("_", "-")]
    assert client_cipher is not None and client_cipher[0] == expected and client_cipher[1] == "TLSv1.3"
    assert isinstance(server_cipher, tuple) and server_cipher[0] == expected


@pytest.mark.parametrize(
    "server_suite,client_suite",
    [
        ("TLS1_3_CHACHA20_POLY1305_SHA256", "TLS1_3_AES_128_GCM_SHA256"),
        ("TLS1_3_AES_256_GCM_SHA384", "TLS1_3_AES_128_GCM_SHA256"),
    ],
)
def test_a_client_pinned_to_another_suite_cannot_connect(server_suite: str, client_suite: str):
    """Pinned means exactly one suite on each side: no fallback to a suite the policy did not name."""
    client_cipher, server_outcome = _handshake(server_suite, client_suite)
    assert client_cipher is None
    assert isinstance(server_outcome, ssl.SSLError)


@pytest.mark.parametrize(
    "suite", ["TLS1_3_AES_128_GCM_SHA256", "TLS1_3_AES_256_GCM_SHA384", "TLS1-3-AES-128-CCM-8-SHA256"]
)
def test_runtime_and_client_speak_the_policys_suite(suite: str, launcher, proxy):
    user = new_identity("user")
    text = generate_policy(
        "linux",
        [(user, [{"file_name": "/input/", "rights": 534084}])],
        measurement=measurement(),
        proxy_url=proxy.url,
        proxy_cert=proxy.ca_pem,
        server_url=f"127.0.0.1:{free_port()}",
        ciphersuite=suite,
    )
    runtime = launcher.serve(text)
    with VeracruzClient(runtime.policy, user.certificate, user.private_key) as client:
        assert client.verified["ciphersuite"] == TLS13_SUITES[suite.replace("_", "-")]
        client.write_file("/input/x", b"over " + suite.encode())
    assert (runtime.scratch / "fs" / "input" / "x").read_bytes() == b"over " + suite.encode()

"""The HTTP carrier against a real runtime: batching under the body limit, and the server's own limits."""

from __future__ import annotations

import base64
import http.client

import pytest

from ipoc.client import VeracruzClient
from ipoc.wire import carrier as carrier_module
from ipoc.wire.carrier import MAX_BODY, encode_body_parts, split_url
from tests.support import policies


@pytest.fixture
def streamer_runtime(start_runtime, ids):
    return start_runtime(policies.vaas_policy([(ids.streamer, [{"file_name": "/input/", "rights": 534084}])]))


def test_large_messages_are_batched_into_posts_under_the_limit(streamer_runtime, ids, monkeypatch):
    bodies: list[int] = []

    def recording(session_id, data):
        parts = encode_body_parts(session_id, data)
        bodies.append(len(b"".join(parts)))
        return parts

    monkeypatch.setattr(carrier_module, "encode_body_parts", recording)
    payload = b"\x5a" * (3 << 20)  # one 3 MiB message: about 190 TLS records
    with VeracruzClient(streamer_runtime.policy, ids.streamer.certificate, ids.streamer.private_key) as client:
        before = len(bodies)
        client.write_file("/input/blob", payload)
        posts = bodies[before:]
    assert (streamer_runtime.scratch / "fs" / "input" / "blob").read_bytes() == payload
    assert max(posts) < MAX_BODY
    # Batched: far fewer posts than the ~190 TLS records the message needs (the original sent one per record).
    assert len(posts) <= 20


def test_runtime_refuses_oversized_and_malformed_bodies(streamer_runtime):
    host, port = split_url(streamer_runtime.server.manager.policy.server_url)

    def post(body: bytes, path: str = "/runtime_manager") -> tuple[int, str]:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("POST", path, body=body)
            reply = conn.getresponse()
            return reply.status, reply.read().decode()
        finally:
            conn.close()

    assert post(b"0 " + b"A" * MAX_BODY)[0] == 413
    assert post(b"zero AAAA") == (
        400,
        "InvalidRequest: malformed body: invalid literal for int() with base 10: b'zero'",
    )
    status, text = post(b"0 !!!!")
    assert status == 400 and text.startswith("InvalidRequest: malformed body")
    assert post(b"99 AAAA") == (500, "InvalidSession: no TLS session 99 (it ended or never existed)")
    assert post(b"0 AAAA", path="/elsewhere")[0] == 404
    # not TLS at all: the handshake fails and the session is dropped
    status, text = post(b"0 " + base64.b64encode(b"GET / HTTP/1.1\r\n\r\n"))
    assert status == 500 and text.startswith("HandshakeFailed: TLS handshake failed")


def test_post_size_is_bounded_and_configurable(streamer_runtime, ids):
    with pytest.raises(ValueError, match="256 KiB"):
        VeracruzClient(streamer_runtime.policy, ids.streamer.certificate, ids.streamer.private_key, post_bytes=1 << 20)
    # one post per TLS record, as the original client: many more posts for the same message
    client = VeracruzClient(
        streamer_runtime.policy, ids.streamer.certificate, ids.streamer.private_key, post_bytes=16 * 1024 + 22
    )
    with client:
        before = client._carrier.posts
        client.write_file("/input/records", b"\x01" * (1 << 20))
        assert client._carrier.posts - before >= 60

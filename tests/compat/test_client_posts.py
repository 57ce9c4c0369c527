"""Item 7: the client never posts a body without TLS bytes.

veracruz-server reads a body as ``"<session_id> <base64>"`` and rejects one
without the second field. A runtime answers within the reply to the post that
completes a request, so when a reply is lost the client must fail the request
rather than poll with ``"<sid> "``. The runtime here is real; the carrier is
wrapped to record each body and, once, to lose the runtime's reply.
"""

from __future__ import annotations

import pytest

import ipoc.client
from ipoc.client import VeracruzClient
from ipoc.errors import VeracruzError
from ipoc.wire.carrier import HttpCarrier, encode_body
from tests.support import policies


class LosingCarrier(HttpCarrier):
    bodies: list[bytes] = []
    lose_next_reply = False

    def exchange(self, session_id: int, data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
        LosingCarrier.bodies.append(encode_body(session_id, data))
        session, reply = super().exchange(session_id, data)
        if LosingCarrier.lose_next_reply:
            LosingCarrier.lose_next_reply = False
            return session, b""
        return session, reply


def test_a_lost_reply_fails_the_request_without_empty_posts(start_runtime, ids, monkeypatch):
    runtime = start_runtime(policies.vaas_policy([(ids.user, policies.USER_RIGHTS)]))
    monkeypatch.setattr(ipoc.client, "HttpCarrier", LosingCarrier)
    LosingCarrier.bodies = []
    client = VeracruzClient(runtime.policy, ids.user.certificate, ids.user.private_key)
    client.connect()
    client.write_file("/input/a", b"first")
    LosingCarrier.lose_next_reply = True
    with pytest.raises(VeracruzError, match="ended before a complete response"):
        client.write_file("/input/b", b"second")
    client.close()
    assert LosingCarrier.bodies
    assert all(len(body.split()) == 2 for body in LosingCarrier.bodies), [
        b for b in LosingCarrier.bodies if len(b.split()) < 2
    ]


def test_the_carrier_refuses_to_send_nothing(start_runtime, ids):
    runtime = start_runtime(policies.vaas_policy([(ids.user, policies.USER_RIGHTS)]))
    carrier = HttpCarrier(runtime.server.manager.policy.server_url)
    try:
        with pytest.raises(ValueError, match="nothing to send"):
            carrier.exchange(0, b"")
    finally:
        carrier.close()

"""The proxy attestation service faces untrusted clients too (in AWS the runtime pods reach it, and the Nitro
model trusts only what runs inside the enclave): a body is refused on its Content-Length before any of it is
read, as the runtime's is (item 9), and a malformed length is a 400, not a dropped connection."""

from __future__ import annotations

from tests.security.runtime_support import raw_exchange


def test_a_negative_or_malformed_content_length_is_a_400(proxy):
    for value in (b"-1", b"abc"):
        # GIVEN a length the header check must not let through, and a body sent behind it
        head = b"POST /Start HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n"
        reply = raw_exchange(proxy.url, head, b"A" * 65536)
        # THEN a JSON 400 at once (before: -1 read the body until the client closed; abc dropped the connection)
        assert reply.raw.startswith(b"HTTP/1.1 400"), reply.raw[:120]
        assert reply.json()["error"] == "InvalidRequest" and "Content-Length" in reply.json()["message"]


def test_an_oversize_content_length_is_refused_without_reading_the_body(proxy):
    head = b"POST /Nitro/AttestationToken HTTP/1.1\r\nHost: x\r\nContent-Length: 536870912\r\n\r\n"
    reply = raw_exchange(proxy.url, head, b"A" * 65536)  # 64 KiB of the announced 512 MiB
    assert reply.raw.startswith(b"HTTP/1.1 413"), reply.raw[:120]
    assert reply.json()["error"] == "PayloadTooLarge"

"""Item 9: an oversize body is refused on its Content-Length, before the runtime reads (and buffers) it."""

from __future__ import annotations

from tests.security.runtime_support import raw_exchange


def test_a_512_mib_content_length_is_refused_without_reading_the_body(start_runtime, ids):
    from tests.support import policies

    runtime = start_runtime(policies.vaas_policy([(ids.user, [])]))
    head = b"POST /runtime_manager HTTP/1.1\r\nHost: x\r\nContent-Length: 536870912\r\n\r\n"
    # only 64 KiB of the announced 512 MiB are ever sent: the answer must not wait for the rest
    reply = raw_exchange(runtime.server.manager.policy.server_url, head, b"0 " + b"A" * 65534)
    assert reply.raw.startswith(b"HTTP/1.1 413"), reply.raw[:100]
    assert reply.body.startswith(b"PayloadTooLarge: ")


def test_a_bad_content_length_is_refused(start_runtime, ids):
    from tests.support import policies

    runtime = start_runtime(policies.vaas_policy([(ids.user, [])]))
    for value in (b"-5", b"lots"):
        reply = raw_exchange(
            runtime.server.manager.policy.server_url,
            b"POST /runtime_manager HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n",
            b"",
        )
        assert reply.raw.startswith(b"HTTP/1.1 400"), reply.raw[:100]
        assert reply.body.startswith(b"InvalidRequest: ")

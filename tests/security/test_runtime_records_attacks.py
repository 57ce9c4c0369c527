"""Attacks on the runtime's own reading of a session's TLS 1.3 records (afternoon review).

A real OpenSSL client (VeracruzClient's ``SSLObject``, driven through ctypes where Python has no API, as for
KeyUpdate) talks to an in-process runtime; the oracle is RFC 8446 and what OpenSSL as a server does with the
same records.
"""

from __future__ import annotations

import base64
import ssl

import pytest

from ipoc import rights
from ipoc.wire import messages
from ipoc.wire.carrier import HttpCarrier
from ipoc.wire.framing import FrameDecoder, frame
from ipoc.wire.tls import client_context
from runtime.refusal import Refused
from tests.security.runtime_support import client, fresh, post
from tests.support import policies
from tests.support.tls import request_key_update


@pytest.fixture
def runtime(start_runtime):
    users = [fresh(f"user{i}") for i in range(2)]
    vaas = policies.vaas_policy([(u, [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}]) for u in users])
    return start_runtime(vaas), users


def _queue_key_update(tls) -> None:
    """Have the client's OpenSSL write a KeyUpdate asking for one back now (into its outgoing BIO, sent with
    the next post)."""
    request_key_update(tls, requested=True)
    tls.do_handshake()  # writes the pending KeyUpdate and finishes the "handshake" it started


def _seal(keys, inner: bytes) -> bytes:
    """A record the client's next one would be (RFC 8446 5.2), sealed with the keys the runtime holds for it."""
    header = bytes([23, 3, 3]) + (len(inner) + keys.tag_length).to_bytes(2, "big")
    nonce = (keys._iv ^ keys.sequence).to_bytes(12, "big")
    return header + keys.aead.encrypt(nonce, inner, header)


def test_two_requested_key_updates_while_the_server_is_silent_get_one_answer(runtime):
    """RFC 8446 4.6.3: a receiver of several KeyUpdates with update_requested while it is silent answers
    with a single update. Two in one post must not end the session (OpenSSL as server merely notes one
    pending answer)."""
    rt, users = runtime
    with client(rt, users[0]) as c:
        c.write_file("/data/a", b"before")
        _queue_key_update(c._tls)
        _queue_key_update(c._tls)
        c.write_file("/data/b", b"after")
        assert c.read_file("/data/a") == b"before" and c.read_file("/data/b") == b"after"


def test_one_sessions_records_posted_to_another_session_are_refused(runtime, monkeypatch):
    """Session confusion: an attacker who holds A's next (not yet delivered) post and B's session id posts
    A's records to B. They do not authenticate under B's keys: refused, and both sessions go on."""
    rt, users = runtime
    original = HttpCarrier.exchange
    target: dict[str, int] = {}
    refused: list[tuple[int, str]] = []

    def diverting(self, session_id, data):
        if data and target.get("other") and session_id == target.get("victim"):
            refused.append(post(rt, f"{target['other']} ".encode() + base64.b64encode(bytes(data))))
        return original(self, session_id, data)

    monkeypatch.setattr(HttpCarrier, "exchange", diverting)
    with client(rt, users[0]) as a, client(rt, users[1]) as b:
        a.write_file("/data/a", b"from a")
        b.write_file("/data/b", b"from b")
        target.update(victim=a._session_id, other=b._session_id)
        a.write_file("/data/a2", b"again from a")
        assert a.read_file("/data/a") == b"from a"
        target.clear()
        assert b.read_file("/data/b") == b"from b" and b.read_file("/data/a2") == b"again from a"
    assert len(refused) >= 2 and all(s == 500 and t.startswith("InvalidRecord") for s, t in refused), refused


@pytest.mark.parametrize(("alert", "ends"), [(b"\x01\x00", "closed"), (b"\x02\x28", "refused")])
def test_an_alert_ends_the_session_and_only_its_own(runtime, alert, ends):
    """An encrypted alert from the client: close_notify closes the session (the runtime answers with its own),
    any other ends it with an error; either way later posts to that id find no session, others go on."""
    rt, users = runtime
    with client(rt, users[0]) as other, client(rt, users[0]) as c:
        c.write_file("/data/x", b"x")
        # The client's OpenSSL writes the alert record; python's ssl sends close_notify through unwrap only,
        # so any other alert is sealed with the client's keys here (RFC 8446 5.2: inner type 21).
        record = _seal(rt.server.manager.sessions[c._session_id].keys.copy(), alert + bytes([21]))
        status, text = post(rt, f"{c._session_id} ".encode() + base64.b64encode(record))
        if ends == "closed":
            assert status == 200, text
        else:
            assert status == 500 and "alert 28" in text, text
        status, text = post(rt, f"{c._session_id} ".encode() + base64.b64encode(b"\x17\x03\x03\x00\x20" + bytes(32)))
        assert status == 500 and text.startswith("InvalidSession"), text
        other.write_file("/data/y", b"y")
        c._abandon()


@pytest.mark.parametrize(
    "messages",
    [
        b"\x18\x00\x00\x01\x02",  # request_update 2: illegal_parameter (RFC 8446 4.6.3)
        b"\x18\x00\x00\x01\x00" * 2,  # two KeyUpdates: the first does not end its record (RFC 8446 5.1)
        b"\x18\x00\x00\x01\x00\x14\x00\x00\x00",  # a KeyUpdate, then another handshake message
        b"\x18\x00\x00\x02\x00\x00",  # a KeyUpdate longer than its one byte
    ],
)
def test_a_malformed_key_update_ends_the_session_as_openssl_ends_it(runtime, messages):
    """OpenSSL, reading these records itself, ends the session (illegal_parameter, unexpected_message
    NOT_ON_RECORD_BOUNDARY, decode_error): the runtime, reading them in its place, must not move its keys on
    and carry on, out of step with what the record layer allows."""
    rt, users = runtime
    with client(rt, users[0]) as c:
        c.write_file("/data/x", b"x")
        record = _seal(rt.server.manager.sessions[c._session_id].keys.copy(), messages + bytes([22]))
        status, text = post(rt, f"{c._session_id} ".encode() + base64.b64encode(record))
        assert status == 500 and text.startswith("InvalidRequest") and "KeyUpdate" in text, (status, text)
        assert c._session_id not in rt.server.manager.sessions
        c._abandon()


def test_a_request_in_the_post_that_finishes_the_handshake_is_answered_and_then_its_records_are_the_runtimes(runtime):
    """An independent client may send its first request in the post that carries its Finished: the runtime
    reads it with the keys OpenSSL has just logged (OpenSSL never sees it), and the session goes on, each
    later record read in sequence, a replay of that first post refused."""
    rt, users = runtime
    manager = rt.server.manager
    identity = users[0]
    context = client_context(
        manager.policy.document["proxy_service_cert"],
        identity.certificate,
        identity.private_key,
        manager.policy.document["ciphersuite"],
    )
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    session_id, reply = manager.handle(0, outgoing.read())
    incoming.write(reply)
    tls.do_handshake()  # the client's Finished is now in ``outgoing``
    tls.write(frame(messages.write_file("/data/first", b"in the Finished post")))
    finishing = outgoing.read()
    _, reply = manager.handle(session_id, finishing, "conn")
    incoming.write(reply)
    assert messages.parse_response(FrameDecoder().feed(tls.read(1 << 16))[0]).status == 1
    with pytest.raises(Refused):
        manager.handle(session_id, finishing, "conn")  # the same post again
    tls.write(frame(messages.read_file("/data/first")))
    _, reply = manager.handle(session_id, outgoing.read(), "conn")
    incoming.write(reply)
    answer = messages.parse_response(FrameDecoder().feed(tls.read(1 << 16))[0])
    assert answer.result.data == b"in the Finished post"

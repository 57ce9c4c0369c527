"""Item 8: someone who only reaches the port cannot end, evict or guess another client's session."""

from __future__ import annotations

import base64
import secrets

import pytest

from ipoc import client as ipoc_client
from ipoc import errors, rights
from ipoc.wire.carrier import HttpCarrier
from runtime import manager as runtime_manager
from runtime import records as tls_records
from tests.security.runtime_support import client, client_hello, cut_like_an_independent_client, fresh, post
from tests.support import policies
from tests.support.tls import request_key_update


@pytest.fixture
def runtime(start_runtime):
    users = [fresh(f"user{i}") for i in range(3)]
    vaas = policies.vaas_policy([(u, [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}]) for u in users])
    return start_runtime(vaas), users


def test_session_ids_are_unpredictable_u32s(runtime):
    rt, users = runtime
    ids = []
    for _ in range(8):
        with client(rt, users[0]) as c:
            ids.append(c._session_id)
    assert all(0 < sid < 1 << 32 for sid in ids)
    assert len(set(ids)) == 8
    assert max(ids) - min(ids) > 1 << 16  # not a counter


def test_garbage_and_replayed_records_do_not_end_a_session(runtime, monkeypatch):
    rt, users = runtime
    sent: list[tuple[int, bytes]] = []
    original = HttpCarrier.exchange

    def recording(self, session_id, data):
        sent.append((session_id, data))
        return original(self, session_id, data)

    monkeypatch.setattr(HttpCarrier, "exchange", recording)
    with client(rt, users[0]) as victim:
        victim.write_file("/data/a", b"first")
        sid, record = [(s, d) for s, d in sent if d][-1]
        assert sid == victim._session_id
        # an attacker who learnt the id posts garbage, then replays the victim's last record
        for body in (
            f"{sid} ".encode() + base64.b64encode(b"\x00" * 64),
            f"{sid} ".encode() + base64.b64encode(record),
        ):
            status, text = post(rt, body)
            assert status == 500 and text.startswith("InvalidRecord"), text
        # the victim's session carries on
        victim.write_file("/data/b", b"second")
        assert victim.read_file("/data/a") == b"first"


def test_a_flood_of_session_opens_does_not_evict_a_live_session(runtime):
    rt, users = runtime
    with client(rt, users[0]) as victim:
        victim.write_file("/data/a", b"before")
        for _ in range(runtime_manager.MAX_HANDSHAKES + 8):
            status, text = post(rt, b"0 AAAA")
            assert status == 500 and text.startswith("HandshakeFailed")
        hello = base64.b64encode(client_hello())
        for _ in range(runtime_manager.MAX_SESSIONS + runtime_manager.MAX_HANDSHAKES + 8):
            status, _ = post(rt, b"0 " + hello)  # valid ClientHellos: unauthenticated sessions
            assert status == 200
        assert victim.read_file("/data/a") == b"before"


def test_only_idle_sessions_are_evicted(runtime, monkeypatch):
    rt, users = runtime
    monkeypatch.setattr(runtime_manager, "MAX_SESSIONS", 2)
    first, second = client(rt, users[0]), client(rt, users[1])
    with first, second:
        with pytest.raises(errors.VeracruzError, match="TooManySessions"):
            with client(rt, users[2]):
                pass
        first.write_file("/data/still", b"alive")  # the busy sessions were kept
        second.write_file("/data/still2", b"alive")
        rt.server.manager.idle_seconds = 0.0  # now both count as idle: the least recently used one goes
        with client(rt, users[2]) as third:
            third.write_file("/data/third", b"in")
        second.write_file("/data/still3", b"alive")
        with pytest.raises(errors.VeracruzError):
            first.write_file("/data/gone", b"evicted")


def _record(kind: int, body: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(body).to_bytes(2, "big") + body


def test_forged_records_with_well_formed_headers_do_not_end_a_session(runtime, monkeypatch):
    # The attacker knows the id (it travels in clear) and posts records that look right but that it
    # cannot have encrypted: OpenSSL would end the session on each (bad_record_mac, unexpected message).
    rt, users = runtime
    sent: list[bytes] = []
    original = HttpCarrier.exchange

    def recording(self, session_id, data):
        sent.append(bytes(data))
        return original(self, session_id, data)

    monkeypatch.setattr(HttpCarrier, "exchange", recording)
    with client(rt, users[0]) as victim:
        victim.write_file("/data/a", b"first")
        sid = victim._session_id
        last = sent[-1]
        flipped = last[:-1] + bytes([last[-1] ^ 1])
        forged = [
            _record(23, secrets.token_bytes(64)),  # application data with a fresh tag
            flipped,  # the victim's own record, one bit changed
            _record(23, secrets.token_bytes(64)) + last,  # a forgery in front of a replay
            _record(20, b"\x01"),  # change_cipher_spec after the handshake
            _record(21, b"\x02\x28"),  # a plaintext fatal alert
            _record(22, client_hello()[5:]),  # a new ClientHello into the running session
        ]
        for body in forged:
            status, text = post(rt, f"{sid} ".encode() + base64.b64encode(body))
            assert status == 500 and text.startswith("InvalidRecord"), text
        victim.write_file("/data/b", b"second")
        assert victim.read_file("/data/a") == b"first"
        assert victim.read_file("/data/b") == b"second"
        assert rt.server.manager.sessions[sid].keys is not None  # records were authenticated, not passed through


def test_a_strangers_bytes_between_the_halves_of_a_record_are_set_aside(runtime, monkeypatch):
    # The client cuts its TLS bytes into 700-byte posts, so records span posts; before each of its posts
    # the attacker posts the start of a record of its own (which the runtime cannot yet tell from the client's).
    rt, users = runtime
    cut_like_an_independent_client(monkeypatch, 700)
    attacks: list[int] = []
    original = HttpCarrier._send

    def interleaving(self, sock, sid, data):
        session = rt.server.manager.sessions.get(sid)
        if session is not None and session.handshake_done:
            status, _ = post(rt, f"{sid} ".encode() + base64.b64encode(_record(23, secrets.token_bytes(80))[:40]))
            attacks.append(status)
        return original(self, sock, sid, data)

    monkeypatch.setattr(HttpCarrier, "_send", interleaving)
    data = secrets.token_bytes(12000)
    with client(rt, users[0], pipeline=1) as victim:
        victim.write_file("/data/split", data)
        assert victim.read_file("/data/split") == data
    assert len(attacks) > 15 and set(attacks) == {200}  # kept aside as a possible start of a record


@pytest.mark.parametrize("requested", [0, 1])
def test_a_session_goes_on_across_a_key_update_the_client_sends(runtime, monkeypatch, tmp_path, requested):
    """The runtime reads a session's records with the client's keys (OpenSSL never sees them): a KeyUpdate
    moves them on, and one that asks for an answer (RFC 8446 4.6.3) gets the server's own KeyUpdate, found
    by opening the server's records with the server secret the client's OpenSSL logged."""
    rt, users = runtime
    keylog = tmp_path / "keys.log"
    original_context = ipoc_client.client_context

    def logging_context(*args, **kwargs):
        context = original_context(*args, **kwargs)
        context.keylog_filename = str(keylog)
        return context

    monkeypatch.setattr(ipoc_client, "client_context", logging_context)
    replies = bytearray()
    original_exchange_all = HttpCarrier.exchange_all

    def recording(self, session_id, chunks):
        sid, reply = original_exchange_all(self, session_id, chunks)
        replies.extend(reply)
        return sid, reply

    monkeypatch.setattr(HttpCarrier, "exchange_all", recording)
    with client(rt, users[0]) as c:
        c.write_file("/data/a", b"before")
        request_key_update(c._tls, bool(requested))
        c.write_file("/data/b", b"after")
        for _ in range(3):
            assert c.read_file("/data/a") == b"before" and c.read_file("/data/b") == b"after"
        suite = c._tls.cipher()[0]
    secret = next(
        bytes.fromhex(line.split()[2])
        for line in keylog.read_text().splitlines()
        if line.startswith("SERVER_TRAFFIC_SECRET_0 ")
    )
    server = tls_records.ClientKeys(suite, secret)  # the same record protection, the other direction
    types = []
    for record in runtime_manager._split(bytes(replies))[0]:
        opened = server.unprotect(record)  # the handshake's records (other keys) stay closed
        if opened is not None:
            types.append(
                opened[0] if opened[0] != tls_records.CONTENT_HANDSHAKE else tls_records.key_updates(opened[1])
            )
    assert types.count([0]) == requested  # the runtime's KeyUpdate, not asking for one back
    assert types.count(tls_records.CONTENT_APPLICATION_DATA) >= 8

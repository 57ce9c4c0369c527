"""Item 8, records split across posts: a stranger's posts cannot crowd out the client's half-record.

Before, the runtime kept the unfinished records of at most ``MAX_PARTIALS``
connections and dropped the oldest: a stranger who knows the session id made
that many one-shot posts (each a new TCP connection) holding a 5-byte record
header before each of the client's posts, the client's half-record was pushed
out, its continuation matched nothing and the session was lost. And our own
client cut its posts at fixed offsets (every ~190 KB), so a large upload split
records. Now the client posts whole records only, and the half-record of the
connection whose records authenticated is never evicted by others' posts;
independent clients that still split records keep working.

Real runtime, real sockets; the oracle for "whole records" is the TLS record
layout itself (RFC 8446 section 5.1: type, version, 16-bit length).
"""

from __future__ import annotations

import base64
import secrets

import pytest

from ipoc import rights
from ipoc.wire.carrier import HttpCarrier
from runtime import manager as runtime_manager
from tests.security.runtime_support import client, cut_like_an_independent_client, fresh, post
from tests.support import policies


@pytest.fixture
def runtime(start_runtime):
    user = fresh("user")
    return start_runtime(
        policies.vaas_policy([(user, [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}])])
    ), user


def whole_records(data: bytes) -> bool:
    """Whether ``data`` is a sequence of complete TLS records (RFC 8446 5.1)."""
    position = 0
    while position < len(data):
        if len(data) - position < 5:
            return False
        position += 5 + int.from_bytes(data[position + 3 : position + 5], "big")
    return position == len(data)


@pytest.mark.parametrize("post_bytes", [None, 700], ids=["default posts", "700-byte posts"])
def test_the_client_posts_only_whole_records(runtime, monkeypatch, post_bytes):
    rt, user = runtime
    bodies: list[bytes] = []
    original = HttpCarrier._send

    def recording(self, sock, sid, data):
        bodies.append(bytes(data))
        return original(self, sock, sid, data)

    monkeypatch.setattr(HttpCarrier, "_send", recording)
    data = secrets.token_bytes(1 << 20)  # over 190 KB: more than one post
    with client(rt, user, **({"post_bytes": post_bytes} if post_bytes else {})) as c:
        c.write_file("/data/big", data)
        assert c.read_file("/data/big") == data
    assert len(bodies) > 2
    assert all(whole_records(body) for body in bodies), [len(b) for b in bodies if not whole_records(b)]


def test_strangers_posts_do_not_crowd_out_a_split_record(runtime, monkeypatch):
    rt, user = runtime
    cut_like_an_independent_client(monkeypatch, 700)  # the victim splits records (a v1.3 client may)
    original = HttpCarrier._send
    strangers: list[int] = []
    armed: list[bool] = []

    def interleaving(self, sock, sid, data):
        session = rt.server.manager.sessions.get(sid) if sid else None
        if armed and session is not None and session.keys is not None:
            for _ in range(runtime_manager.MAX_PARTIALS + 2):  # each a new connection: a header of a record "to come"
                status, _ = post(rt, f"{sid} ".encode() + base64.b64encode(bytes([23, 3, 3, 0, 200])))
                strangers.append(status)
        return original(self, sock, sid, data)

    monkeypatch.setattr(HttpCarrier, "_send", interleaving)
    data = secrets.token_bytes(12000)
    with client(rt, user, pipeline=1) as victim:
        victim.write_file("/data/warmup", b"ok")
        armed.append(True)
        victim.write_file("/data/split", data)
        assert victim.read_file("/data/split") == data
    assert len(strangers) > 60 and set(strangers) == {200}  # each kept aside as a possible record start

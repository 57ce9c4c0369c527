"""Item 8, the client traffic secrets the runtime keeps to authenticate records (:mod:`runtime.records`).

- They are keyed by the TLS connection that derived them, not by the
  ClientHello's random: a stranger replaying a client's ClientHello makes the
  runtime log a secret of its own under the same random, which replaced the
  client's, and the client's first request then failed to authenticate (its
  session was lost).
- A session that ends before it takes its secret (its handshake finished but
  the session was refused for TooManySessions) leaves none behind, and no
  repr prints one.

Real runtime, real sockets, Python's own TLS client.
"""

from __future__ import annotations

import base64
import contextlib
import ssl

import pytest

from ipoc import errors, rights
from ipoc.wire.carrier import HttpCarrier
from ipoc.wire.tls import client_context
from runtime import manager as runtime_manager
from runtime.records import ClientKeys
from tests.security.runtime_support import client, fresh, post
from tests.support import policies


@pytest.fixture
def runtime(start_runtime):
    users = [fresh(f"user{i}") for i in range(2)]
    vaas = policies.vaas_policy([(u, [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}]) for u in users])
    return start_runtime(vaas), users


def test_a_replayed_client_hello_does_not_replace_the_clients_secret(runtime, monkeypatch):
    rt, users = runtime
    original = HttpCarrier.exchange_all
    replays: list[int] = []

    def replaying(self, session_id, chunks):
        if session_id == 0:  # the victim's ClientHello, seen on the way: a stranger posts it again
            hello = b"".join(bytes(chunk) for chunk in chunks)
            sid, reply = original(self, session_id, chunks)
            status, _ = post(rt, b"0 " + base64.b64encode(hello))
            replays.append(status)
            return sid, reply
        return original(self, session_id, chunks)

    monkeypatch.setattr(HttpCarrier, "exchange_all", replaying)
    with client(rt, users[0]) as victim:
        victim.write_file("/data/a", b"first")
        assert victim.read_file("/data/a") == b"first"
        assert rt.server.manager.sessions[victim._session_id].keys is not None  # its records were authenticated
    assert replays == [200]  # the replayed hello opened a session of its own


def test_no_secret_outlives_a_refused_or_evicted_session(runtime, monkeypatch):
    rt, users = runtime
    log = rt.server.manager.secret_log
    assert log is not None
    monkeypatch.setattr(runtime_manager, "MAX_SESSIONS", 1)
    with client(rt, users[0]) as first:
        first.write_file("/data/a", b"in")
        for _ in range(3):
            with pytest.raises(errors.VeracruzError, match="TooManySessions"):
                with client(rt, users[1]):
                    pass
        assert len(log) == 0  # the refused sessions' secrets went with them
        for _ in range(runtime_manager.MAX_HANDSHAKES + 8):  # unauthenticated sessions, the oldest evicted
            assert post(rt, b"0 " + base64.b64encode(policy_client_hello(rt, users[1])))[0] == 200
        assert len(log) == 0  # OpenSSL logs a client's secret only once its Finished checks out
        first.write_file("/data/b", b"still")


def policy_client_hello(rt, identity) -> bytes:
    """A ClientHello as our client sends it (the policy's suite): the runtime derives a secret at once."""
    policy = rt.server.manager.policy
    context = client_context(
        policy.proxy_service_cert, identity.certificate, identity.private_key, policy.document["ciphersuite"]
    )
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_no_repr_shows_a_secret():
    keys = ClientKeys("TLS_AES_128_GCM_SHA256", bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(keys) and repr(bytes(range(32))) not in repr(keys)
    session = runtime_manager.Session(None, None, None, None, keys=keys)
    assert "ClientKeys" not in repr(session) and repr(bytes(range(32))) not in repr(session)

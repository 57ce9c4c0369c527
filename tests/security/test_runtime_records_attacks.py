"""Attacks on the runtime's own reading of a session's TLS 1.3 records (afternoon review).

A real OpenSSL client (VeracruzClient's ``SSLObject``, driven through ctypes where Python has no API, as for
KeyUpdate) talks to an in-process runtime; the oracle is RFC 8446 and what OpenSSL as a server does with the
same records.
"""

from __future__ import annotations

import _ssl
import ctypes

import pytest

from ipoc import rights
from tests.security.runtime_support import client, fresh
from tests.support import policies

_LIB = ctypes.CDLL(_ssl.__file__)
_LIB.SSL_key_update.argtypes, _LIB.SSL_key_update.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int
KEY_UPDATE_REQUESTED = 1


@pytest.fixture
def runtime(start_runtime):
    users = [fresh(f"user{i}") for i in range(2)]
    vaas = policies.vaas_policy([(u, [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}]) for u in users])
    return start_runtime(vaas), users


def _ssl_pointer(tls) -> int:
    """The ``SSL*`` behind a Python SSLObject (a CPython _ssl._SSLSocket is PyObject_HEAD, the socket, the SSL)."""
    return ctypes.c_void_p.from_address(id(tls._sslobj) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)).value


def _queue_key_update(tls, kind: int) -> None:
    """Have the client's OpenSSL write a KeyUpdate now (into its outgoing BIO, sent with the next post)."""
    assert _LIB.SSL_key_update(_ssl_pointer(tls), kind) == 1
    tls.do_handshake()  # writes the pending KeyUpdate and finishes the "handshake" it started


def test_two_requested_key_updates_while_the_server_is_silent_get_one_answer(runtime):
    """RFC 8446 4.6.3: a receiver of several KeyUpdates with update_requested while it is silent answers
    with a single update. Two in one post must not end the session (OpenSSL as server merely notes one
    pending answer)."""
    rt, users = runtime
    with client(rt, users[0]) as c:
        c.write_file("/data/a", b"before")
        _queue_key_update(c._tls, KEY_UPDATE_REQUESTED)
        _queue_key_update(c._tls, KEY_UPDATE_REQUESTED)
        c.write_file("/data/b", b"after")
        assert c.read_file("/data/a") == b"before" and c.read_file("/data/b") == b"after"

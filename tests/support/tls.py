"""Driving a real OpenSSL TLS 1.3 client where Python's ``ssl`` has no API: a KeyUpdate (RFC 8446 4.6.3) the
client initiates, through the ``SSL_key_update`` of the very OpenSSL that ``_ssl`` is linked against."""

from __future__ import annotations

import ctypes
import ssl

from ipoc.wire.tls import openssl_function


def _ssl_pointer(tls: ssl.SSLObject | ssl.SSLSocket) -> int:
    """The ``SSL*`` behind a Python SSLObject or SSLSocket: a CPython ``_ssl._SSLSocket`` is PyObject_HEAD, the
    socket reference, then its SSL pointer."""
    sslobj = tls._sslobj  # type: ignore[union-attr]
    pointer = ctypes.c_void_p.from_address(id(sslobj) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p))
    assert pointer.value is not None, "no SSL* where CPython's _ssl keeps it"
    return pointer.value


def request_key_update(tls: ssl.SSLObject | ssl.SSLSocket, requested: bool) -> None:
    """Have the client's OpenSSL schedule a KeyUpdate, asking the peer to update its own keys too when
    ``requested`` (SSL_KEY_UPDATE_REQUESTED, else NOT_REQUESTED); OpenSSL writes it with the next write (or
    ``do_handshake``). Fails the test when OpenSSL refuses it (not TLS 1.3, or one already pending)."""
    key_update = openssl_function("SSL_key_update", ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
    assert key_update(_ssl_pointer(tls), int(requested)) == 1, "OpenSSL refused SSL_key_update"

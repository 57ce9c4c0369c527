"""Authenticate a client's TLS 1.3 records before OpenSSL sees them, so a forged record cannot end a session.

OpenSSL treats a record that fails decryption as fatal (``bad_record_mac``):
the session is over. Anyone who learns a session id (an on-path observer of the
HTTP transport, which carries the id in clear) could so end another client's
session with one post. The runtime therefore opens each application-data
record itself first, with the client's traffic key, and hands OpenSSL only
records that authenticate; a post holding any other record is refused whole
and the session stays exactly as it was.

The traffic secret comes from OpenSSL's key-log callback
(``SSL_CTX_set_keylog_callback``, reached through ctypes as
:mod:`ipoc.wire.tls` reaches ``SSL_CTX_set_ciphersuites``): it is kept in this
process's memory only, never written anywhere, keyed by the ClientHello's
random and taken by the session that sent that ClientHello. Key derivation and
record protection follow RFC 8446 sections 7.1-7.3 and 5.2-5.3.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import _ssl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

log = logging.getLogger(__name__)

CONTENT_HANDSHAKE, CONTENT_APPLICATION_DATA = 22, 23
HANDSHAKE_KEY_UPDATE = 24
CLIENT_SECRET_LABEL = "CLIENT_TRAFFIC_SECRET_0"
MAX_PENDING_SECRETS = 512  # secrets of handshakes not yet finished (their sessions are bounded far below this)

# OpenSSL suite name -> (AEAD factory, key length, tag length, hash)
_SUITES: dict[str, tuple[Callable[[bytes], object], int, int, type[hashes.HashAlgorithm]]] = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, 16, 16, hashes.SHA256),
    "TLS_AES_256_GCM_SHA384": (AESGCM, 32, 16, hashes.SHA384),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, 16, hashes.SHA256),
    "TLS_AES_128_CCM_SHA256": (AESCCM, 16, 16, hashes.SHA256),
    "TLS_AES_128_CCM_8_SHA256": (lambda key: AESCCM(key, tag_length=8), 16, 8, hashes.SHA256),
}

_KEYLOG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


def hkdf_expand_label(secret: bytes, label: str, length: int, algorithm: type[hashes.HashAlgorithm]) -> bytes:
    """RFC 8446 HKDF-Expand-Label with an empty context."""
    full = b"tls13 " + label.encode()
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    return HKDFExpand(algorithm(), length, info).derive(secret)


@dataclass
class ClientKeys:
    """The client-to-server application traffic protection of one session: secret, key, iv, next sequence number."""

    suite: str
    secret: bytes
    sequence: int = 0

    def __post_init__(self) -> None:
        factory, key_length, self.tag_length, self.algorithm = _SUITES[self.suite]
        self.aead = factory(hkdf_expand_label(self.secret, "key", key_length, self.algorithm))
        self.iv = hkdf_expand_label(self.secret, "iv", 12, self.algorithm)

    def copy(self) -> "ClientKeys":
        return ClientKeys(self.suite, self.secret, self.sequence)

    def open(self, record: bytes) -> bool:
        """Whether ``record`` (header included) is the client's next record; advance past it if so.

        A KeyUpdate inside it moves to the next secret, as the peer will.
        """
        if record[0] != CONTENT_APPLICATION_DATA or len(record) < 5 + self.tag_length + 1:
            return False
        nonce = (int.from_bytes(self.iv, "big") ^ self.sequence).to_bytes(12, "big")
        try:
            plain = self.aead.decrypt(nonce, record[5:], record[:5])  # type: ignore[attr-defined]
        except Exception:  # cryptography's InvalidTag; any failure means "not this session's record"
            return False
        self.sequence += 1
        inner = plain.rstrip(b"\x00")
        if inner and inner[-1] == CONTENT_HANDSHAKE and _has_key_update(inner[:-1]):
            self.secret = hkdf_expand_label(self.secret, "traffic upd", len(self.secret), self.algorithm)
            self.__post_init__()
            self.sequence = 0
        return True


def _has_key_update(messages: bytes) -> bool:
    position = 0
    while position + 4 <= len(messages):
        kind = messages[position]
        length = int.from_bytes(messages[position + 1 : position + 4], "big")
        if kind == HANDSHAKE_KEY_UPDATE:
            return True
        position += 4 + length
    return False


def client_random(client_hello: bytes) -> bytes | None:
    """The 32-byte random of a ClientHello record (None if ``client_hello`` does not start with one)."""
    if len(client_hello) < 5 + 4 + 2 + 32 or client_hello[0] != CONTENT_HANDSHAKE or client_hello[5] != 1:
        return None
    return client_hello[11:43]


class SecretLog:
    """Collect the clients' application traffic secrets OpenSSL derives for one server context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._secrets: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._callback = _KEYLOG(self._line)  # kept referenced for as long as the context may call it
        library = ctypes.CDLL(_ssl.__file__)
        install = library.SSL_CTX_set_keylog_callback
        install.argtypes = [ctypes.c_void_p, _KEYLOG]
        install.restype = None
        # A CPython SSLContext object is PyObject_HEAD followed by its SSL_CTX pointer (as in ipoc.wire.tls).
        ssl_ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        if not ssl_ctx:
            raise RuntimeError("no SSL_CTX behind the server context")
        install(ssl_ctx, self._callback)
        self._context = context

    def _line(self, _ssl_object: int | None, line: bytes | None) -> None:
        try:
            label, random_hex, secret_hex = (line or b"").decode().split(" ")
        except ValueError:
            return
        if label != CLIENT_SECRET_LABEL:
            return
        with self._lock:
            self._secrets[bytes.fromhex(random_hex)] = bytes.fromhex(secret_hex)
            while len(self._secrets) > MAX_PENDING_SECRETS:
                self._secrets.popitem(last=False)

    def take(self, random: bytes | None, suite: str) -> ClientKeys | None:
        """The client keys of the handshake whose ClientHello carried ``random`` (once), if known."""
        if random is None or suite not in _SUITES:
            return None
        with self._lock:
            secret = self._secrets.pop(random, None)
        return ClientKeys(suite, secret) if secret is not None else None


def install(context: ssl.SSLContext) -> SecretLog | None:
    """A :class:`SecretLog` on ``context``, or None where OpenSSL's callback cannot be reached (records then go straight to OpenSSL)."""
    try:
        return SecretLog(context)
    except (OSError, AttributeError, RuntimeError) as exc:
        log.warning("cannot authenticate TLS records before OpenSSL (%s): a forged record can end a session", exc)
        return None

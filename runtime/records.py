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
process's memory only, never written anywhere, keyed by the TLS connection
that derived it (the callback's ``SSL*``, through the Python object CPython
stores as its app data) and taken by that connection's session, or dropped
with it. Not by the ClientHello's random: a stranger who replays a client's
ClientHello would log a secret of its own under the same random and so
replace the client's. Key derivation and record protection follow RFC 8446
sections 7.1-7.3 and 5.2-5.4.

Opening a record yields its plaintext, and once a session is authenticated
the runtime reads the client's records through these keys only: each record is
decrypted once, here, and OpenSSL keeps the handshake and the server's side of
the channel (its replies, and a KeyUpdate of its own when the client asks for
one: :func:`answer_key_update`). Decrypting every record a second time in
OpenSSL cost as much CPU as this check.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import ssl
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ipoc.wire.tls import MAX_PLAINTEXT, openssl_function, ssl_ctx_pointer

log = logging.getLogger(__name__)

CONTENT_ALERT, CONTENT_HANDSHAKE, CONTENT_APPLICATION_DATA = 21, 22, 23
HANDSHAKE_KEY_UPDATE = 24
UPDATE_REQUESTED = 1  # KeyUpdate.request_update: the peer must answer with a KeyUpdate of its own
KEY_UPDATE_NONE = -1  # OpenSSL's SSL_get_key_update_type when no KeyUpdate of its own is pending
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
    """The client-to-server application traffic protection of one session: secret, key, iv, next sequence number.

    ``connection`` is the server's ``SSL*`` the secret was logged for (0 when unknown): OpenSSL is
    asked through it to answer a KeyUpdate the client requests.
    """

    suite: str
    secret: bytes = field(repr=False)
    sequence: int = 0
    connection: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        factory, key_length, self.tag_length, self.algorithm = _SUITES[self.suite]
        self.aead = factory(hkdf_expand_label(self.secret, "key", key_length, self.algorithm))
        self._iv = int.from_bytes(hkdf_expand_label(self.secret, "iv", 12, self.algorithm), "big")

    def copy(self) -> ClientKeys:
        """An independent cursor on the same keys (the AEAD object holds only the key: shared, not derived again)."""
        return copy.copy(self)

    def open(self, record: bytes | memoryview) -> bool:
        """Whether ``record`` (header included) is the client's next record; advance past it if so."""
        return self.unprotect(record) is not None

    def unprotect(self, record: bytes | memoryview) -> tuple[int, bytes | memoryview] | None:
        """The content type and content of ``record`` (header included) if it is the client's next record,
        advancing past it; None (nothing changed) otherwise.

        A KeyUpdate inside it moves to the next secret, as the peer will. A record that authenticates
        but breaks RFC 8446 (no content type, content over 2^14 bytes, a malformed KeyUpdate or one that does not
        end its record) raises :class:`RecordError`:
        the client sent it, and OpenSSL would end the session over it.
        """
        if record[0] != CONTENT_APPLICATION_DATA or len(record) < 5 + self.tag_length + 1:
            return None
        nonce = (self._iv ^ self.sequence).to_bytes(12, "big")
        view = memoryview(record)
        try:
            plain = self.aead.decrypt(nonce, view[5:], view[:5])  # type: ignore[attr-defined]
        except Exception:  # cryptography's InvalidTag; any failure means "not this session's record"
            return None
        self.sequence += 1
        if len(plain) > MAX_PLAINTEXT + 1:  # RFC 8446 5.4: TLSInnerPlaintext is at most 2^14 + 1 bytes
            raise RecordError(f"a record of {len(plain)} bytes of plaintext, over 2^14 + 1 (record_overflow)")
        if plain[-1] == 0:  # padding: the content type is the last byte that is not zero
            plain = plain.rstrip(b"\x00")
            if not plain:
                raise RecordError("a record without a content type (unexpected_message)")
        content_type, content = plain[-1], memoryview(plain)[:-1]  # a view: the content is copied once, whole
        if content_type == CONTENT_HANDSHAKE and key_updates(content):
            if len(content) != 5 or bytes(content[:4]) != b"\x18\x00\x00\x01" or content[4] > UPDATE_REQUESTED:
                # OpenSSL ends the session over these (RFC 8446 4.6.3: illegal_parameter; 5.1: a KeyUpdate
                # ends its record): moving the keys on for them would leave the two ends out of step.
                raise RecordError("a KeyUpdate not alone in its record, or malformed (request_update 0 or 1)")
            self.secret = hkdf_expand_label(self.secret, "traffic upd", len(self.secret), self.algorithm)
            self.__post_init__()
            self.sequence = 0
        return content_type, content


class RecordError(Exception):
    """An authenticated client record that TLS 1.3 forbids: the session ends, as OpenSSL would end it."""


def key_updates(messages: bytes | memoryview) -> list[int]:
    """The ``request_update`` value of each KeyUpdate among the handshake ``messages``."""
    found, position = [], 0
    while position + 4 <= len(messages):
        kind = messages[position]
        length = int.from_bytes(messages[position + 1 : position + 4], "big")
        if kind == HANDSHAKE_KEY_UPDATE and length >= 1 and position + 4 < len(messages):
            found.append(messages[position + 4])
        position += 4 + length
    return found


def answer_key_update(keys: ClientKeys) -> bool:
    """Have OpenSSL send a KeyUpdate of its own before its next record (RFC 8446 4.6.3: the answer to a
    client's ``update_requested``), which it would have done had it read the client's record itself.
    False when OpenSSL cannot be asked (the session then cannot go on)."""
    if not keys.connection:
        return False
    try:
        update = openssl_function("SSL_key_update", ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
        pending = openssl_function("SSL_get_key_update_type", ctypes.c_int, ctypes.c_void_p)
    except (OSError, AttributeError):
        return False
    if pending(keys.connection) != KEY_UPDATE_NONE:
        # An answer not yet sent covers this request too: a receiver of several requests while silent
        # answers once (RFC 8446 4.6.3); OpenSSL refuses a second SSL_key_update until the first is sent.
        return True
    return bool(update(keys.connection, 0))  # SSL_KEY_UPDATE_NOT_REQUESTED


class SecretLog:
    """Collect the clients' application traffic secrets OpenSSL derives for one server context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        # (secret, SSL*) by the address of the connection's SSLObject._sslobj
        self._secrets: OrderedDict[int, tuple[bytes, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._callback = _KEYLOG(self._line)
        # CPython's _ssl sets each SSL's app data (ex_data 0) to its _ssl._SSLSocket (as its own key-log
        # callback reads it back): that names the connection without reading CPython's structures.
        self._owner = openssl_function("SSL_get_ex_data", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
        install = openssl_function("SSL_CTX_set_keylog_callback", None, ctypes.c_void_p, _KEYLOG)
        ssl_ctx = ssl_ctx_pointer(context)
        if not ssl_ctx:
            raise RuntimeError("no SSL_CTX behind the server context")
        install(ssl_ctx, self._callback)
        self._context = context
        # The context owns its log: OpenSSL calls the callback for as long as the context lives (also for a
        # KeyUpdate, CLIENT_TRAFFIC_SECRET_N), so a log dropped before it would leave OpenSSL a dangling pointer.
        setattr(context, "_ipoc_secret_log", self)  # noqa: B010 - SSLContext declares no such attribute

    def _line(self, ssl_pointer: int | None, line: bytes | None) -> None:
        try:
            label, _random_hex, secret_hex = (line or b"").decode().split(" ")
        except ValueError:
            return
        owner = self._owner(ssl_pointer, 0) if ssl_pointer else None
        if label != CLIENT_SECRET_LABEL or not owner:
            return
        with self._lock:
            self._secrets.pop(owner, None)
            self._secrets[owner] = (bytes.fromhex(secret_hex), ssl_pointer or 0)
            while len(self._secrets) > MAX_PENDING_SECRETS:
                self._secrets.popitem(last=False)

    def take(self, tls: ssl.SSLObject, suite: str) -> ClientKeys | None:
        """The client keys ``tls`` derived (once), if logged."""
        logged = self._pop(tls)
        if logged is None or suite not in _SUITES:
            return None
        secret, connection = logged
        return ClientKeys(suite, secret, connection=connection)

    def discard(self, tls: ssl.SSLObject) -> None:
        """Forget the secret of a connection that ends without being authenticated (failed, refused, evicted)."""
        self._pop(tls)

    def __len__(self) -> int:
        with self._lock:
            return len(self._secrets)

    def _pop(self, tls: ssl.SSLObject) -> tuple[bytes, int] | None:
        with self._lock:
            return self._secrets.pop(id(tls._sslobj), None)  # type: ignore[attr-defined]


def install(context: ssl.SSLContext) -> SecretLog | None:
    """A :class:`SecretLog` on ``context``, or None where OpenSSL's callback cannot be reached (records then go
    straight to OpenSSL)."""
    try:
        return SecretLog(context)
    except (OSError, AttributeError, RuntimeError) as exc:
        log.warning("cannot authenticate TLS records before OpenSSL (%s): a forged record can end a session", exc)
        return None

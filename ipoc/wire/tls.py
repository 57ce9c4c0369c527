"""TLS 1.3 contexts for the Veracruz channel, carried over memory BIOs.

Veracruz offers exactly one TLS 1.3 ciphersuite, named by the policy (any of
mbedTLS's five TLS 1.3 suites: see :data:`ipoc.policy_serde.TLS13_SUITES`). Python's
``ssl`` has no API for TLS 1.3 suites, so :func:`restrict_tls13_ciphersuites`
calls OpenSSL's ``SSL_CTX_set_ciphersuites`` on the context through ctypes and
then checks, through the public API, that it took effect.
"""

from __future__ import annotations

import _ssl
import contextlib
import ctypes
import os
import ssl
import tempfile
from collections.abc import Iterator
from functools import cache
from typing import Any

from ipoc.certs import split_pem_certificates, standard_pem
from ipoc.errors import CertificateError
from ipoc.policy_serde import openssl_suite

__all__ = [
    "MAX_PLAINTEXT",
    "client_context",
    "openssl_function",
    "openssl_suite",
    "restrict_tls13_ciphersuites",
    "server_context",
    "ssl_ctx_pointer",
]

MAX_PLAINTEXT = 1 << 14  # RFC 8446 5.1: a record's plaintext is at most 2^14 bytes (its inner content type aside)


@cache
def _openssl() -> ctypes.CDLL:
    return ctypes.CDLL(_ssl.__file__)  # the OpenSSL CPython's ssl module is linked with


@cache
def openssl_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """OpenSSL's C function ``name``, typed, looked up once (a KeyUpdate answered per session had loaded the
    library and looked the functions up on every call). Raises AttributeError when OpenSSL lacks it."""
    function = _openssl()[name]  # a pointer of its own: callers that type the same function alike share it
    function.restype, function.argtypes = restype, list(argtypes)
    return function


def ssl_ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The ``SSL_CTX*`` behind ``ctx``: a CPython SSLContext object is PyObject_HEAD followed by it (0: none)."""
    return ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value or 0


def restrict_tls13_ciphersuites(ctx: ssl.SSLContext, openssl_name: str) -> None:
    """Allow only ``openssl_name`` for TLS 1.3 on ``ctx`` (CPython + OpenSSL only)."""
    set_suites = openssl_function("SSL_CTX_set_ciphersuites", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
    ssl_ctx = ssl_ctx_pointer(ctx)
    if not ssl_ctx or set_suites(ssl_ctx, openssl_name.encode()) != 1:
        raise RuntimeError(f"OpenSSL refused TLS 1.3 ciphersuite {openssl_name}")
    offered = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"]
    if offered != [openssl_name]:
        raise RuntimeError(f"could not restrict TLS 1.3 ciphersuites to {openssl_name} (still {offered})")


@contextlib.contextmanager
def _pem_files(cert_chain_pem: str, key_pem: str) -> Iterator[tuple[str, str]]:
    """Expose PEM strings as paths for ``load_cert_chain``, keeping the key off disk where possible.

    On Linux the key lives in an anonymous memory file (memfd) reached through
    /proc; elsewhere it goes to a private temporary file removed at once.
    """
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = [os.memfd_create("ipoc-cert"), os.memfd_create("ipoc-key")]
        try:
            for fd, text in zip(fds, (cert_chain_pem, key_pem), strict=True):
                os.write(fd, text.encode())
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ipoc-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "w") as handle:
            handle.write(cert_chain_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key_pem)
        yield cert_path, key_path


def _load_identity(ctx: ssl.SSLContext, cert_chain_pem: str, key_pem: str) -> None:
    with _pem_files(cert_chain_pem, key_pem) as (cert_path, key_path):
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc).upper() or "key values mismatch" in str(exc):
                raise CertificateError("the private key does not match the certificate") from None
            raise CertificateError(f"cannot load the certificate and key: {exc}") from None


def client_context(
    proxy_service_cert: str, certificate_pem: str, key_pem: str, policy_suite: str | None = None
) -> ssl.SSLContext:
    """A TLS 1.3 client that trusts only the policy's ``proxy_service_cert``.

    The enclave certificate carries no host name a client could check, so
    hostname checking is off while chain verification stays required. Given
    the policy's ``ciphersuite``, the client offers that suite only, as
    veracruz-client does.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if policy_suite is not None:
        restrict_tls13_ciphersuites(ctx, openssl_suite(policy_suite))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    anchors = split_pem_certificates(proxy_service_cert)
    if not anchors:
        raise CertificateError("the policy's proxy_service_cert holds no certificate")
    ctx.load_verify_locations(cadata="".join(standard_pem(c) for c in anchors))
    _load_identity(ctx, standard_pem(certificate_pem), key_pem)
    return ctx


def server_context(chain_pem: str, key_pem: str, identity_certificates: list[str], policy_suite: str) -> ssl.SSLContext:
    """The runtime's TLS 1.3 server: policy identities are the trust anchors, client certs required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.num_tickets = 0  # no session resumption: every session is a fresh, fully attested handshake
    restrict_tls13_ciphersuites(ctx, openssl_suite(policy_suite))
    # A client's own certificate is trusted when it IS one of the anchors, compared whole. Without
    # this, OpenSSL builds a chain by subject name and takes the first anchor with the client's
    # subject: of two identities sharing a subject (the seed's cert.conf makes the S3 and user
    # certificates alike) only the first could connect. The runtime then maps the peer to an
    # identity by exact DER (FullPolicy.identity_for).
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata="".join(standard_pem(c) for c in identity_certificates))
    _load_identity(ctx, chain_pem, key_pem)
    return ctx

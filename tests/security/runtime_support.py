"""Small pieces the runtime attack tests share: principals, a client, WAT programs with a fixed exit code."""

from __future__ import annotations

import wasmtime

from ipoc import rights
from ipoc.certs import Identity, new_identity
from ipoc.client import VeracruzClient
from ipoc.wire.carrier import split_url
from tests.support.sockets import HttpAnswer, exchange

ADMIN_RIGHTS = [{"file_name": "/", "rights": int(rights.ALL)}]


def exit_with(code: int) -> bytes:
    """A valid WASI command that exits with ``code``."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const {code}))))"""
        )
    )


def client(runtime, identity: Identity, **kwargs) -> VeracruzClient:
    return VeracruzClient(runtime.policy, identity.certificate, identity.private_key, **kwargs)


def program(name: str, grants: list[tuple[str, int]], index: int = 0, **extra: object) -> dict[str, object]:
    return {
        "file_rights": [{"file_name": path, "rights": int(value)} for path, value in grants],
        "id": index,
        "program_file_name": name,
        **extra,
    }


def fresh(name: str) -> Identity:
    return new_identity(name)


def post(runtime, body: bytes, *, timeout: float = 10.0) -> tuple[int, str]:
    """One raw ``POST /runtime_manager`` as anyone who reaches the port could send it."""
    import http.client

    from ipoc.wire.carrier import split_url

    host, port = split_url(runtime.server.manager.policy.server_url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/runtime_manager", body=body)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def client_hello() -> bytes:
    """A real TLS 1.3 ClientHello from Python's TLS stack, as a stranger without any identity sends it."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def raw_exchange(url: str, head: bytes, body: bytes, *, timeout: float = 5.0) -> HttpAnswer:
    """Send raw bytes to ``host:port`` and read the one whole answer (``timeout`` bounds each wait)."""
    return exchange(split_url(url), head + body, timeout)


def cut_like_an_independent_client(monkeypatch, size: int) -> None:
    """Make our client post its TLS bytes cut every ``size`` bytes, records or not.

    Our client posts whole records only; a Veracruz v1.3 client written
    independently (reqwest-style, fixed-size posts) may split a record across
    posts, and the runtime must still follow it. The carrier is the real one;
    only where the bytes are cut changes.
    """
    from ipoc.wire.carrier import HttpCarrier

    original = HttpCarrier.exchange_all

    def fixed_cuts(self, session_id, chunks):
        data = b"".join(bytes(chunk) for chunk in chunks)
        return original(self, session_id, [data[start : start + size] for start in range(0, len(data), size)])

    monkeypatch.setattr(HttpCarrier, "exchange_all", fixed_cuts)

"""Item 8 (record layer): the runtime's own check of a client's TLS 1.3 records agrees with OpenSSL.

The oracle is OpenSSL itself on both ends (Python's ``ssl`` over memory BIOs):
every record an OpenSSL client really sends, in every ciphersuite a policy may
name, and across a KeyUpdate the client's OpenSSL initiates, must authenticate
with :class:`runtime.records.ClientKeys`; the same record changed, replayed or
made up must not.
"""

from __future__ import annotations

import secrets
import ssl

import pytest

from ipoc.certs import new_identity
from ipoc.policy_serde import TLS13_SUITES
from ipoc.wire.tls import client_context, openssl_suite, server_context
from runtime import records
from runtime.manager import _split
from tests.support.tls import request_key_update


def _pump(source: ssl.SSLObject, source_out: ssl.MemoryBIO, sink_in: ssl.MemoryBIO) -> bytes:
    data = source_out.read()
    sink_in.write(data)
    return data


def _handshake(suite: str) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.SSLObject, ssl.MemoryBIO, records.ClientKeys]:
    server_id, client_id = new_identity("runtime"), new_identity("client")
    server_ctx = server_context(server_id.certificate, server_id.private_key, [client_id.certificate], suite)
    secret_log = records.SecretLog(server_ctx)
    client_ctx = client_context(server_id.certificate, client_id.certificate, client_id.private_key, suite)
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        _pump(client, c_out, s_in)
        _pump(server, s_out, c_in)
        if server.cipher() and client.cipher():
            try:
                server.do_handshake()
                client.do_handshake()
                break
            except ssl.SSLWantReadError:
                continue
    cipher = server.cipher()
    assert cipher is not None and cipher[0] == openssl_suite(suite)
    keys = secret_log.take(server, cipher[0])
    assert keys is not None, "OpenSSL's key log gave no client secret"
    return client, c_out, server, s_in, keys


@pytest.mark.parametrize("suite", sorted(TLS13_SUITES))
def test_openssl_client_records_authenticate_and_forgeries_do_not(suite):
    client, c_out, server, s_in, keys = _handshake(suite)
    for size in (1, 100, 16384, 40000):
        client.write(secrets.token_bytes(size))
        complete, rest = _split(c_out.read())
        assert complete and not rest
        for record in map(bytes, complete):  # _split gives views of the post; the forgeries need bytes
            assert not keys.copy().open(record[:-1] + bytes([record[-1] ^ 1]))  # one bit changed
            assert not keys.copy().open(record[:5] + secrets.token_bytes(len(record) - 5))  # made up
            assert keys.open(record)
            assert not keys.copy().open(record)  # the same record again: a replay
            s_in.write(record)
        read = b""
        while len(read) < size:
            read += server.read(size)
        assert len(read) == size


def test_keys_follow_a_key_update_the_client_sends():
    client, c_out, server, s_in, keys = _handshake("TLS1-3-AES-128-GCM-SHA256")
    request_key_update(client, requested=False)
    client.write(b"after the update")
    complete, _ = _split(c_out.read())
    assert len(complete) == 2  # the KeyUpdate, then data under the next key
    old_secret = keys.secret
    for record in complete:
        assert keys.open(record)
        s_in.write(record)
    assert keys.secret != old_secret and keys.sequence == 1
    assert server.read(100) == b"after the update"


def test_an_authenticated_record_tls_forbids_is_an_error_not_content():
    """RFC 8446 5.4: a record with no content type, or more than 2^14 + 1 bytes of inner plaintext, ends the
    session (OpenSSL's unexpected_message and record_overflow) even though it authenticates."""
    _, _, _, _, keys = _handshake("TLS1-3-AES-128-GCM-SHA256")
    for inner in (b"\x00" * 10, b"a" * (1 << 14) + b"\x17\x00"):
        cursor = keys.copy()
        header = bytes([23, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
        nonce = (cursor._iv ^ cursor.sequence).to_bytes(12, "big")
        with pytest.raises(records.RecordError):
            cursor.unprotect(header + cursor.aead.encrypt(nonce, inner, header))
    assert keys.copy().unprotect(b"\x17\x03\x03\x00\x20" + bytes(32)) is None  # forged: not the client's

"""Simulated attestation evidence for the linux platform.

Veracruz's linux platform signs a mock PSA token with a private key written in
its source. Ours signs the same facts (the proxy's challenge, the runtime
measurement and the sha256 of the enclave CSR) with a platform key created
once per installation under ``$IPOC_HOME/platform``: only processes that can
read that key can obtain enclave certificates from the local proxy.

Token layout: ``b"IPOC-SIM-1" || u32 BE payload length || payload || DER ECDSA-P256-SHA256 signature``
where payload is ``challenge (32) || measurement (32) || sha256(csr) (32)``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ipoc.certs import write_private

MAGIC = b"IPOC-SIM-1"
KEY_FILE = "platform-key.pem"


class EvidenceError(Exception):
    """A token is malformed, badly signed, or binds other values than expected."""


@dataclass(frozen=True)
class Evidence:
    challenge: bytes
    measurement: bytes
    csr_sha256: bytes


def ensure_platform_key(directory: Path) -> ec.EllipticCurvePrivateKey:
    """Load the platform key, creating it on first use.

    The key is written to a private temporary file and published with a hard
    link, so a concurrent process sees either no key or a complete one.
    """
    key_path = directory / KEY_FILE
    if not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = directory / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
        write_private(tmp, pem)
        try:
            os.link(tmp, key_path)
        except FileExistsError:
            pass  # another process published one first: use theirs
        finally:
            tmp.unlink()
    loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise EvidenceError(f"{key_path} is not an EC key")
    return loaded


def make_token(key: ec.EllipticCurvePrivateKey, challenge: bytes, measurement: bytes, csr_der: bytes) -> bytes:
    if len(challenge) != 32 or len(measurement) != 32:
        raise EvidenceError("challenge and measurement must be 32 bytes each")
    payload = challenge + measurement + hashlib.sha256(csr_der).digest()
    signed = MAGIC + struct.pack(">I", len(payload)) + payload
    return signed + key.sign(signed, ec.ECDSA(hashes.SHA256()))


def verify_token(public_key: ec.EllipticCurvePublicKey, token: bytes) -> Evidence:
    """Check the signature and return the facts the token binds."""
    header = len(MAGIC) + 4
    if len(token) < header or not token.startswith(MAGIC):
        raise EvidenceError("not a simulated-platform token")
    (length,) = struct.unpack(">I", token[len(MAGIC) : header])
    if length != 96 or len(token) <= header + length:
        raise EvidenceError("malformed simulated-platform token")
    signed, signature = token[: header + length], token[header + length :]
    try:
        public_key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise EvidenceError("the token is not signed by this installation's platform key") from None
    payload = signed[header:]
    return Evidence(challenge=payload[:32], measurement=payload[32:64], csr_sha256=payload[64:96])


def load_platform_public_key(directory: Path) -> ec.EllipticCurvePublicKey:
    return ensure_platform_key(directory).public_key()

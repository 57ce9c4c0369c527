"""Simulated attestation evidence: the linux platform's token and a simulated Nitro Secure Module.

Veracruz's linux platform signs a mock PSA token with a private key written in
its source. Ours signs the same facts (the proxy's challenge, the runtime
measurement and the sha256 of the enclave CSR) with a platform key created
once per installation under ``$IPOC_HOME/platform``: only processes that can
read that key can obtain enclave certificates from the local proxy.

Token layout: ``b"IPOC-SIM-1" || u32 BE payload length || payload || DER ECDSA-P256-SHA256 signature``
where payload is ``challenge (32) || measurement (32) || sha256(csr) (32)``.

The simulated NSM (platform ``nitro-sim``) writes real-format Nitro attestation
documents (untagged COSE_Sign1, ES384, a P-384 chain root → instance CA → leaf
without AKI, as AWS's) signed under a per-installation test root kept in
``$IPOC_HOME/platform``; the local proxy trusts that root in place of AWS's,
so the whole Nitro path runs without hardware. It proves nothing about
isolation: whoever can read the root key can forge documents.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ipoc.certs import CA_USAGE, write_private
from ipoc.wire import transport_protocol_pb2 as pb

MAGIC = b"IPOC-SIM-1"
KEY_FILE = "platform-key.pem"
NSM_ROOT_FILE = "nitro-sim-root.pem"  # the simulated NSM's root: certificate then private key, 0600


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
        _publish_once(key_path, _private_pem(key))
    loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise EvidenceError(f"{key_path} is not an EC key")
    return loaded


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _publish_once(path: Path, data: bytes) -> None:
    """Write a private file unless it exists; a concurrent process sees none or a complete one (hard link)."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    write_private(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process published one first: use theirs
    finally:
        tmp.unlink()


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


# --- the simulated Nitro Secure Module ------------------------------------------------------------------------

ROOT_VALIDITY = _dt.timedelta(days=3650)
LEAF_VALIDITY = _dt.timedelta(hours=3)  # AWS's leaf lives 3 hours
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "i-PoC simulated NSM"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    *,
    path_length: int | None,
    ca: bool,
) -> x509.Certificate:
    """One certificate of the AWS profile: CAs carry SKI/AKI and critical keyCertSign, the leaf neither (like AWS's)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(CA_USAGE, critical=True).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key), critical=False
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
    else:
        builder = builder.add_extension(_LEAF_USAGE, critical=False)
    return builder.sign(issuer_key, hashes.SHA384())


def cose_sign1(payload: bytes, key: ec.EllipticCurvePrivateKey, *, algorithm: int = -35) -> bytes:
    """An untagged COSE_Sign1 as the NSM writes it: protected ``{1: alg}``, raw r||s over the Sig_structure."""
    protected = cbor2.dumps({1: algorithm})
    digest = hashes.SHA384() if key.curve.key_size == 384 else hashes.SHA256()
    der = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]), ec.ECDSA(digest))
    r, s = decode_dss_signature(der)
    size = (key.curve.key_size + 7) // 8
    return cbor2.dumps([protected, {}, payload, r.to_bytes(size, "big") + s.to_bytes(size, "big")])


@dataclass(frozen=True)
class SimulatedNsm:
    """A Nitro Secure Module stand-in: documents chaining to a per-installation test root."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    module_id: str = "i-00000000000000000-enc0000000000000000"

    @classmethod
    def create(cls, now: _dt.datetime | None = None, common_name: str = "ipoc.nitro-sim.root") -> SimulatedNsm:
        now = now or _dt.datetime.now(_dt.UTC)
        key = ec.generate_private_key(ec.SECP384R1())
        root = _certificate(
            _name(common_name),
            key.public_key(),
            None,
            key,
            now - _dt.timedelta(minutes=5),
            now + ROOT_VALIDITY,
            path_length=None,
            ca=True,
        )
        return cls(key, root)

    @classmethod
    def load_or_create(cls, directory: Path) -> SimulatedNsm:
        """This installation's simulated NSM (its root made on first use and kept in ``directory``)."""
        path = directory / NSM_ROOT_FILE
        if not path.exists():
            fresh = cls.create()
            _publish_once(path, fresh.root.public_bytes(serialization.Encoding.PEM) + _private_pem(fresh.root_key))
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise EvidenceError(f"{path} does not hold an EC key")
        return cls(key, x509.load_pem_x509_certificate(data))

    def attestation_document(
        self,
        *,
        pcrs: dict[int, bytes],
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
        now: _dt.datetime | None = None,
        leaf_validity: _dt.timedelta = LEAF_VALIDITY,
        algorithm: int = -35,
        payload_overrides: dict[str, Any] | None = None,
    ) -> bytes:
        """``GetAttestationDoc``: sign the PCRs and the caller's user_data/nonce/public_key.

        ``leaf_validity``, ``algorithm`` and ``payload_overrides`` exist so tests can
        write the malformed documents a verifier must refuse.
        """
        now = now or _dt.datetime.now(_dt.UTC)
        instance_key = ec.generate_private_key(ec.SECP384R1())
        instance = _certificate(
            _name("i-00000000000000000.nitro-sim"),
            instance_key.public_key(),
            self.root,
            self.root_key,
            now - _dt.timedelta(minutes=5),
            now + _dt.timedelta(days=1),
            path_length=0,
            ca=True,
        )
        leaf_key = ec.generate_private_key(ec.SECP384R1())
        leaf = _certificate(
            _name(f"{self.module_id}.nitro-sim"),
            leaf_key.public_key(),
            instance,
            instance_key,
            now - _dt.timedelta(seconds=1),
            now - _dt.timedelta(seconds=1) + leaf_validity,
            path_length=None,
            ca=False,
        )
        payload: dict[str, Any] = {
            "module_id": self.module_id,
            "digest": "SHA384",
            "timestamp": int(now.timestamp() * 1000),
            "pcrs": dict(pcrs),
            "certificate": leaf.public_bytes(serialization.Encoding.DER),
            "cabundle": [c.public_bytes(serialization.Encoding.DER) for c in (self.root, instance)],
            "public_key": public_key,
            "user_data": user_data,
            "nonce": nonce,
        }
        payload.update(payload_overrides or {})
        return cose_sign1(cbor2.dumps(payload), leaf_key, algorithm=algorithm)


# --- what a runtime presents to the proxy, per platform -------------------------------------------------------

# platform → (the /Start protocol, the route that takes the evidence)
PLATFORMS = {"linux": ("psa", "/PSA/AttestationToken"), "nitro-sim": ("nitro", "/Nitro/AttestationToken")}


def evidence_request(
    platform: str, platform_dir: Path, challenge: bytes, device_id: int, measurement: str, csr_der: bytes
) -> pb.ProxyAttestationServerRequest:
    """The evidence message for ``platform``: ``measurement`` is the sha256 (linux) or PCR0 (nitro-sim) in hex."""
    if platform == "linux":
        token = make_token(ensure_platform_key(platform_dir), challenge, bytes.fromhex(measurement), csr_der)
        return pb.ProxyAttestationServerRequest(
            native_psa_attestation_token=pb.NativePsaAttestationToken(token=token, device_id=device_id, csr=csr_der)
        )
    if platform == "nitro-sim":
        from runtime.measurement import nitro_sim_pcrs

        # As Veracruz's runtime manager asks the NSM: user_data = the CSR, nonce = the challenge, no public key.
        document = SimulatedNsm.load_or_create(platform_dir).attestation_document(
            pcrs=nitro_sim_pcrs(measurement), user_data=csr_der, nonce=challenge
        )
        return pb.ProxyAttestationServerRequest(
            nitro_attestation_doc=pb.NitroAttestationDoc(doc=document, device_id=device_id)
        )
    raise EvidenceError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")

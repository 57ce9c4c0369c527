"""X.509 helpers: identity keys and certificates, PEM normalisation, DER comparison.

Veracruz matches a TLS peer to a policy identity by certificate DER, and
requires each policy certificate string to end exactly with
``-----END CERTIFICATE-----``; these helpers keep every party consistent.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from ipoc.errors import CertificateError

BEGIN = "-----BEGIN CERTIFICATE-----"
END = "-----END CERTIFICATE-----"
# The X.509 extension in which an attestation service writes the runtime's measurement into an enclave
# certificate (Veracruz's choice; the client compares it with the policy's runtime hash).
MEASUREMENT_OID = x509.ObjectIdentifier("2.5.30.1")

_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def normalise_certificate(pem: str) -> str:
    """Write one PEM certificate the way Veracruz policies carry it.

    The base64 lines are joined; a newline stays after the BEGIN line and before
    the END line, and the string ends exactly with the END line. This is the
    original ``certStrToStringVeracruz`` without its one-character-line edge case.
    """
    blocks = _PEM_BLOCK.findall(pem.replace("\r\n", "\n"))
    if len(blocks) != 1:
        raise CertificateError(f"expected exactly one PEM certificate, found {len(blocks)}")
    body = "".join(blocks[0].split())
    if not body or not re.fullmatch(r"[A-Za-z0-9+/=]+", body):
        raise CertificateError("the PEM certificate body is not base64")
    return f"{BEGIN}\n{body}\n{END}"


def split_pem_certificates(pem: str) -> list[str]:
    """Split a PEM bundle (such as ``proxy_service_cert``) into single certificates."""
    return [f"{BEGIN}{block}{END}" for block in _PEM_BLOCK.findall(pem.replace("\r\n", "\n"))]


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse one PEM certificate, accepting the normalised single-line body too."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    normal = normalise_certificate(text)
    body = normal[len(BEGIN) + 1 : -len(END) - 1]
    wrapped = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    try:
        return x509.load_pem_x509_certificate(f"{BEGIN}\n{wrapped}\n{END}\n".encode())
    except ValueError as exc:
        raise CertificateError(f"cannot parse certificate: {exc}") from None


def certificate_der(pem: str | bytes) -> bytes:
    """The DER bytes of a PEM certificate: what a runtime compares to identify a peer."""
    return load_certificate(pem).public_bytes(serialization.Encoding.DER)


def standard_pem(pem: str | bytes) -> str:
    """Re-wrap a (possibly normalised) certificate as standard 64-column PEM with a final newline."""
    return load_certificate(pem).public_bytes(serialization.Encoding.PEM).decode()


def load_private_key(pem: str | bytes) -> PrivateKeyTypes:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"cannot parse private key (PEM, unencrypted): {exc}") from None


def key_matches_certificate(key_pem: str | bytes, cert_pem: str | bytes) -> bool:
    key = load_private_key(key_pem)
    cert = load_certificate(cert_pem)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Identity:
    """A key and its self-signed certificate, both PEM."""

    certificate: str
    private_key: str

    @property
    def policy_certificate(self) -> str:
        """The certificate as a policy carries it (see :func:`normalise_certificate`)."""
        return normalise_certificate(self.certificate)

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate and the key; the key file is created private (0600)."""
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_text(self.certificate)
        write_private(key_path, self.private_key.encode())


def _self_signed(
    subject: x509.Name,
    *,
    days: int,
    now: _dt.datetime | None = None,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> Identity:
    """An EC P-256 key and a self-signed certificate for ``subject`` (extensions, then the key id)."""
    now = now or _dt.datetime.now(_dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    cert = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False).sign(
        key, hashes.SHA256()
    )
    return Identity(
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


def new_identity(common_name: str, *, days: int = 30) -> Identity:
    """Make an EC P-256 key and a self-signed certificate for it.

    Veracruz's runtime uses the policy's identity certificates themselves as its
    TLS trust anchors, so a self-signed certificate is all an identity needs.
    The default validity (30 days) is openssl's, as in the original user app.
    """
    return _self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), days=days)


PROXY_CA_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Texas"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Austin"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Veracruz"),
        x509.NameAttribute(NameOID.COMMON_NAME, "VeracruzProxyServer"),
    ]
)
CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def new_certificate_authority(*, days: int = 365, now: _dt.datetime | None = None) -> Identity:
    """A proxy attestation CA: an EC P-256 key and a self-signed CA certificate.

    The subject is the original's (``CN=VeracruzProxyServer``); used by the local
    proxy and by the AWS deployment's setup function, which keeps it in Secrets Manager.
    """
    return _self_signed(
        PROXY_CA_SUBJECT,
        days=days,
        now=now,
        extensions=((x509.BasicConstraints(ca=True, path_length=None), True), (CA_USAGE, True)),
    )


def write_private(path: Path, data: bytes) -> None:
    """Create or replace a file readable by its owner only, never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)

"""The proxy's certificate authority: a CA key kept in a state directory, and enclave certificates.

An enclave certificate binds the enclave's TLS key (from its CSR) to the
runtime measurement (extension 2.5.30.1); clients trust it because it chains
to the CA certificate the policy carries as ``proxy_service_cert``.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ipoc.certs import MEASUREMENT_OID, new_certificate_authority, write_private

log = logging.getLogger(__name__)

ENCLAVE_SAN = "ComputeEnclave.dev"
CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"
CA_VALIDITY_DAYS = 365


class CsrError(ValueError):
    """The enclave's certificate signing request cannot be used."""


class CaError(ValueError):
    """The operator's CA files cannot be used."""


@dataclass
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    cert_path: Path

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @classmethod
    def load_or_create(cls, state_dir: Path, now: _dt.datetime | None = None) -> CertificateAuthority:
        """Reuse the CA in ``state_dir``; create one on first start or when it has expired."""
        now = now or _dt.datetime.now(_dt.UTC)
        key_path, cert_path = state_dir / CA_KEY_FILE, state_dir / CA_CERT_FILE
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc > now + _dt.timedelta(days=1):
                return cls(key, cert, cert_path)
            log.warning("CA certificate in %s expired or unusable: issuing a new CA", state_dir)
        fresh = new_certificate_authority(days=CA_VALIDITY_DAYS, now=now)
        key = serialization.load_pem_private_key(fresh.private_key.encode(), password=None)
        cert = x509.load_pem_x509_certificate(fresh.certificate.encode())
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        write_private(key_path, fresh.private_key.encode())
        cert_path.write_text(fresh.certificate)
        return cls(key, cert, cert_path)

    @classmethod
    def from_files(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        """A CA provisioned by the operator (e.g. from Secrets Manager); read only, never rewritten."""
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise CaError(f"cannot load the CA from {cert_path} and {key_path}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise CaError(f"{key_path} is not the EC private key of {cert_path}")
        return cls(key, cert, cert_path)

    def issue_enclave_certificate(
        self, csr_der: bytes, measurement: bytes, validity: _dt.timedelta, now: _dt.datetime | None = None
    ) -> bytes:
        """Sign the enclave's CSR: its subject and P-256 key, the SAN, and the measurement extension."""
        now = now or _dt.datetime.now(_dt.UTC)
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError as exc:
            raise CsrError(f"the CSR is not DER: {exc}") from None
        if not csr.is_signature_valid:
            raise CsrError("the CSR's self-signature is invalid")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise CsrError("the enclave key must be EC P-256")
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(min(now + validity, self.certificate.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(ENCLAVE_SAN)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.UnrecognizedExtension(MEASUREMENT_OID, measurement), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.DER)

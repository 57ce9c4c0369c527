"""Identities made as the seed's user app makes them: ``openssl req -x509 -config cert.conf``.

Every certificate from one cert.conf has the same subject, and the config asks
for no key identifiers, so nothing but the key and signature tells two such
certificates apart (README "Compatibility with Veracruz v1.3 and the original i-PoC",
two identities with one certificate subject).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ipoc.certs import Identity

CERT_CONF_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "Mx"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Veracruz"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Veracruz"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zibble Zabble"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "zibble@zabble.zibble"),
        x509.NameAttribute(NameOID.COMMON_NAME, "zibblezabble"),
    ]
)


def cert_conf_identity() -> Identity:
    """An EC P-256 key and a self-signed certificate as cert.conf makes it: the fixed subject, the SANs,
    openssl's default 30 days, and no subject or authority key identifier."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(CERT_CONF_SUBJECT)
        .issuer_name(CERT_CONF_SUBJECT)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("zabble.zibble"), x509.DNSName("www.zabble.zibble")]), False
        )
        .sign(key, hashes.SHA256())
    )
    return Identity(
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
    )

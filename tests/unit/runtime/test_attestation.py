"""The simulated platform's evidence and the proxy's certificate authority (no network)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ipoc.client import runtime_measurement
from ipoc.wire import transport_protocol_pb2 as pb
from runtime.attestation.ca import CertificateAuthority, CsrError
from runtime.attestation.service import AttestationRefused, ProxyAttestation
from runtime.evidence import EvidenceError, ensure_platform_key, make_token, verify_token

MEASUREMENT = bytes(range(32))


def csr_der(key=None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "VeracruzCompute")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def test_platform_key_is_made_once_and_private(tmp_path):
    first = ensure_platform_key(tmp_path)
    second = ensure_platform_key(tmp_path)
    assert first.private_numbers() == second.private_numbers()
    assert (tmp_path / "platform-key.pem").stat().st_mode & 0o777 == 0o600


def test_token_round_trip_and_tampering(tmp_path):
    key = ensure_platform_key(tmp_path)
    csr = csr_der()
    token = make_token(key, b"c" * 32, MEASUREMENT, csr)
    evidence = verify_token(key.public_key(), token)
    assert (evidence.challenge, evidence.measurement, evidence.csr_sha256) == (
        b"c" * 32,
        MEASUREMENT,
        hashlib.sha256(csr).digest(),
    )
    tampered = bytearray(token)
    tampered[20] ^= 1
    with pytest.raises(EvidenceError, match="not signed"):
        verify_token(key.public_key(), bytes(tampered))
    with pytest.raises(EvidenceError, match="not signed"):
        verify_token(ec.generate_private_key(ec.SECP256R1()).public_key(), token)


def test_ca_is_reused_and_certifies_the_measurement(tmp_path):
    ca = CertificateAuthority.load_or_create(tmp_path)
    assert CertificateAuthority.load_or_create(tmp_path).certificate == ca.certificate
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    der = ca.issue_enclave_certificate(csr_der(), MEASUREMENT, dt.timedelta(days=1))
    cert = x509.load_der_x509_certificate(der)
    assert runtime_measurement(der) == MEASUREMENT
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["ComputeEnclave.dev"]
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=1, minutes=5)


def test_ca_is_replaced_when_expired(tmp_path):
    old = CertificateAuthority.load_or_create(tmp_path, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    new = CertificateAuthority.load_or_create(tmp_path)
    assert new.certificate != old.certificate


def test_ca_refuses_bad_csrs(tmp_path):
    ca = CertificateAuthority.load_or_create(tmp_path)
    with pytest.raises(CsrError):
        ca.issue_enclave_certificate(b"not der", MEASUREMENT, dt.timedelta(days=1))
    rsa_free_p384 = csr_der(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(CsrError, match="P-256"):
        ca.issue_enclave_certificate(rsa_free_p384, MEASUREMENT, dt.timedelta(days=1))


def test_proxy_binds_challenge_csr_and_device(tmp_path):
    key = ensure_platform_key(tmp_path / "platform")
    proxy = ProxyAttestation(ca=CertificateAuthority.load_or_create(tmp_path / "ca"), platform_key=key.public_key())
    start = proxy.start(pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="psa")))
    challenge, device = start.psa_attestation_init.challenge, start.psa_attestation_init.device_id
    csr = csr_der()

    def submit(token: bytes, device_id: int = device, csr_bytes: bytes = csr):
        return proxy.psa_token(
            pb.ProxyAttestationServerRequest(
                native_psa_attestation_token=pb.NativePsaAttestationToken(
                    token=token, device_id=device_id, csr=csr_bytes
                )
            )
        )

    with pytest.raises(AttestationRefused, match="another challenge"):
        submit(make_token(key, b"x" * 32, MEASUREMENT, csr))
    # a failed attempt consumes the challenge: start again
    start = proxy.start(pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="psa")))
    challenge, device = start.psa_attestation_init.challenge, start.psa_attestation_init.device_id
    with pytest.raises(AttestationRefused, match="does not bind this CSR"):
        submit(make_token(key, challenge, MEASUREMENT, csr_der()), device_id=device)
    start = proxy.start(pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="psa")))
    challenge, device = start.psa_attestation_init.challenge, start.psa_attestation_init.device_id
    chain = submit(make_token(key, challenge, MEASUREMENT, csr), device_id=device).cert_chain
    assert runtime_measurement(chain.enclave_cert) == MEASUREMENT
    with pytest.raises(AttestationRefused, match="already used"):
        submit(make_token(key, challenge, MEASUREMENT, csr), device_id=device)

"""The proxy's Nitro rules (Veracruz v1.3's flow, stricter): synthetic documents from a test root, no network.

The refusals a Veracruz deployment depends on: the nonce must be the challenge,
user_data must be the CSR the certificate then binds, PCR0 must be allowed,
and a challenge works once. The issued certificate is read back with
cryptography and with OpenSSL's strict X.509 checks (an oracle we did not write).
"""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ipoc.client import runtime_measurement
from ipoc.wire import transport_protocol_pb2 as pb
from runtime.attestation.ca import CertificateAuthority
from runtime.attestation.nitro import NitroTrust, parse_allowlist
from runtime.attestation.service import AttestationRefused, ProxyAttestation
from runtime.evidence import SimulatedNsm

PCR0 = bytes(range(48))
PCRS = {0: PCR0, 1: b"\1" * 48, 2: b"\2" * 48}


@pytest.fixture(scope="module")
def nsm() -> SimulatedNsm:
    return SimulatedNsm.create()


@pytest.fixture
def proxy(nsm, tmp_path) -> ProxyAttestation:
    trust = NitroTrust(nsm.root, parse_allowlist([PCR0[:32].hex()]))
    return ProxyAttestation(ca=CertificateAuthority.load_or_create(tmp_path), platform_key=None, nitro=trust)


def enclave_csr() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "VeracruzCompute")]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.DER)


def start(proxy: ProxyAttestation) -> tuple[bytes, int]:
    reply = proxy.start(
        pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="nitro", firmware_version="0.0"))
    )
    return reply.psa_attestation_init.challenge, reply.psa_attestation_init.device_id


def submit(proxy: ProxyAttestation, doc: bytes, device_id: int) -> pb.CertChain:
    request = pb.ProxyAttestationServerRequest(
        nitro_attestation_doc=pb.NitroAttestationDoc(doc=doc, device_id=device_id)
    )
    return proxy.nitro_token(request).cert_chain


def test_start_gives_a_fresh_32_byte_challenge(proxy):
    first, second = start(proxy), start(proxy)
    assert len(first[0]) == 32 and first[0] != second[0] and second[1] == first[1] + 1


def test_enclave_certificate_as_veracruz_issues_it_but_well_formed(proxy, nsm, tmp_path):
    challenge, device = start(proxy)
    key, csr = enclave_csr()
    chain = submit(proxy, nsm.attestation_document(pcrs=PCRS, user_data=csr, nonce=challenge), device)
    cert = x509.load_der_x509_certificate(chain.enclave_cert)
    assert chain.root_cert == proxy.ca.certificate_der
    assert runtime_measurement(chain.enclave_cert) == PCR0[:32]  # the client's own reader
    assert cert.public_key() == key.public_key()  # the CSR's key
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["ComputeEnclave.dev"]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca and constraints.value.path_length is None
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=1, minutes=5)
    # OpenSSL, strict: the chain the runtime serves verifies under X509_STRICT
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(proxy.ca.certificate_pem)
    leaf_file = tmp_path / "leaf.pem"
    leaf_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    verified = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(ca_file), str(leaf_file)], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def refused(proxy, doc: bytes, device: int) -> AttestationRefused:
    with pytest.raises(AttestationRefused) as error:
        submit(proxy, doc, device)
    return error.value


def test_wrong_nonce_is_refused(proxy, nsm):
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    error = refused(proxy, nsm.attestation_document(pcrs=PCRS, user_data=csr, nonce=b"\0" * 32), device)
    assert error.status == 401 and "nonce: the document's nonce is not the challenge" in str(error)


def test_missing_or_invalid_csr_in_user_data_is_refused(proxy, nsm):
    challenge, device = start(proxy)
    error = refused(proxy, nsm.attestation_document(pcrs=PCRS, nonce=challenge), device)
    assert "user_data: the document's user_data is empty" in str(error)
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    broken = csr[:-8] + bytes(8)  # the self-signature no longer verifies (or the DER breaks)
    error = refused(proxy, nsm.attestation_document(pcrs=PCRS, user_data=broken, nonce=challenge), device)
    assert "user_data: the CSR" in str(error)


def test_pcr0_outside_the_allow_list_is_refused(proxy, nsm):
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    error = refused(proxy, nsm.attestation_document(pcrs={0: b"\x55" * 48}, user_data=csr, nonce=challenge), device)
    assert f"pcr0: PCR0 {'55' * 48} is not in the allow-list" in str(error)


def test_full_pcr0_entries_match_the_whole_value(nsm, tmp_path):
    trust = NitroTrust(nsm.root, parse_allowlist([PCR0.hex()]))
    assert trust.allows(PCR0) and not trust.allows(PCR0[:32] + b"\0" * 16)


def test_leaf_from_another_root_is_refused_and_keeps_the_challenge(proxy, nsm):
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    other = SimulatedNsm.create()
    error = refused(proxy, other.attestation_document(pcrs=PCRS, user_data=csr, nonce=challenge), device)
    assert "attestation document refused: root: cabundle[0]" in str(error)
    # Veracruz's order: a document that does not authenticate does not burn the challenge
    assert submit(proxy, nsm.attestation_document(pcrs=PCRS, user_data=csr, nonce=challenge), device).enclave_cert


def test_a_challenge_works_once(proxy, nsm):
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    doc = nsm.attestation_document(pcrs=PCRS, user_data=csr, nonce=challenge)
    submit(proxy, doc, device)
    error = refused(proxy, doc, device)
    assert error.status == 400 and "already used" in str(error)


def test_an_expired_challenge_is_refused(proxy, nsm):
    proxy.challenge_ttl = -1.0  # already past: no waiting
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    error = refused(proxy, nsm.attestation_document(pcrs=PCRS, user_data=csr, nonce=challenge), device)
    assert error.status == 401 and "expired" in str(error)


def test_a_stale_document_is_refused(proxy, nsm):
    challenge, device = start(proxy)
    _, csr = enclave_csr()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
    error = refused(proxy, nsm.attestation_document(pcrs=PCRS, user_data=csr, nonce=challenge, now=old), device)
    assert "timestamp: the document was made at" in str(error)


def test_psa_is_off_when_only_nitro_is_trusted(proxy):
    with pytest.raises(AttestationRefused) as error:
        proxy.start(pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="psa")))
    assert error.value.status == 501


def test_allow_list_parsing():
    assert parse_allowlist(["AA" * 32 + ", " + "bb" * 48, ""]) == {"aa" * 32, "bb" * 48}
    with pytest.raises(ValueError, match="neither 64 nor 96"):
        parse_allowlist(["abc"])

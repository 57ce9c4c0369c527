"""The Nitro attestation verifier against real AWS documents and synthetic ones signed by a test root.

Oracles: the real documents in tests/data/nitro/ (made by AWS's NSM; their
facts recorded independently in samples.json) and AWS's published root
fingerprint. The synthetic documents come from the simulated NSM
(runtime.evidence), whose own output the real samples do not vouch for, so
each synthetic refusal test also checks the unmodified document passes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ipoc import nitro
from runtime.evidence import SimulatedNsm, cose_sign1

DATA = Path(__file__).parents[2] / "data" / "nitro"
SAMPLES = json.loads((DATA / "samples.json").read_text())["documents"]
NOW = dt.datetime.now(dt.UTC)
PCRS = {index: bytes([index]) * 48 for index in range(16)}


def sample(name: str) -> bytes:
    return base64.b64decode((DATA / name).read_text())


@pytest.fixture(scope="module")
def nsm() -> SimulatedNsm:
    return SimulatedNsm.create(now=NOW - dt.timedelta(days=1))


def test_the_pinned_root_is_the_published_one():
    published = x509.load_pem_x509_certificate((DATA / "aws_nitro_root_g1.pem").read_bytes())
    root = nitro.aws_root()
    assert root.public_bytes(serialization.Encoding.DER) == published.public_bytes(serialization.Encoding.DER)
    assert hashlib.sha256(root.public_bytes(serialization.Encoding.DER)).hexdigest() == nitro.AWS_NITRO_ROOT_SHA256


@pytest.mark.parametrize("facts", SAMPLES, ids=[s["file"] for s in SAMPLES])
def test_every_real_sample_at_its_own_time(facts):
    data = sample(facts["file"])
    at = nitro.document_time(data)
    report = nitro.check_document(data, at=at)
    doc = report.document
    assert doc is not None
    # the decoded payload matches the independently recorded facts
    assert (doc.module_id, doc.timestamp_ms, doc.pcrs[0].hex()) == (
        facts["module_id"],
        facts["timestamp_ms"],
        facts["pcr0"],
    )
    assert len(doc.pcrs) == facts["pcr_count"]
    assert (doc.nonce.hex() if doc.nonce else None) == facts["nonce"]
    if facts["cose_signature_valid"]:
        assert report.valid, report.checks
        assert nitro.verify_document(data, at=at) == doc
    else:  # the invalid sample: everything holds but its signature
        assert [c.name for c in report.checks if not c.passed] == ["signature"]
        with pytest.raises(nitro.AttestationError) as refused:
            nitro.verify_document(data, at=at)
        assert refused.value.check == "signature"


def test_real_samples_are_expired_now():
    with pytest.raises(nitro.AttestationError) as refused:
        nitro.verify_document(sample("uid2_core_2021.b64"))
    assert refused.value.check == "validity"
    assert "not at" in refused.value.reason


def test_a_tagged_document_verifies_too():
    data = sample("eternis_example_attestation.b64")
    tagged = cbor2.dumps(cbor2.CBORTag(18, cbor2.loads(data)))
    assert nitro.verify_document(tagged, at=nitro.document_time(data)).module_id.startswith("i-0bbf1bfe")


def refusal(data: bytes, root: x509.Certificate, **kwargs) -> nitro.AttestationError:
    with pytest.raises(nitro.AttestationError) as refused:
        nitro.verify_document(data, root=root, **kwargs)
    return refused.value


def test_a_synthetic_document_verifies(nsm):
    doc = nitro.verify_document(nsm.attestation_document(pcrs=PCRS, nonce=b"n" * 32, user_data=b"u"), root=nsm.root)
    assert (doc.nonce, doc.user_data, doc.public_key, doc.pcr0) == (b"n" * 32, b"u", None, PCRS[0])


def test_expired_leaf_is_refused(nsm):
    data = nsm.attestation_document(pcrs=PCRS, now=NOW - dt.timedelta(hours=4))
    error = refusal(data, nsm.root, at=NOW)
    assert error.check == "validity" and "nitro-sim" in error.reason
    assert nitro.verify_document(data, root=nsm.root, at=NOW - dt.timedelta(hours=3, minutes=59))


def test_leaf_from_another_root_is_refused(nsm):
    other = SimulatedNsm.create()
    data = other.attestation_document(pcrs=PCRS)
    error = refusal(data, nsm.root)
    assert error.check == "root" and "is not the trusted root" in error.reason
    # a bundle that claims the trusted root but whose chain is the other root's: the link check names it
    payload = cbor2.loads(cbor2.loads(data)[2])
    payload["cabundle"][0] = nsm.root.public_bytes(serialization.Encoding.DER)
    forged = cose_sign1(cbor2.dumps(payload), ec.generate_private_key(ec.SECP384R1()))  # the chain fails first
    error = refusal(forged, nsm.root)
    assert error.check == "chain" and "is not issued by" in error.reason


def test_aws_root_refuses_a_test_root_document(nsm):
    error = refusal(nsm.attestation_document(pcrs=PCRS), nitro.aws_root())
    assert error.check == "root"


def test_truncated_document_is_refused(nsm):
    data = nsm.attestation_document(pcrs=PCRS)
    error = refusal(data[:-40], nsm.root)
    assert error.check == "structure" and "not well-formed CBOR" in error.reason
    error = refusal(data + b"\0", nsm.root)
    assert error.check == "structure" and "trailing" in error.reason


def test_tampered_payload_is_refused(nsm):
    data = nsm.attestation_document(pcrs=PCRS, nonce=b"a" * 32)
    envelope = cbor2.loads(data)
    envelope[2] = envelope[2].replace(b"a" * 32, b"b" * 32)
    error = refusal(cbor2.dumps(envelope), nsm.root)
    assert error.check == "signature"


def test_wrong_algorithm_is_refused(nsm):
    error = refusal(nsm.attestation_document(pcrs=PCRS, algorithm=-7), nsm.root)  # ES256 named, ES384 signed
    assert error.check == "algorithm" and "ES384" in error.reason


def test_other_cose_tag_is_refused(nsm):
    data = cbor2.dumps(cbor2.CBORTag(98, cbor2.loads(nsm.attestation_document(pcrs=PCRS))))
    assert refusal(data, nsm.root).check == "structure"


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"digest": "SHA256"}, "digest must be"),
        ({"pcrs": {0: b"\0" * 47}}, "PCR0 must be a byte string of 32, 48 or 64"),
        ({"pcrs": {40: b"\0" * 48}}, "PCR index 40"),
        ({"module_id": ""}, "module_id must be non-empty"),
        ({"timestamp": -1}, "timestamp must be"),
        ({"cabundle": []}, "cabundle must be a non-empty"),
        ({"nonce": "text"}, "nonce must be a byte string"),
        ({"user_data": b"u" * 1025}, "user_data must be a byte string of 0..1024"),
        # hostile CBOR: a bignum Python refuses to print, a timestamp no date can show (both crashed the verifier)
        ({"digest": 10**5000}, "got a int too large to show"),
        ({"pcrs": {10**5000: b"\0" * 48}}, "PCR index a int too large to show"),
        ({"timestamp": (1 << 64) - 1}, "timestamp must be"),
    ],
)
def test_malformed_payload_fields_are_refused(nsm, overrides, reason):
    error = refusal(nsm.attestation_document(pcrs=PCRS, payload_overrides=overrides), nsm.root)
    assert error.check == "payload" and reason in error.reason


def test_a_refused_hostile_document_still_reports_as_json(nsm):
    """`ipoc attestation verify --json` on a document whose timestamp no date can show: a report, not a crash."""
    report = nitro.check_document(
        nsm.attestation_document(pcrs=PCRS, payload_overrides={"timestamp": (1 << 64) - 1}), root=nsm.root
    )
    assert json.loads(json.dumps(report.to_json()))["valid"] is False


def test_missing_field_is_named(nsm):
    data = nsm.attestation_document(pcrs=PCRS)
    envelope = cbor2.loads(data)
    payload = cbor2.loads(envelope[2])
    del payload["timestamp"]
    envelope[2] = cbor2.dumps(payload)
    error = refusal(cbor2.dumps(envelope), nsm.root)
    assert (error.check, error.reason) == ("payload", "missing mandatory field(s): timestamp")


def test_report_lists_every_check_in_json(nsm):
    report = nitro.check_document(nsm.attestation_document(pcrs=PCRS), root=nsm.root)
    body = report.to_json()
    assert body["valid"] is True
    assert [c["name"] for c in body["checks"]] == list(nitro.CHECKS)
    assert body["document"]["pcrs"]["0"] == PCRS[0].hex()


def chain_document(
    nsm: SimulatedNsm,
    *,
    ca_usage: x509.KeyUsage | None,
    ca_path_length: int | None = 0,
    leaf_curve: ec.EllipticCurve | None = None,
    algorithm: int = -35,
) -> bytes:
    """A document whose root → CA → leaf chain is built here, to break one key-usage rule at a time."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    start, end = NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_builder = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(nsm.root.subject)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=ca_path_length), critical=True)
    )
    if ca_usage is not None:
        ca_builder = ca_builder.add_extension(ca_usage, critical=True)
    ca = ca_builder.sign(nsm.root_key, hashes.SHA384())
    leaf_key = ec.generate_private_key(leaf_curve or ec.SECP384R1())  # the NSM signs with P-384
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("test leaf"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    der = serialization.Encoding.DER
    payload = {
        "module_id": "m",
        "digest": "SHA384",
        "timestamp": int(NOW.timestamp() * 1000),
        "pcrs": {0: bytes(48)},
        "certificate": leaf.public_bytes(der),
        "cabundle": [nsm.root.public_bytes(der), ca.public_bytes(der)],
    }
    return cose_sign1(cbor2.dumps(payload), leaf_key, algorithm=algorithm)


CA_SIGN = x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def test_a_hand_built_chain_verifies(nsm):
    assert nitro.verify_document(chain_document(nsm, ca_usage=CA_SIGN), root=nsm.root).module_id == "m"


def test_ca_without_key_cert_sign_is_refused(nsm):
    no_sign = x509.KeyUsage(True, False, False, False, False, False, True, False, False)
    error = refusal(chain_document(nsm, ca_usage=no_sign), nsm.root)
    assert (error.check, error.reason) == ("key_usage", "CN=test CA lacks keyUsage keyCertSign")


def test_leaf_key_must_be_p384(nsm):
    report = nitro.check_document(chain_document(nsm, ca_usage=CA_SIGN, leaf_curve=ec.SECP256R1()), root=nsm.root)
    failed = {c.name: c.detail for c in report.checks if not c.passed}
    assert failed["algorithm"] == "an ES384 signature is 96 bytes (r||s), got 64"
    assert failed["key_usage"] == "the signing certificate's key must be EC P-384 (ES384)"
    assert failed["signature"] == "the signing certificate's key is not EC P-384"

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
NOW = dt.datetime.now(dt.timezone.utc)
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
    assert (doc.module_id, doc.timestamp_ms, doc.pcrs[0].hex()) == (facts["module_id"], facts["timestamp_ms"], facts["pcr0"])
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
    ],
)
def test_malformed_payload_fields_are_refused(nsm, overrides, reason):
    error = refusal(nsm.attestation_document(pcrs=PCRS, payload_overrides=overrides), nsm.root)
    assert error.check == "payload" and reason in error.reason


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

"""``ipoc attestation verify`` as a user runs it (a real subprocess) on the real samples and synthetic documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from runtime.evidence import SimulatedNsm
from tests.support import processes

DATA = Path(__file__).parents[2] / "data" / "nitro"
VALID = ["eternis_example_attestation.b64", "uid2_core_2021.b64"]


def verify(*args: str):
    return processes.run(["attestation", "verify", *args], timeout=60)


@pytest.mark.parametrize("name", VALID)
def test_real_samples_are_valid_at_their_time(name):
    result = verify("--at-document-time", str(DATA / name))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "valid"
    assert lines[0].startswith("module_id   i-0")
    assert "PCR0        " + "00" * 48 in lines
    assert "against root sha256 641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b" in result.stdout
    assert "  signature  ok" in lines


def test_invalid_sample_fails_for_its_signature():
    result = verify("--at-document-time", str(DATA / "eternis_invalid_attestation.b64"))
    assert result.returncode == 1
    assert "  chain      ok" in result.stdout.splitlines()
    assert "  signature  FAILED: the COSE signature does not verify with the signing certificate's key" in result.stdout
    assert result.stdout.splitlines()[-1] == "INVALID"
    assert (
        result.stderr.strip()
        == "error: invalid: signature: the COSE signature does not verify with the signing certificate's key"
    )


def test_now_is_the_default_and_the_samples_have_expired():
    result = verify("--json", str(DATA / "uid2_core_2021.b64"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert {c["name"]: c["passed"] for c in report["checks"]}["validity"] is False
    assert report["document"]["timestamp"] == "2021-04-26T04:09:13.100000+00:00"


def test_explicit_time_and_raw_bytes(tmp_path):
    import base64

    raw = tmp_path / "doc.cbor"
    raw.write_bytes(base64.b64decode((DATA / "uid2_core_2021.b64").read_text()))
    assert verify("--at", "2021-04-26T05:00:00Z", str(raw)).returncode == 0
    late = verify("--at", "2021-04-26T08:00:00Z", str(raw))
    assert late.returncode == 1 and "validity" in late.stderr


def test_test_root_and_wrong_root(tmp_path):
    nsm = SimulatedNsm.create()
    doc = tmp_path / "sim.cbor"
    doc.write_bytes(nsm.attestation_document(pcrs={0: b"\1" * 48}, nonce=b"n" * 32))
    root = tmp_path / "root.pem"
    root.write_bytes(nsm.root.public_bytes(serialization.Encoding.PEM))
    assert verify("--root", str(root), str(doc)).returncode == 0
    refused = verify(str(doc))  # the pinned AWS root
    assert refused.returncode == 1 and "error: invalid: root: cabundle[0]" in refused.stderr


def test_usage_errors():
    both = verify("--at", "2021-04-26T05:00:00Z", "--at-document-time", str(DATA / "uid2_core_2021.b64"))
    assert both.returncode == 2 and "exclusive" in both.stderr
    assert verify("--at", "yesterday", str(DATA / "uid2_core_2021.b64")).returncode == 2


def test_garbage_is_refused_by_name(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x84\x01")
    result = verify("--at-document-time", str(junk))
    assert result.returncode == 1 and "structure" in result.stderr


def test_aws_mode_needs_an_allow_list(tmp_path):
    result = processes.run(
        ["attestation", "serve", "--mode", "aws", "--port", "0", "--state-dir", str(tmp_path)],
        timeout=60,
        env={"IPOC_PCR0_ALLOWLIST": ""},
    )
    assert result.returncode == 1
    assert "error: the PCR0 allow-list is empty" in result.stderr
    bad = processes.run(["attestation", "serve", "--mode", "aws", "--port", "0", "--allow-pcr0", "xyz"], timeout=60)
    assert bad.returncode == 1 and "neither 64 nor 96 hex digits" in bad.stderr

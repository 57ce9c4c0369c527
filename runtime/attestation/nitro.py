"""The proxy's Nitro rules on top of :mod:`ipoc.nitro`: what Veracruz v1.3's flow needs, and stricter.

Veracruz's proxy authenticates the document (but never chain-checks the leaf),
compares the nonce with the challenge and certifies the CSR in ``user_data``
with the first 32 bytes of PCR0. We also chain-check the leaf to the pinned
root, refuse any PCR0 the operator has not allowed, and bound the document's age.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field

from cryptography import x509

from ipoc.nitro import AttestationDocument, AttestationError, aws_root, fingerprint, verify_document

ALLOWLIST_ENV = "IPOC_PCR0_ALLOWLIST"
MAX_DOCUMENT_AGE = _dt.timedelta(minutes=10)
_ENTRY = re.compile(r"[0-9a-f]{64}|[0-9a-f]{96}")


def parse_allowlist(values: list[str] | tuple[str, ...]) -> frozenset[str]:
    """PCR0 values: 96 hex digits (the whole SHA-384) or 64 (its first 32 bytes, as ``runtime_manager_hash_nitro``).

    Each value may itself be a comma- or space-separated list (the form an environment variable carries).
    """
    entries = set()
    for value in values:
        for entry in re.split(r"[\s,]+", value.strip()):
            if not entry:
                continue
            if not _ENTRY.fullmatch(entry.lower()):
                raise ValueError(f"PCR0 allow-list entry {entry!r} is neither 64 nor 96 hex digits")
            entries.add(entry.lower())
    return frozenset(entries)


def allowlist_from_env() -> frozenset[str]:
    return parse_allowlist([os.environ.get(ALLOWLIST_ENV, "")])


@dataclass(frozen=True)
class NitroTrust:
    """The root documents must chain to and the PCR0 values whose enclaves may be certified."""

    root: x509.Certificate
    allowed_pcr0: frozenset[str]
    max_age: _dt.timedelta = MAX_DOCUMENT_AGE
    description: str = field(default="")

    @classmethod
    def aws(cls, allowed_pcr0: frozenset[str]) -> NitroTrust:
        return cls(aws_root(), allowed_pcr0, description="AWS Nitro Enclaves root G1")

    def allows(self, pcr0: bytes) -> bool:
        return pcr0.hex() in self.allowed_pcr0 or pcr0[:32].hex() in self.allowed_pcr0

    def summary(self) -> str:
        name = self.description or "root"
        return f"{name} (sha256 {fingerprint(self.root)}), {len(self.allowed_pcr0)} allowed PCR0 value(s)"


@dataclass(frozen=True)
class EnclaveEvidence:
    measurement: bytes  # PCR0[0..32]: what the enclave certificate's 2.5.30.1 extension carries
    csr: bytes
    document: AttestationDocument


def authenticate(doc: bytes, trust: NitroTrust, now: _dt.datetime | None = None) -> AttestationDocument:
    """Veracruz's step 2 (authentication), stricter: the whole chain, validity now, and a bounded age."""
    now = now or _dt.datetime.now(_dt.UTC)
    document = verify_document(doc, root=trust.root, at=now)
    age = now - document.timestamp
    if age > trust.max_age or age < -_dt.timedelta(seconds=60):
        raise AttestationError(
            "timestamp",
            f"the document was made at {document.timestamp.isoformat()}, "
            f"outside {trust.max_age} of now ({now.isoformat()})",
        )
    return document


def enclave_evidence(document: AttestationDocument, challenge: bytes, trust: NitroTrust) -> EnclaveEvidence:
    """Veracruz's steps 4-6 after the challenge is taken: nonce, PCR0 (and our allow-list), CSR present."""
    if document.nonce != challenge:
        raise AttestationError("nonce", "the document's nonce is not the challenge this proxy issued for the device")
    pcr0 = document.pcr0
    if pcr0 is None or len(pcr0) < 32:
        raise AttestationError("pcr0", "the document carries no PCR0 of at least 32 bytes")
    if not trust.allows(pcr0):
        raise AttestationError(
            "pcr0",
            f"PCR0 {pcr0.hex()} is not in the allow-list (add it to ipoc:runtimeMeasurement or ipoc:pcr0AllowList)",
        )
    if not document.user_data:
        raise AttestationError("user_data", "the document's user_data is empty: it must hold the enclave's CSR (DER)")
    return EnclaveEvidence(measurement=pcr0[:32], csr=document.user_data, document=document)

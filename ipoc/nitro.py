"""Verify AWS Nitro Enclaves attestation documents: the one verifier the proxy and the CLI use.

A document is a COSE_Sign1 (RFC 9052; tagged 18 or, as the NSM writes it,
untagged) whose payload is a CBOR map signed with ES384 by a leaf certificate
that chains, through the document's ``cabundle``, to the AWS Nitro Enclaves
root. We pin that root by the SHA-256 fingerprint AWS documents, verify every
link ourselves (so each refusal names its check) and then let
``cryptography``'s path builder re-verify the chain as a second, independent
oracle. The trusted root is a parameter so tests and the simulated NSM can use
their own. Application rules (nonce, CSR, PCR0 allow-list) belong to the
caller; see ``runtime.attestation.nitro``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

# The AWS Nitro Enclaves root G1 (https://docs.aws.amazon.com/enclaves/latest/user/verify-root.html).
AWS_NITRO_ROOT_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
AWS_NITRO_ROOT_PEM = """-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----"""

ES384 = -35
COSE_SIGN1_TAG = 18
PCR_LENGTHS = (32, 48, 64)
MAX_CERT = 1024
MAX_OPTIONAL = 1024
MAX_PCRS = 32
MAX_TIMESTAMP_MS = int(
    _dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=_dt.UTC).timestamp() * 1000
)  # the last a datetime shows
MANDATORY = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
# The checks, in the order they run; a report lists each one's verdict.
CHECKS = ("structure", "algorithm", "payload", "root", "chain", "validity", "key_usage", "signature")


class AttestationError(Exception):
    """A document failed one check; ``check`` names it (one of :data:`CHECKS` or a caller's rule)."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.reason = message


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool | None  # None: not run, because an earlier check it depends on failed
    detail: str


@dataclass(frozen=True)
class AttestationDocument:
    """The decoded payload; the optional fields are None when absent or CBOR null."""

    module_id: str
    digest: str
    timestamp_ms: int
    pcrs: dict[int, bytes]
    certificate: x509.Certificate
    cabundle: tuple[x509.Certificate, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None

    @property
    def timestamp(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.timestamp_ms / 1000, _dt.UTC)

    @property
    def pcr0(self) -> bytes | None:
        return self.pcrs.get(0)


@dataclass
class Report:
    """Every check's verdict, and the document when its payload could be decoded."""

    at: _dt.datetime
    root_sha256: str
    checks: list[CheckResult] = field(default_factory=list)
    document: AttestationDocument | None = None

    @property
    def valid(self) -> bool:
        return all(c.passed for c in self.checks) and len(self.checks) == len(CHECKS)

    def first_failure(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)

    def to_json(self) -> dict[str, Any]:
        doc = self.document
        return {
            "valid": self.valid,
            "verified_at": self.at.isoformat(),
            "root_sha256": self.root_sha256,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks],
            "document": None
            if doc is None
            else {
                "module_id": doc.module_id,
                "timestamp": doc.timestamp.isoformat(),
                "digest": doc.digest,
                "pcrs": {str(i): v.hex() for i, v in sorted(doc.pcrs.items())},
                "public_key": None if doc.public_key is None else doc.public_key.hex(),
                "user_data": None if doc.user_data is None else doc.user_data.hex(),
                "nonce": None if doc.nonce is None else doc.nonce.hex(),
            },
        }


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def aws_root() -> x509.Certificate:
    """The pinned AWS Nitro Enclaves root, refused unless its DER has the documented fingerprint."""
    root = x509.load_pem_x509_certificate(AWS_NITRO_ROOT_PEM.encode())
    if fingerprint(root) != AWS_NITRO_ROOT_SHA256:
        raise AttestationError("root", "the built-in AWS root does not match its documented SHA-256 fingerprint")
    return root


# --- decoding ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Envelope:
    protected: bytes
    payload: bytes
    signature: bytes


def _loads_exact(data: bytes, what: str, check: str) -> Any:
    """CBOR-decode ``data`` as exactly one item (trailing bytes are refused)."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, EOFError, RecursionError) as exc:
        raise AttestationError(check, f"{what} is not well-formed CBOR ({exc})") from None
    if stream.tell() != len(data):
        raise AttestationError(check, f"{what} has {len(data) - stream.tell()} trailing bytes after its CBOR item")
    return item


def _envelope(data: bytes) -> _Envelope:
    item = _loads_exact(data, "the document", "structure")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise AttestationError("structure", f"CBOR tag {item.tag} is not COSE_Sign1 (18)")
        item = item.value
    if not isinstance(item, (list, tuple)) or len(item) != 4:  # cbor2 gives a tuple inside a tag
        raise AttestationError(
            "structure", "a COSE_Sign1 is an array of 4 items [protected, unprotected, payload, signature]"
        )
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes) or not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise AttestationError("structure", "protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):  # a frozendict inside a tag
        raise AttestationError("structure", "the unprotected header must be a map")
    return _Envelope(protected, payload, signature)


def _check_algorithm(envelope: _Envelope) -> None:
    header = _loads_exact(envelope.protected, "the protected header", "algorithm") if envelope.protected else {}
    if not isinstance(header, dict) or header.get(1) != ES384:
        raise AttestationError("algorithm", f"the protected header must name alg ES384 (-35), got {_shown(header)}")
    if len(envelope.signature) != 96:
        raise AttestationError("algorithm", f"an ES384 signature is 96 bytes (r||s), got {len(envelope.signature)}")


def _shown(value: Any) -> str:
    """A short repr of an attacker's value for an error message; never raises (Python refuses to print an
    integer of more than 4,300 digits, which a CBOR bignum can carry)."""
    try:
        return reprlib.repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to show"


def _bstr(payload: dict[str, Any], key: str, low: int, high: int) -> bytes:
    value = payload[key]
    if not isinstance(value, bytes) or not low <= len(value) <= high:
        raise AttestationError("payload", f"{key} must be a byte string of {low}..{high} bytes")
    return value


def _optional(payload: dict[str, Any], key: str, low: int) -> bytes | None:
    value = payload.get(key)
    if value is None:  # absent or CBOR null (real NSM documents carry nulls)
        return None
    return _bstr(payload, key, low, MAX_OPTIONAL)


def _certificate(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise AttestationError("payload", f"{what} is not a DER certificate ({exc})") from None


def _decode_payload(raw: bytes) -> AttestationDocument:
    payload = _loads_exact(raw, "the payload", "payload")
    if not isinstance(payload, dict):
        raise AttestationError("payload", "the payload must be a CBOR map")
    missing = [k for k in MANDATORY if k not in payload]
    if missing:
        raise AttestationError("payload", f"missing mandatory field(s): {', '.join(missing)}")
    module_id = payload["module_id"]
    if not isinstance(module_id, str) or not module_id:
        raise AttestationError("payload", "module_id must be non-empty text")
    if payload["digest"] != "SHA384":
        raise AttestationError("payload", f'digest must be "SHA384", got {_shown(payload["digest"])}')
    timestamp = payload["timestamp"]
    if type(timestamp) is not int or not 0 < timestamp <= MAX_TIMESTAMP_MS:
        raise AttestationError(
            "payload", "timestamp must be a positive uint64 of milliseconds since the epoch, before the year 10000"
        )
    pcrs = payload["pcrs"]
    if not isinstance(pcrs, dict) or not 1 <= len(pcrs) <= MAX_PCRS:
        raise AttestationError("payload", f"pcrs must be a map of 1..{MAX_PCRS} entries")
    for index, value in pcrs.items():
        if type(index) is not int or not 0 <= index < MAX_PCRS:
            raise AttestationError("payload", f"PCR index {_shown(index)} is not an integer in 0..{MAX_PCRS - 1}")
        if not isinstance(value, bytes) or len(value) not in PCR_LENGTHS:
            raise AttestationError("payload", f"PCR{index} must be a byte string of 32, 48 or 64 bytes")
    bundle = payload["cabundle"]
    if not isinstance(bundle, list) or not bundle:
        raise AttestationError("payload", "cabundle must be a non-empty array of certificates")
    cabundle = []
    for position, entry in enumerate(bundle):
        if not isinstance(entry, bytes) or not 1 <= len(entry) <= MAX_CERT:
            raise AttestationError("payload", f"cabundle[{position}] must be a byte string of 1..{MAX_CERT} bytes")
        cabundle.append(_certificate(entry, f"cabundle[{position}]"))
    return AttestationDocument(
        module_id=module_id,
        digest="SHA384",
        timestamp_ms=timestamp,
        pcrs=dict(sorted(pcrs.items())),
        certificate=_certificate(_bstr(payload, "certificate", 1, MAX_CERT), "certificate"),
        cabundle=tuple(cabundle),
        public_key=_optional(payload, "public_key", 1),
        user_data=_optional(payload, "user_data", 0),
        nonce=_optional(payload, "nonce", 0),
    )


# --- the certificate chain ----------------------------------------------------------------------------------


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _extension(cert: x509.Certificate, kind: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # a malformed extension
        raise AttestationError("key_usage", f"{_name(cert)} has a malformed extension ({exc})") from None


def _chain(doc: AttestationDocument, root: x509.Certificate) -> list[x509.Certificate]:
    """``[leaf, cabundle[-1], ..., cabundle[1], root]``: cabundle[0] must be the trusted root itself."""
    if doc.cabundle[0].public_bytes(serialization.Encoding.DER) != root.public_bytes(serialization.Encoding.DER):
        raise AttestationError(
            "root",
            f"cabundle[0] ({_name(doc.cabundle[0])}, sha256 {fingerprint(doc.cabundle[0])}) "
            f"is not the trusted root (sha256 {fingerprint(root)})",
        )
    return [doc.certificate, *reversed(doc.cabundle[1:]), root]


def _check_links(chain: list[x509.Certificate]) -> None:
    for child, issuer in pairwise(chain):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise AttestationError(
                "chain", f"{_name(child)} is not issued by {_name(issuer)} ({exc or 'signature does not verify'})"
            ) from None
    root = chain[-1]
    try:
        root.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        raise AttestationError("chain", f"the trusted root {_name(root)} is not self-signed") from None


def _check_validity(chain: list[x509.Certificate], at: _dt.datetime) -> None:
    for cert in chain:
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise AttestationError(
                "validity",
                f"{_name(cert)} is valid from {cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()}, not at {at.isoformat()}",
            )


def _check_usages(chain: list[x509.Certificate]) -> None:
    leaf = chain[0]
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise AttestationError("key_usage", "the signing certificate's key must be EC P-384 (ES384)")
    leaf_constraints = _extension(leaf, x509.BasicConstraints)
    if leaf_constraints is not None and leaf_constraints.ca:
        raise AttestationError("key_usage", f"the signing certificate {_name(leaf)} is a CA")
    leaf_usage = _extension(leaf, x509.KeyUsage)
    if leaf_usage is None or not leaf_usage.digital_signature:
        raise AttestationError("key_usage", f"the signing certificate {_name(leaf)} lacks keyUsage digitalSignature")
    for depth, issuer in enumerate(chain[1:]):  # depth = CA certificates between this issuer and the leaf
        constraints = _extension(issuer, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            raise AttestationError(
                "key_usage", f"{_name(issuer)} issues certificates but is not a CA (basicConstraints)"
            )
        if constraints.path_length is not None and depth > constraints.path_length:
            raise AttestationError(
                "key_usage", f"{_name(issuer)} allows {constraints.path_length} CA(s) below it, the chain has {depth}"
            )
        usage = _extension(issuer, x509.KeyUsage)
        if usage is None or not usage.key_cert_sign:
            raise AttestationError("key_usage", f"{_name(issuer)} lacks keyUsage keyCertSign")


def _check_with_library(chain: list[x509.Certificate], at: _dt.datetime) -> None:
    """Re-verify the path with ``cryptography``'s RFC 5280 verifier (the AWS leaf has no AKI: permit_all for it)."""
    verifier = (
        PolicyBuilder()
        .store(Store([chain[-1]]))
        .time(at.replace(microsecond=0))
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        verifier.verify(chain[0], chain[1:-1])
    except VerificationError as exc:
        raise AttestationError("chain", f"the path does not validate under RFC 5280: {exc}") from None


def _check_signature(envelope: _Envelope, leaf: x509.Certificate) -> None:
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise AttestationError("signature", "the signing certificate's key is not EC P-384")
    signed = cbor2.dumps(["Signature1", envelope.protected, b"", envelope.payload])
    r, s = int.from_bytes(envelope.signature[:48], "big"), int.from_bytes(envelope.signature[48:], "big")
    try:
        key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise AttestationError(
            "signature", "the COSE signature does not verify with the signing certificate's key"
        ) from None


# --- entry points ------------------------------------------------------------------------------------------


_FAILED = object()  # a step's result when its check failed


def document_time(data: bytes) -> _dt.datetime:
    """The document's own timestamp (to verify an expired sample as of when it was made)."""
    return _decode_payload(_envelope(data).payload).timestamp


def check_document(data: bytes, *, root: x509.Certificate | None = None, at: _dt.datetime | None = None) -> Report:
    """Run every check that can run and record each verdict (for reports); see :func:`verify_document`."""
    root = root or aws_root()
    at = at or _dt.datetime.now(_dt.UTC)
    report = Report(at=at, root_sha256=fingerprint(root))

    def run(name: str, step: Any, *args: Any) -> Any:
        try:
            result = step(*args)
        except AttestationError as exc:
            report.checks.append(CheckResult(name, False, exc.reason))
            return _FAILED
        report.checks.append(CheckResult(name, True, "ok"))
        return result

    envelope = run("structure", _envelope, data)
    if envelope is _FAILED:
        return report
    run("algorithm", _check_algorithm, envelope)
    doc = run("payload", _decode_payload, envelope.payload)
    if doc is _FAILED:
        return report
    report.document = doc
    chain = run("root", _chain, doc, root)
    if chain is not _FAILED:
        if run("chain", _check_links, chain) is not _FAILED:
            run("validity", _check_validity, chain, at)
            if run("key_usage", _check_usages, chain) is not _FAILED and all(c.passed for c in report.checks):
                # Our own checks passed: cryptography's path validation must agree, or "chain" fails with its reason.
                try:
                    _check_with_library(chain, at)
                except AttestationError as exc:
                    position = next(i for i, c in enumerate(report.checks) if c.name == "chain")
                    report.checks[position] = CheckResult("chain", False, exc.reason)
    run("signature", _check_signature, envelope, doc.certificate)
    return report


def verify_document(
    data: bytes, *, root: x509.Certificate | None = None, at: _dt.datetime | None = None
) -> AttestationDocument:
    """Authenticate a Nitro attestation document and return its payload; raise on the first failed check.

    ``root`` defaults to the pinned AWS root and ``at`` to now; pass the
    document's own time (:func:`document_time`) only for recorded samples.
    """
    report = check_document(data, root=root, at=at)
    failure = report.first_failure()
    if failure is not None:
        raise AttestationError(failure.name, failure.detail)
    if not report.valid or report.document is None:  # every check ran and passed, or we would be above
        raise AttestationError("structure", "the document could not be checked")
    return report.document

"""Domain errors shared by every layer.

Each error carries a stable ``code`` (the ``error`` field of our JSON error
bodies) so that Lambda handlers and the CLI map them to HTTP statuses and exit
codes in one place instead of matching on message text.
"""

from __future__ import annotations


class IpocError(Exception):
    """Base class of every error this project raises on purpose."""

    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class ValidationError(IpocError):
    """An input does not match its schema or a semantic rule."""

    code = "ValidationError"

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path


class PolicyError(ValidationError):
    """A policy is well-formed JSON but cannot be used (bad ids, certificates, hashes...)."""

    code = "InvalidPolicy"


class RightsError(ValidationError):
    """A rights value or rights name cannot be parsed."""

    code = "InvalidRights"


class CertificateError(ValidationError):
    """A certificate or key cannot be parsed or does not fit the use asked of it."""

    code = "InvalidCertificate"


# ---------------------------------------------------------------------------
# Talking to a Veracruz runtime.


class VeracruzError(IpocError):
    """Base class for failures talking to a Veracruz runtime."""

    code = "VeracruzError"


class RuntimeUnreachable(VeracruzError):
    """No HTTP answer from the runtime's ``veracruz_server_url``."""

    code = "RuntimeUnreachable"


class AttestationError(VeracruzError):
    """The runtime's certificate does not chain to the policy's ``proxy_service_cert``."""

    code = "AttestationFailed"


class RuntimeHashMismatch(AttestationError):
    """The attested runtime measurement is not the one the policy names."""

    code = "RuntimeHashMismatch"


class PolicyHashMismatch(AttestationError):
    """The runtime loaded a policy whose bytes differ from the client's copy."""

    code = "PolicyHashMismatch"


class IdentityError(VeracruzError):
    """Our certificate or key cannot be used with this runtime (not in the policy, key mismatch, refused)."""

    code = "IdentityRefused"


class RequestRefused(VeracruzError):
    """The runtime refused or failed one request; ``reason`` is the runtime's error code."""

    code = "RequestRefused"

    def __init__(self, message: str, reason: str = "RequestRefused") -> None:
        super().__init__(message)
        self.reason = reason


class AccessDenied(RequestRefused):
    code = "AccessDenied"


class FileHashMismatch(RequestRefused):
    code = "FileHashMismatch"


class FileNotFound(RequestRefused):
    code = "FileNotFound"


class ExecutionFailed(RequestRefused):
    code = "ExecutionFailed"


class NoResult(VeracruzError):
    """A read returned nothing: the file is empty (veracruz-client's "no result")."""

    code = "NoResult"


# Runtime error codes (the prefix of an HTTP 500 body) → client exception.
RUNTIME_ERRORS: dict[str, type[RequestRefused]] = {
    "AccessDenied": AccessDenied,
    "FileHashMismatch": FileHashMismatch,
    "FileNotFound": FileNotFound,
    "ExecutionFailed": ExecutionFailed,
}


# ---------------------------------------------------------------------------
# Control-plane outcomes, mapped to HTTP statuses once (lambdas/shared/http.py).


class Forbidden(IpocError):
    """The caller is authenticated but may not use this route."""

    code = "Forbidden"


class NotFound(IpocError):
    code = "NotFound"


class Conflict(IpocError):
    """The request conflicts with current state (exists already, still in use, ...)."""

    code = "Conflict"


class PayloadTooLarge(IpocError):
    code = "PayloadTooLarge"


class HashMismatch(IpocError):
    """Uploaded bytes do not hash to the policy's ``pi_hash``."""

    code = "HashMismatch"


class NoCapacity(IpocError):
    """No free runtime slot."""

    code = "NoCapacity"


class DependencyFailed(IpocError):
    """A service we depend on (S3, Kubernetes, a runtime) failed; the message names it and the step."""

    code = "DependencyFailed"

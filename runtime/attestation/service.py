"""The proxy attestation service: the HTTP routes of Veracruz v1.3's proxy.

``POST /Start`` hands out a fresh 32-byte challenge and a device id (single
use, expiring after :data:`CHALLENGE_TTL`). ``POST /Nitro/AttestationToken``
takes a Nitro attestation document (real, or from the simulated NSM), checks
it with :mod:`ipoc.nitro` and :mod:`runtime.attestation.nitro` and returns the
certificate chain. ``POST /PSA/AttestationToken`` checks the simulated linux
platform's token (see ``runtime.evidence``); it answers 501 when the service
runs for AWS, as Veracruz's nitro-only build does. Bodies are base64 of a
length-prefixed protobuf both ways; replies are HTTP/1.1 (veracruz-server
refuses an HTTP/1.0 status line). ``GET /ca-cert`` returns the CA certificate (PEM).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError, Message

from ipoc.nitro import AttestationError
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.framing import FrameDecoder, frame
from runtime.attestation.ca import CertificateAuthority, CsrError
from runtime.attestation.nitro import NitroTrust, authenticate, enclave_evidence
from runtime.evidence import EvidenceError, SimulatedNsm, ensure_platform_key, verify_token
from runtime.http_body import BODY_TIMEOUT, declared_length, read_body

log = logging.getLogger(__name__)

DEFAULT_PORT = 3010
MAX_BODY = 1 << 20
MAX_PENDING_CHALLENGES = 1024
CHALLENGE_TTL = 600.0  # seconds from /Start to the evidence: room for veracruz-server to boot the enclave


ERROR_CODES = {
    400: "InvalidRequest",
    401: "AttestationRefused",
    404: "NotFound",
    413: "PayloadTooLarge",
    501: "NotImplemented",
}


class AttestationRefused(Exception):
    """A request the proxy refuses; the reply is ``{"error": <code for status>, "message": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"error": ERROR_CODES.get(self.status, "Error"), "message": str(self)}).encode()


_M = TypeVar("_M", bound=Message)


def encode_message(message: pb.ProxyAttestationServerRequest | pb.ProxyAttestationServerResponse) -> bytes:
    """Body encoding for both directions: base64 of an 8-byte-length-prefixed protobuf."""
    return base64.b64encode(frame(message.SerializeToString()))


def decode_message(body: bytes, cls: type[_M]) -> _M:
    try:
        raw = base64.b64decode(body.strip(), validate=True)
        frames = FrameDecoder(MAX_BODY).feed(raw)
        if len(frames) != 1:
            raise ValueError("expected exactly one length-prefixed message")
        message = cls()
        message.ParseFromString(frames[0])
        return message
    except (binascii.Error, ValueError, DecodeError) as exc:
        raise AttestationRefused(400, f"malformed request body: {exc}") from None


@dataclass(frozen=True)
class _Challenge:
    value: bytes
    protocol: str
    expires: float  # time.monotonic()


@dataclass
class ProxyAttestation:
    """Challenges outstanding, the CA that signs enclave certificates, and what evidence is trusted.

    ``platform_key`` None disables the simulated linux platform (PSA route);
    ``nitro`` None disables the Nitro route.
    """

    ca: CertificateAuthority
    platform_key: ec.EllipticCurvePublicKey | None
    nitro: NitroTrust | None = None
    cert_validity: _dt.timedelta = _dt.timedelta(days=1)  # as Veracruz's proxy; the local stack's is longer (warm pool)
    challenge_ttl: float = CHALLENGE_TTL
    _challenges: dict[int, _Challenge] = field(default_factory=dict)
    _next_device: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, request: pb.ProxyAttestationServerRequest) -> pb.ProxyAttestationServerResponse:
        if request.WhichOneof("message_oneof") != "start_msg":
            raise AttestationRefused(400, "expected a start_msg")
        protocol = request.start_msg.protocol
        if protocol not in ("psa", "nitro"):
            raise AttestationRefused(400, f"unknown attestation protocol {protocol!r}")
        if (protocol == "nitro" and self.nitro is None) or (protocol == "psa" and self.platform_key is None):
            raise AttestationRefused(501, f"this proxy does not serve the {protocol!r} protocol")
        challenge = os.urandom(32)
        with self._lock:
            device_id = self._next_device
            self._next_device += 1
            self._challenges[device_id] = _Challenge(challenge, protocol, time.monotonic() + self.challenge_ttl)
            while len(self._challenges) > MAX_PENDING_CHALLENGES:  # forget the oldest abandoned starts
                self._challenges.pop(next(iter(self._challenges)))
        log.info("attestation started: device %d, protocol %s", device_id, protocol)
        return pb.ProxyAttestationServerResponse(
            psa_attestation_init=pb.PsaAttestationInit(challenge=challenge, device_id=device_id)
        )

    def _take_challenge(self, device_id: int, protocol: str) -> bytes:
        """Remove and return the device's challenge: each works once, only before it expires, for its protocol."""
        with self._lock:
            challenge = self._challenges.pop(device_id, None)
        if challenge is None:
            raise AttestationRefused(400, f"no attestation started for device {device_id} (or already used)")
        if time.monotonic() > challenge.expires:
            raise AttestationRefused(
                401, f"the challenge for device {device_id} expired ({self.challenge_ttl:.0f} s): start again"
            )
        if challenge.protocol != protocol:
            raise AttestationRefused(
                400, f"device {device_id} started the {challenge.protocol!r} protocol, not {protocol!r}"
            )
        return challenge.value

    def _cert_chain(self, enclave_cert: bytes) -> pb.ProxyAttestationServerResponse:
        """Veracruz's reply: the proxy CA (root_cert) and the enclave certificate, both DER."""
        return pb.ProxyAttestationServerResponse(
            cert_chain=pb.CertChain(root_cert=self.ca.certificate_der, enclave_cert=enclave_cert)
        )

    def psa_token(self, request: pb.ProxyAttestationServerRequest) -> pb.ProxyAttestationServerResponse:
        if self.platform_key is None:
            raise AttestationRefused(501, "the simulated linux platform is disabled on this proxy (Nitro only)")
        if request.WhichOneof("message_oneof") != "native_psa_attestation_token":
            raise AttestationRefused(400, "expected a native_psa_attestation_token")
        token = request.native_psa_attestation_token
        challenge = self._take_challenge(token.device_id, "psa")
        try:
            evidence = verify_token(self.platform_key, token.token)
        except EvidenceError as exc:
            raise AttestationRefused(401, f"attestation token refused: {exc}") from None
        if evidence.challenge != challenge:
            raise AttestationRefused(401, "attestation token answers another challenge")
        if evidence.csr_sha256 != hashlib.sha256(token.csr).digest():
            raise AttestationRefused(401, "attestation token does not bind this CSR")
        try:
            enclave_cert = self.ca.issue_enclave_certificate(token.csr, evidence.measurement, self.cert_validity)
        except CsrError as exc:
            raise AttestationRefused(400, str(exc)) from None
        log.info("enclave certificate issued: device %d, measurement %s", token.device_id, evidence.measurement.hex())
        return self._cert_chain(enclave_cert)

    def nitro_token(self, request: pb.ProxyAttestationServerRequest) -> pb.ProxyAttestationServerResponse:
        """Certify an enclave from its Nitro attestation document.

        Veracruz's order: authenticate the document, then take the challenge."""
        if self.nitro is None:
            raise AttestationRefused(501, "Nitro attestation is not enabled on this proxy")
        if request.WhichOneof("message_oneof") != "nitro_attestation_doc":
            raise AttestationRefused(400, "expected a nitro_attestation_doc")
        message = request.nitro_attestation_doc
        try:
            document = authenticate(message.doc, self.nitro)
        except AttestationError as exc:  # a forged or stale document does not burn the device's challenge
            raise AttestationRefused(401, f"attestation document refused: {exc}") from None
        challenge = self._take_challenge(message.device_id, "nitro")
        try:
            evidence = enclave_evidence(document, challenge, self.nitro)
            enclave_cert = self.ca.issue_enclave_certificate(evidence.csr, evidence.measurement, self.cert_validity)
        except AttestationError as exc:
            raise AttestationRefused(401, f"attestation document refused: {exc}") from None
        except CsrError as exc:
            raise AttestationRefused(401, f"attestation document refused: user_data: {exc}") from None
        log.info(
            "enclave certificate issued: device %d, module %s, PCR0 %s",
            message.device_id,
            document.module_id,
            document.pcr0.hex() if document.pcr0 else "-",
        )
        return self._cert_chain(enclave_cert)


class _Handler(BaseHTTPRequestHandler):
    server: AttestationHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # replies go out at once: no delayed-ACK stalls per post

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = declared_length(self.headers)
        if length is None or length > MAX_BODY:
            self.close_connection = True  # the body is never read
            refusal = (
                AttestationRefused(400, "Content-Length must be a non-negative integer")
                if length is None
                else AttestationRefused(413, f"request body over {MAX_BODY} bytes")
            )
            self._reply(refusal.status, refusal.body(), "application/json")
            return
        body = read_body(self.connection, self.rfile, length, BODY_TIMEOUT)
        if body is None:
            self.close_connection = True
            return  # the client went away (or stalled) mid-body
        state = self.server.state
        try:
            if self.path == "/Start":
                request = decode_message(body, pb.ProxyAttestationServerRequest)
                self._reply(200, encode_message(state.start(request)))
            elif self.path == "/PSA/AttestationToken":
                request = decode_message(body, pb.ProxyAttestationServerRequest)
                self._reply(200, encode_message(state.psa_token(request)))
            elif self.path == "/Nitro/AttestationToken":
                request = decode_message(body, pb.ProxyAttestationServerRequest)
                self._reply(200, encode_message(state.nitro_token(request)))
            else:
                raise AttestationRefused(404, f"no route POST {self.path}")
        except AttestationRefused as exc:
            log.warning("refused %s: %s", self.path, exc)
            self._reply(exc.status, exc.body(), "application/json")

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ca-cert":
            self._reply(200, self.server.state.ca.certificate_pem.encode(), "application/x-pem-file")
        elif self.path == "/health":
            self._reply(200, b"ok", "text/plain")
        else:
            self._reply(404, AttestationRefused(404, f"no route GET {self.path}").body(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


class AttestationHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 resets bursts of clients

    def __init__(self, address: tuple[str, int], state: ProxyAttestation) -> None:
        self.state = state
        super().__init__(address, _Handler)


MODES = ("local", "aws")


def make_server(
    host: str,
    port: int,
    state_dir: Path,
    platform_dir: Path,
    cert_validity: _dt.timedelta | None = None,
    *,
    mode: str = "local",
    allowed_pcr0: frozenset[str] = frozenset(),
    ca: CertificateAuthority | None = None,
    nitro_root: x509.Certificate | None = None,
) -> AttestationHTTPServer:
    """The proxy for this machine (``local``) or for an AWS deployment (``aws``).

    ``local`` trusts this installation's simulated platform key (linux) and
    simulated NSM root (nitro-sim), and allows the simulated PCR0 of this code
    besides ``allowed_pcr0``. ``aws`` trusts only the pinned AWS Nitro root
    (or ``nitro_root``), serves no simulated platform, and needs a non-empty allow-list.
    """
    from runtime.measurement import nitro_sim_pcr0

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if ca is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.load_or_create(state_dir)
    if mode == "aws":
        if not allowed_pcr0:
            raise ValueError(
                "the PCR0 allow-list is empty: no enclave could be certified "
                "(give --allow-pcr0 or $IPOC_PCR0_ALLOWLIST)"
            )
        trust = (
            NitroTrust.aws(allowed_pcr0)
            if nitro_root is None
            else NitroTrust(nitro_root, allowed_pcr0, description="given root")
        )
        state = ProxyAttestation(ca=ca, platform_key=None, nitro=trust)
    else:
        platform_dir.mkdir(parents=True, exist_ok=True)
        root = nitro_root or SimulatedNsm.load_or_create(platform_dir).root
        trust = NitroTrust(
            root,
            allowed_pcr0 | {nitro_sim_pcr0()},
            description="given root" if nitro_root else "simulated NSM root of this installation",
        )
        state = ProxyAttestation(ca=ca, platform_key=ensure_platform_key(platform_dir).public_key(), nitro=trust)
    if cert_validity is not None:
        state.cert_validity = cert_validity
    log.info("proxy attestation service (%s): Nitro documents must chain to %s", mode, trust.summary())
    return AttestationHTTPServer((host, port), state)

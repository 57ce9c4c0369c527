"""The proxy attestation service: HTTP routes of the Veracruz proxy for the local platform.

``POST /Start`` hands out a fresh 32-byte challenge and a device id;
``POST /PSA/AttestationToken`` checks the simulated platform's token (see
``runtime.evidence``) against that challenge and the enclave's CSR, then
returns the certificate chain. Bodies are base64 of a length-prefixed
protobuf, as in Veracruz. ``GET /ca-cert`` returns the CA certificate (PEM).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError

from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.framing import FrameDecoder, frame
from runtime.attestation.ca import CertificateAuthority, CsrError
from runtime.evidence import EvidenceError, ensure_platform_key, verify_token

log = logging.getLogger(__name__)

DEFAULT_PORT = 3010
MAX_BODY = 1 << 20
MAX_PENDING_CHALLENGES = 1024


class AttestationRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def encode_message(message: pb.ProxyAttestationServerRequest | pb.ProxyAttestationServerResponse) -> bytes:
    """Body encoding for both directions: base64 of an 8-byte-length-prefixed protobuf."""
    return base64.b64encode(frame(message.SerializeToString()))


def decode_message(body: bytes, cls: type) -> object:
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


@dataclass
class ProxyAttestation:
    """Challenges outstanding and the CA that signs enclave certificates."""

    ca: CertificateAuthority
    platform_key: ec.EllipticCurvePublicKey
    cert_validity: _dt.timedelta = _dt.timedelta(days=1)
    _challenges: dict[int, bytes] = field(default_factory=dict)
    _next_device: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, request: pb.ProxyAttestationServerRequest) -> pb.ProxyAttestationServerResponse:
        if request.WhichOneof("message_oneof") != "start_msg":
            raise AttestationRefused(400, "expected a start_msg")
        protocol = request.start_msg.protocol
        if protocol not in ("psa", "nitro"):
            raise AttestationRefused(400, f"unknown attestation protocol {protocol!r}")
        challenge = os.urandom(32)
        with self._lock:
            device_id = self._next_device
            self._next_device += 1
            self._challenges[device_id] = challenge
            while len(self._challenges) > MAX_PENDING_CHALLENGES:  # forget the oldest abandoned starts
                self._challenges.pop(next(iter(self._challenges)))
        log.info("attestation started: device %d, protocol %s", device_id, protocol)
        return pb.ProxyAttestationServerResponse(
            psa_attestation_init=pb.PsaAttestationInit(challenge=challenge, device_id=device_id)
        )

    def psa_token(self, request: pb.ProxyAttestationServerRequest) -> pb.ProxyAttestationServerResponse:
        if request.WhichOneof("message_oneof") != "native_psa_attestation_token":
            raise AttestationRefused(400, "expected a native_psa_attestation_token")
        token = request.native_psa_attestation_token
        with self._lock:
            challenge = self._challenges.pop(token.device_id, None)
        if challenge is None:
            raise AttestationRefused(400, f"no attestation started for device {token.device_id} (or already used)")
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
        return pb.ProxyAttestationServerResponse(
            cert_chain=pb.CertChain(root_cert=self.ca.certificate_der, enclave_cert=enclave_cert)
        )


class _Handler(BaseHTTPRequestHandler):
    server: "AttestationHTTPServer"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # replies go out at once: no delayed-ACK stalls per post

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, b"request body too large", "text/plain")
            return
        body = self.rfile.read(length)
        state = self.server.state
        try:
            if self.path == "/Start":
                request = decode_message(body, pb.ProxyAttestationServerRequest)
                self._reply(200, encode_message(state.start(request)))  # type: ignore[arg-type]
            elif self.path == "/PSA/AttestationToken":
                request = decode_message(body, pb.ProxyAttestationServerRequest)
                self._reply(200, encode_message(state.psa_token(request)))  # type: ignore[arg-type]
            elif self.path == "/Nitro/AttestationToken":
                raise AttestationRefused(
                    501, "Nitro attestation is not available on the local proxy; Nitro instances use Veracruz's proxy"
                )
            else:
                raise AttestationRefused(404, f"no route POST {self.path}")
        except AttestationRefused as exc:
            log.warning("refused %s: %s", self.path, exc)
            self._reply(exc.status, str(exc).encode(), "text/plain")

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ca-cert":
            self._reply(200, self.server.state.ca.certificate_pem.encode(), "application/x-pem-file")
        elif self.path == "/health":
            self._reply(200, b"ok", "text/plain")
        else:
            self._reply(404, f"no route GET {self.path}".encode(), "text/plain")

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


def make_server(
    host: str, port: int, state_dir: Path, platform_dir: Path, cert_validity: _dt.timedelta | None = None
) -> AttestationHTTPServer:
    state_dir.mkdir(parents=True, exist_ok=True)
    state = ProxyAttestation(
        ca=CertificateAuthority.load_or_create(state_dir), platform_key=ensure_platform_key(platform_dir).public_key()
    )
    if cert_validity is not None:
        state.cert_validity = cert_validity
    return AttestationHTTPServer((host, port), state)

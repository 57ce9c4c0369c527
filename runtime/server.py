"""The Veracruz server for the local platform: attest, then serve ``POST /runtime_manager``.

Start-up follows Veracruz (wire reference §5): read the policy as exact bytes,
start an attestation with the proxy, make the enclave key and CSR, present
evidence, receive the certificate chain, load policy and chain into the
runtime manager, and only then bind ``veracruz_server_url``, so clients can
poll the port to know the instance is ready. Attestation needs no policy (the
certificate binds the key and the measurement), so a warm runtime may attest
first and receive its policy later (``attested=``), as Veracruz's Nitro
enclave receives it in ``Initialize`` after attesting. Each connection has its own
thread and requests run concurrently as :mod:`runtime.manager` describes
(veracruz-server holds one lock around the enclave; here one program's run does
not stall other clients). A body is refused on its Content-Length before a byte
of it is read. After a shutdown request the server stops and the process exits 0.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import http.client
import io
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pybase64
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ipoc.certs import certificate_der, split_pem_certificates
from ipoc.policy import FullPolicy
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.carrier import MAX_BODY, split_url
from ipoc.wire.framing import FrameDecoder, frame
from ipoc.wire.tls import server_context
from runtime import SIMULATION_NOTICE
from runtime.evidence import PLATFORMS, evidence_request
from runtime.http_body import BODY_TIMEOUT, declared_length, read_body
from runtime.manager import RuntimeManager
from runtime.refusal import Refused

log = logging.getLogger(__name__)

CSR_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Texas"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Austin"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Veracruz"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Compute Enclave"),
        x509.NameAttribute(NameOID.COMMON_NAME, "VeracruzCompute"),
    ]
)
DEFAULT_TIME_LIMIT = 600.0
# glibc's mallopt parameters (malloc.h) and what the runtime sets them to: see keep_freed_memory
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
HEAP_UP_TO = 8 << 20  # blocks up to this come from the heap (reused), larger ones are mapped apart
KEEP_FREE_UP_TO = 32 << 20  # free memory at the heap's top kept for the next message


def keep_freed_memory() -> bool:
    """Have glibc keep the memory of a freed message for the next one instead of handing it back.

    Each post's body, its records and each 1 MiB message are allocated and freed in turn on the
    connection's thread. glibc's defaults map such blocks apart (over 128 KiB) or trim the thread's
    heap once it is freed, so the next message faults the same memory in again: streaming 256 MiB
    took 186,000 minor page faults, about 3 bytes faulted in per byte received and a third of
    the runtime's CPU. With these settings it takes 1,500. Returns whether glibc took them (False
    with another C library, where nothing changes).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_UP_TO)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREE_UP_TO))


class StartupError(Exception):
    """The runtime could not attest or start; the message says what to fix."""


@dataclass(frozen=True)
class Attested:
    key_pem: str
    chain_pem: str
    measurement: str
    proxy_url: str
    root_der: bytes  # the proxy CA that certified the enclave key: a policy must name it to be served

    def valid_until(self) -> float:
        """When the enclave certificate expires (seconds since the epoch): clients refuse it after that."""
        leaf = x509.load_pem_x509_certificate(split_pem_certificates(self.chain_pem)[0].encode())
        return leaf.not_valid_after_utc.timestamp()


def _proxy_post(
    proxy_url: str, route: str, request: pb.ProxyAttestationServerRequest
) -> pb.ProxyAttestationServerResponse:
    host, port = split_url(proxy_url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(
            "POST",
            route,
            body=base64.b64encode(frame(request.SerializeToString())),
            headers={"Content-Type": "application/octet-stream"},
        )
        reply = conn.getresponse()
        body = reply.read()
    except OSError as exc:
        raise StartupError(
            f"cannot reach the proxy attestation service at {proxy_url}: {exc}; is it running?"
        ) from None
    finally:
        conn.close()
    if reply.status != 200:
        raise StartupError(
            f"the proxy attestation service refused {route}: HTTP {reply.status}: {body.decode(errors='replace')}"
        )
    try:
        frames = FrameDecoder(MAX_BODY).feed(base64.b64decode(body, validate=True))
        response = pb.ProxyAttestationServerResponse()
        response.ParseFromString(frames[0])
    except (binascii.Error, ValueError, IndexError) as exc:
        raise StartupError(f"malformed reply from the proxy to {route}: {exc}") from None
    return response


def attest(proxy_url: str, proxy_cert: str, platform_dir: Path, measurement: str, platform: str = "linux") -> Attested:
    """Run the platform's attestation (linux: PSA token; nitro-sim: NSM document) with the proxy at ``proxy_url``.

    Nothing here depends on a policy: the enclave certificate binds the key and the
    measurement only, so a warm runtime can attest before it knows what it will serve.
    ``proxy_cert`` is the CA bundle the proxy's root must be in (a policy's ``proxy_service_cert``).
    """
    protocol, route = PLATFORMS[platform]
    start = _proxy_post(
        proxy_url,
        "/Start",
        pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol=protocol, firmware_version="0.0")),
    )
    if start.WhichOneof("message_oneof") != "psa_attestation_init":
        raise StartupError("the proxy did not answer /Start with a challenge")
    challenge, device_id = start.psa_attestation_init.challenge, start.psa_attestation_init.device_id

    # The enclave key is made here, at attestation time, and never leaves this process.
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(CSR_SUBJECT).sign(key, hashes.SHA256())
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    reply = _proxy_post(
        proxy_url, route, evidence_request(platform, platform_dir, challenge, device_id, measurement, csr_der)
    )
    if reply.WhichOneof("message_oneof") != "cert_chain":
        raise StartupError("the proxy did not answer with a certificate chain")
    root_der = reply.cert_chain.root_cert
    if root_der not in _bundle_ders(proxy_cert):
        raise StartupError(
            f"the proxy at {proxy_url} signs with a CA that is not in the policy's proxy_service_cert; "
            "clients would refuse this runtime (was the policy made for another proxy or state directory?)"
        )
    chain = "".join(
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
        for der in (reply.cert_chain.enclave_cert, root_der)
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Attested(
        key_pem=key_pem.decode(), chain_pem=chain, measurement=measurement, proxy_url=proxy_url, root_der=root_der
    )


def _bundle_ders(pem: str) -> set[bytes]:
    return {certificate_der(c) for c in split_pem_certificates(pem)}


def check_attested_for(policy: FullPolicy, attested: Attested) -> None:
    """A runtime attested ahead of its policy serves it only if clients would accept that attestation:
    the policy names the same proxy, and its ``proxy_service_cert`` holds the CA that certified the key."""
    if policy.proxy_url != attested.proxy_url:
        raise StartupError(
            f"this runtime attested with the proxy at {attested.proxy_url}, but the policy names {policy.proxy_url}; "
            "start a runtime for that proxy instead"
        )
    if attested.root_der not in _bundle_ders(policy.proxy_service_cert):
        raise StartupError(
            "the policy's proxy_service_cert does not hold the CA that certified this runtime; clients would refuse it"
        )


# The request line of every post a client sends; its headers are read without the email parser.
_RUNTIME_REQUEST = b"POST /runtime_manager HTTP/1.1\r\n"
_MAX_HEADER_LINE, _MAX_HEADERS = 65536, 100  # http.client's limits, answered alike (431)
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class _Handler(BaseHTTPRequestHandler):
    server: RuntimeHTTPServer
    raw_requestline: bytes  # set by handle_one_request before parse_request
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # replies go out at once: no delayed-ACK stalls per post

    def parse_request(self) -> bool:
        """The standard parsing, made lean for ``POST /runtime_manager HTTP/1.1`` with plain headers.

        ``http.client.parse_headers`` (the email parser) cost more per post than base64-decoding its
        body. Headers of the form ``Name: value`` become the same message the standard parser makes;
        anything else (folded lines, odd names, ``Expect``) is parsed by the standard parser from the
        same lines, and any other request line goes the standard way whole.
        """
        if self.raw_requestline != _RUNTIME_REQUEST:
            return super().parse_request()
        self.command, self.path, self.request_version = "POST", "/runtime_manager", "HTTP/1.1"
        self.requestline = _RUNTIME_REQUEST[:-2].decode()
        self.close_connection = True  # until the headers are read
        lines: list[bytes] = []
        while True:  # as http.client._read_headers, which counts the blank line that ends them too
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(431, "Line too long", "header line")
                return False
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(431, "Too many headers", f"got more than {_MAX_HEADERS} headers")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
        lines.pop()  # the blank line (or the end of the stream)
        if any(b"\0" in line or b"\r" in line.rstrip(b"\r\n") for line in lines):
            # RFC 9112 2.2: a bare CR is invalid; the standard parser would split the line there, ours not.
            self.send_error(400, "Bad header", "a header line holds a bare CR or a NUL")
            return False
        headers = http.client.HTTPMessage()
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or not _TOKEN.issuperset(name) or name.lower() == b"expect":
                headers = http.client.parse_headers(io.BytesIO(b"".join(lines) + b"\r\n"))
                break
            headers[name.decode("latin-1")] = value.lstrip(b" \t").rstrip(b"\r\n").decode("latin-1")
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        self.close_connection = connection == "close"
        expect = headers.get("Expect", "")
        if expect.lower() == "100-continue" and not self.handle_expect_100():
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/runtime_manager":
            self._reply(404, f"no route POST {self.path}")
            return
        length = declared_length(self.headers)
        if length is None:
            self.close_connection = True
            self._reply(400, "InvalidRequest: Content-Length must be a non-negative integer")
            return
        if length >= MAX_BODY:
            # Refused on the header: the body is never read (the connection closes instead).
            self.close_connection = True
            self._reply(
                413, f"PayloadTooLarge: body of {length} bytes exceeds the {MAX_BODY}-byte limit; send smaller posts"
            )
            self._linger(min(length, MAX_BODY))
            return
        # A client that stops sending mid-body frees its thread (idle keep-alive connections stay open).
        body = read_body(self.connection, self.rfile, length, BODY_TIMEOUT)
        if body is None:
            self.close_connection = True
            return  # the client went away (or stalled) mid-body
        try:
            session_id, data = _parse_body(body)
        except ValueError as exc:
            self._reply(400, f"InvalidRequest: {exc}")
            return
        server = self.server
        try:
            session_id, reply = server.manager.handle(session_id, data, connection=self.client_address)
        except Refused as exc:
            log.warning("refused: %s", exc.body)
            self._reply(500, exc.body)
            return
        except Exception:  # a bug must not take the runtime down with it
            log.exception("internal error")
            self._reply(500, "InternalError: the runtime failed to process the request")
            return
        self._reply(200, b"%d " % session_id + pybase64.b64encode(reply) if reply else b"")
        if not server.manager.alive:
            threading.Thread(target=server.shutdown, daemon=True).start()

    def _linger(self, budget: int) -> None:
        """Discard (in small chunks, never kept) at most ``budget`` bytes still in flight, briefly, so the
        client reads the refusal instead of a connection reset."""
        self.wfile.flush()
        self.connection.settimeout(1.0)
        try:
            while budget > 0:
                chunk = self.connection.recv(min(budget, 1 << 16))
                if not chunk:
                    break
                budget -= len(chunk)
        except OSError:
            pass

    def _reply(self, status: int, text: str | bytes) -> None:
        """The whole reply in one write: status line, the three headers a client needs, body."""
        body = text.encode() if isinstance(text, str) else text
        self.log_request(status, len(body))
        connection = "Connection: close\r\n" if self.close_connection else ""
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n"
        ).encode("latin-1")
        if len(body) < 1 << 16:
            self.wfile.write(head + body)
        else:  # a large reply (a file read): no copy to save one write
            self.wfile.write(head)
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


def _parse_body(body: bytes) -> tuple[int, bytes]:
    """``"<sid> <base64>"`` → (sid, TLS bytes); the common one-item body without a split or a copy."""
    space = body.find(b" ")
    if space > 0:
        try:
            session_id = int(body[:space])
            if session_id >= 0:
                return session_id, pybase64.b64decode(memoryview(body)[space + 1 :], validate=True)
        except (ValueError, binascii.Error):
            pass  # several items, other whitespace or a malformed body: the general path says which
    parts = body.split()
    if not parts:
        raise ValueError("empty body: expected '<session_id> <base64>'")
    try:
        session_id = int(parts[0])
        data = b"".join(pybase64.b64decode(p, validate=True) for p in parts[1:])
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed body: {exc}") from None
    if session_id < 0:
        raise ValueError("session id must not be negative")
    return session_id, data


class RuntimeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 resets bursts of clients
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], manager: RuntimeManager) -> None:
        self.manager = manager
        super().__init__(address, _Handler)


def build_server(
    policy: FullPolicy,
    *,
    platform_dir: Path,
    measurement: str,
    scratch_parent: Path | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    platform: str = "linux",
    attested: Attested | None = None,
) -> tuple[RuntimeHTTPServer, Path]:
    """Attest (unless ``attested`` was done ahead, for this platform) and bind; returns the server and its
    private scratch directory (caller removes it)."""
    log.warning(SIMULATION_NOTICE)
    keep_freed_memory()
    # Other platforms' hashes may be null (generate-policy writes null); this platform's must be set.
    policy.runtime_hash("nitro" if platform == "nitro-sim" else platform)
    if attested is None:
        attested = attest(policy.proxy_url, policy.proxy_service_cert, platform_dir, measurement, platform)
    else:
        check_attested_for(policy, attested)
    identities = [identity["certificate"] for identity in policy.document["identities"]]
    context = server_context(attested.chain_pem, attested.key_pem, identities, policy.document["ciphersuite"])
    if scratch_parent is not None:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ipoc-runtime-", dir=scratch_parent))
    try:
        manager = RuntimeManager.create(policy, context, scratch, time_limit=time_limit)
        host, port = split_url(policy.server_url)
        server = RuntimeHTTPServer((host, port), manager)
    except OSError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise StartupError(f"cannot listen on {policy.server_url}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    log.info(
        "runtime attested (measurement %s) and listening on %s, policy hash %s",
        attested.measurement,
        policy.server_url,
        policy.hash,
    )
    return server, scratch

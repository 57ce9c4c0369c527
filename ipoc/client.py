"""The one Veracruz client: attested TLS over HTTP to a runtime, then file and program operations.

Nothing is sent to a runtime before three checks pass, in this order: the TLS
chain to the policy's ``proxy_service_cert``, the runtime measurement in the
enclave certificate (extension 2.5.30.1) against ``runtime_manager_hash_*``,
and the runtime's policy hash against the sha256 of our exact policy bytes.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from cryptography import x509

from ipoc import errors
from ipoc.certs import MEASUREMENT_OID, certificate_der, key_matches_certificate
from ipoc.policy import FullPolicy, parse_full_policy
from ipoc.rights import normalise_path
from ipoc.wire import messages
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.carrier import DEFAULT_PIPELINE, MAX_RAW_PER_POST, CarrierError, HttpCarrier, record_posts
from ipoc.wire.framing import HEADER, Buffer, FrameDecoder, frame
from ipoc.wire.tls import MAX_PLAINTEXT, client_context, openssl_suite

DEFAULT_CHUNK = 1 << 20
_RUNTIME_ERROR = re.compile(r"^([A-Za-z]+): (.*)$", re.S)


def runtime_measurement(enclave_certificate_der: bytes) -> bytes:
    """The runtime measurement an attestation service wrote into an enclave certificate."""
    cert = x509.load_der_x509_certificate(enclave_certificate_der)
    try:
        extension = cert.extensions.get_extension_for_oid(MEASUREMENT_OID)
    except x509.ExtensionNotFound:
        raise errors.RuntimeHashMismatch(
            "the enclave certificate has no runtime measurement (extension 2.5.30.1)"
        ) from None
    return extension.value.public_bytes()  # an UnrecognizedExtension: its raw value


class VeracruzClient:
    """An attested session with one Veracruz runtime, as one policy identity.

    Use as a context manager, or call :meth:`connect` and :meth:`close`::

        with VeracruzClient(policy_text, cert_pem, key_pem) as client:
            client.write_file("/input/data", b"...")
            code = client.execute("/program/main.wasm")
    """

    def __init__(
        self,
        policy_text: str,
        certificate: str,
        key: str,
        *,
        timeout: float = 60.0,
        check_identity: bool = True,
        post_bytes: int = MAX_RAW_PER_POST,
        pipeline: int = DEFAULT_PIPELINE,
    ) -> None:
        if not 0 < post_bytes <= MAX_RAW_PER_POST:
            raise ValueError(
                f"post_bytes must be 1..{MAX_RAW_PER_POST} (bodies stay under the runtime's 256 KiB limit)"
            )
        # TLS bytes per post: whole records batched up to this (a record is never cut across posts).
        self._post_bytes = post_bytes
        # Posts in flight on the connection; 1 sends each post after the previous reply (as the original client).
        self._pipeline = pipeline
        self.policy: FullPolicy = parse_full_policy(policy_text)
        self._certificate = certificate
        self._key = key
        self._timeout = timeout
        self.identity_id: int | None = None
        if not key_matches_certificate(key, certificate):
            raise errors.IdentityError("the private key does not match the identity certificate")
        match = self.policy.identity_for(certificate_der(certificate))
        if match is None and check_identity:
            raise errors.IdentityError(
                "this certificate is not one of the policy's identities; use the certificate the policy was made with"
            )
        if match is not None:
            self.identity_id = match[0]
        # The session's state, set (and set again when a session is dropped) by _forget_session alone.
        self._carrier: HttpCarrier | None
        self._tls: ssl.SSLObject | None
        self._incoming: ssl.MemoryBIO
        self._outgoing: ssl.MemoryBIO
        self._session_id: int
        # TLS bytes already taken from the outgoing BIO and cut into posts, sent first by the next flush
        self._queued: list[memoryview]
        self._forget_session()
        self.verified: dict[str, str] = {}

    # -- connection -----------------------------------------------------------

    def __enter__(self) -> VeracruzClient:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Handshake, then verify runtime and policy hashes; afterwards requests may flow."""
        if self._tls is not None:
            return
        ctx = client_context(
            self.policy.proxy_service_cert, self._certificate, self._key, self.policy.document["ciphersuite"]
        )
        self._carrier = HttpCarrier(self.policy.server_url, timeout=self._timeout, pipeline=self._pipeline)
        self._tls = ctx.wrap_bio(self._incoming, self._outgoing, server_side=False)
        try:
            self._handshake()
            self._verify_runtime_hash()
            self._verify_policy_hash()
        except BaseException:
            self._abandon()
            raise

    def _handshake(self) -> None:
        assert self._tls is not None
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not self._flush():
                    raise errors.AttestationError("the runtime stopped answering during the TLS handshake") from None
            except ssl.SSLCertVerificationError as exc:
                raise errors.AttestationError(
                    f"the runtime's certificate does not chain to the policy's proxy_service_cert "
                    f"({exc.verify_message}); the runtime was not attested by the proxy this policy names"
                ) from None
            except ssl.SSLError as exc:
                raise errors.AttestationError(f"TLS handshake with the runtime failed: {exc}") from None
        suite = self._tls.cipher()
        if suite is None or suite[0] != openssl_suite(self.policy.document["ciphersuite"]):
            raise errors.AttestationError(
                f"the runtime negotiated {suite and suite[0]}, not the policy's {self.policy.document['ciphersuite']}"
            )
        self.verified["ciphersuite"] = suite[0]
        # TLS 1.3: our certificate and Finished are still queued; the runtime judges them now.
        try:
            self._flush()
        except errors.RequestRefused as exc:
            if exc.reason != "IdentityRefused":
                raise errors.AttestationError(f"TLS handshake with the runtime failed: {exc.message}") from None
            raise errors.IdentityError(
                f"the runtime refused our identity during the handshake ({exc.message}); "
                "is this certificate one of the policy's identities?"
            ) from None

    def _verify_runtime_hash(self) -> None:
        assert self._tls is not None
        peer = self._tls.getpeercert(binary_form=True)
        if peer is None:
            raise errors.AttestationError("the runtime presented no certificate")
        measured = runtime_measurement(peer).hex()
        expected = self.policy.runtime_hashes
        if measured not in expected.values():
            names = (
                ", ".join(f"runtime_manager_hash_{p}={h}" for p, h in expected.items())
                or "no hash at all (every runtime_manager_hash_* is null)"
            )
            raise errors.RuntimeHashMismatch(
                f"runtime hash mismatch: the attested runtime measures {measured}, the policy expects {names}; "
                "the instance is not running the runtime this policy was issued for"
            )
        self.verified["runtime_hash"] = measured

    def _verify_policy_hash(self) -> None:
        reply = self._request(messages.request_policy_hash(), "request_policy_hash")
        if reply.WhichOneof("message_oneof") != "policy_hash":
            raise errors.PolicyHashMismatch("the runtime did not report a policy hash")
        reported = reply.policy_hash.data.decode("ascii", "replace").lower()
        ours = self.policy.hash
        if reported != ours:
            raise errors.PolicyHashMismatch(
                f"policy hash mismatch: the runtime loaded {reported}, our policy file hashes to {ours}; "
                "refusing to send anything (is this the exact policy text the instance was created with?)"
            )
        self.verified["policy_hash"] = ours

    def close(self) -> None:
        """End the TLS session politely (close_notify) and the HTTP connection."""
        if self._tls is not None and self._carrier is not None:
            try:
                self._tls.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            try:
                self._flush()
            except errors.VeracruzError:
                pass
        self._abandon()

    def _abandon(self) -> None:
        """Drop the session unsent: the connection, the TLS state and every byte encrypted or queued for it."""
        if self._carrier is not None:
            self._carrier.close()
        self._forget_session()

    def _forget_session(self) -> None:
        """No session: nothing connected, encrypted or queued (a :meth:`connect` starts one from nothing)."""
        self._carrier = None
        self._tls = None
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._session_id = 0
        self._queued = []

    # -- operations -----------------------------------------------------------

    def write_file(self, path: str, data: bytes) -> None:
        """Create or overwrite ``path`` with ``data`` (a file_hashes path must match its hash)."""
        self._expect_success(self._request(messages.data_request("write_file", path, data), f"write_file {path}"))

    def append_file(self, path: str, data: bytes) -> None:
        """Append to ``path``; refused by the runtime for a path listed in file_hashes."""
        self._expect_success(self._request(messages.data_request("append_file", path, data), f"append_file {path}"))

    def stream_file(
        self,
        path: str,
        reader: BinaryIO,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Copy ``reader`` into ``path`` in bounded chunks: write the first, append the rest.

        Memory stays at a few chunks whatever the size. The next chunk is read
        while the current one is sent, and encrypted while the runtime handles
        the current one; its posts but the last then go at once, so the runtime
        has them to decrypt when it has answered the current one. The last post,
        without which the runtime never acts on the append (a message acts only
        once whole), goes only once the current one succeeded: after a refusal
        the session is dropped with the append incomplete. A path listed in the
        policy's file_hashes cannot be appended to, so it must go whole: it is
        read completely and sent with one ``write_file``. Returns bytes sent;
        ``progress(n)`` hears each chunk's size once the runtime has accepted it.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if normalise_path(messages.enclave_path(path)) in self.policy.file_hashes:
            data = reader.read()
            self.write_file(path, data)
            if progress:
                progress(len(data))
            return len(data)
        total = 0
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-read")
        try:
            # The next chunk is read (from S3, a file, a pipe) while this one goes to the runtime, and
            # encrypted while the runtime handles this one: it is completed only once this one succeeded.
            upcoming = pool.submit(reader.read, chunk_size)
            chunk = upcoming.result()
            request: tuple[bytes, Buffer] | None = messages.data_request("write_file", path, chunk)
            what = f"write_file {path}"
            while True:
                if chunk:
                    upcoming = pool.submit(reader.read, chunk_size)
                ahead: list[bytes | BaseException] = []  # the next chunk, encrypted, or why it is not
                encrypt_next = functools.partial(self._encrypt_ahead, path, upcoming, ahead)
                self._expect_success(self._request(request, what, then=encrypt_next if chunk else None))
                total += len(chunk)
                if progress:
                    progress(len(chunk))
                if not chunk:
                    break
                if not ahead:  # the exchange ran no work (not expected): encrypt the next chunk now, send it whole
                    self._queued[:0] = self._encrypt_ahead(path, upcoming, ahead)
                if isinstance(ahead[0], ssl.SSLError):
                    self._abandon()
                    raise errors.VeracruzError(f"append_file {path}: TLS failure: {ahead[0]}")
                if isinstance(ahead[0], BaseException):
                    raise ahead[0]  # the read failed
                if not ahead[0]:
                    break
                chunk, request, what = ahead[0], None, f"append_file {path}"
        except BaseException:
            if self._queued or self._outgoing.pending:
                # The next append is encrypted (whole, or but for its last post) and cannot be taken back (TLS
                # has counted its records): end the session unsent, or closing it would send the append
                # after the refusal (or whatever else stopped the stream: a read, the caller's progress
                # callback, an interrupt while the append was being encrypted) the caller has seen.
                self._abandon()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # after a refusal, a pending read must not hold us
        return total

    def _encrypt_ahead(self, path: str, upcoming: Future[bytes], into: list[bytes | BaseException]) -> list[memoryview]:
        """Wait for the next chunk and encrypt its append; return its posts but the last, to send early
        (the last is sent after the current request succeeds). ``into`` receives the chunk, or the
        exception to raise once the current request is answered."""
        try:
            following = upcoming.result()
            if following:
                self._write_request(messages.data_request("append_file", path, following))
                self._queue_posts()  # cut into posts now, while the runtime works, not once it has answered
            into.append(following)
        except BaseException as exc:  # noqa: BLE001 - raised by stream_file, after the current request
            into.append(exc)
            return []
        early, self._queued = self._queued[:-1], self._queued[-1:]
        return early

    def read_file(self, path: str) -> bytes:
        """Read a whole file (or ``stdout``/``stderr``); an empty file raises :class:`NoResult`."""
        reply = self._request(messages.read_file(path), f"read_file {path}")
        self._expect_success(reply)
        if reply.WhichOneof("message_oneof") != "result":
            raise errors.NoResult(f"no result: {path} is empty in the enclave")
        return reply.result.data

    def execute(self, path: str) -> int:
        """Run the program at ``path``; returns its exit code."""
        reply = self._request(messages.execute(path), f"execute {path}")
        self._expect_success(reply)
        if reply.WhichOneof("message_oneof") != "result":
            raise errors.ExecutionFailed(f"the runtime returned no exit code for {path}", reason="ExecutionFailed")
        return messages.exit_code_from(reply.result.data)

    def shutdown(self) -> None:
        """Ask the runtime to shut down (any identity may); the session ends with it."""
        try:
            self._request(messages.request_shutdown(), "request_shutdown")
        finally:
            self._abandon()

    # -- plumbing -------------------------------------------------------------

    def _request(
        self,
        payload: bytes | tuple[bytes, Buffer] | None,
        what: str,
        *,
        then: Callable[[], Sequence[memoryview]] | None = None,
    ) -> pb.RuntimeManagerResponse:
        """Send one request (serialized, as :func:`messages.data_request`'s head and data, or None when
        already written) and read its response; ``then`` runs once its posts are sent, before the
        replies are awaited, and returns posts to send early (:meth:`HttpCarrier.after_sending`; it
        must not raise)."""
        if self._tls is None:
            raise errors.VeracruzError("not connected: call connect() or use the client as a context manager")
        try:
            if payload is not None:
                self._write_request(payload)
            if then is not None and self._carrier is not None:
                self._carrier.after_sending(then)
            self._flush(what)
            return self._read_response(what)
        except ssl.SSLError as exc:
            self._abandon()
            raise errors.VeracruzError(f"{what}: TLS failure: {exc}") from None
        except BaseException:
            # Stopped halfway (an interrupt, say): which posts the runtime has, and which replies are still
            # on their way, is unknown, so the session cannot go on (nor end with a close_notify).
            self._abandon()
            raise

    def _write_request(self, payload: bytes | tuple[bytes, Buffer]) -> None:
        """Frame and encrypt one request into the outgoing TLS bytes."""
        assert self._tls is not None
        if isinstance(payload, bytes):
            self._tls.write(frame(payload))
            return
        # The frame header and message head fill the first record with data; TLS copies the rest once.
        head, data = payload
        view = memoryview(data).cast("B")
        start = HEADER.pack(len(head) + len(view)) + head
        first = max(0, MAX_PLAINTEXT - len(start))
        self._tls.write(start + view[:first])
        if len(view) > first:
            self._tls.write(view[first:])

    def _queue_posts(self) -> None:
        """Take the TLS bytes written so far out of the outgoing BIO, cut into posts for the next flush."""
        data = self._outgoing.read()
        if data:
            self._queued += record_posts(data, self._post_bytes)

    def _flush(self, what: str = "handshake") -> bool:
        """Send every queued TLS byte in posts of whole records under the body limit (pipelined on
        one connection); True when a reply arrived."""
        assert self._carrier is not None
        got_reply = False
        self._queue_posts()
        chunks, self._queued = self._queued, []
        if not chunks:
            return False
        try:
            if len(chunks) == 1:
                self._session_id, reply = self._carrier.exchange(self._session_id, chunks[0])
            else:  # one message's posts in flight together; replies in order, every status checked
                self._session_id, reply = self._carrier.exchange_all(self._session_id, chunks)
        except CarrierError as exc:
            self._abandon()
            raise self._runtime_error(exc, what) from None
        if reply:
            self._incoming.write(reply)
            got_reply = True
        return got_reply

    def _read_response(self, what: str) -> pb.RuntimeManagerResponse:
        assert self._tls is not None and self._carrier is not None
        decoder = FrameDecoder()
        while True:
            try:
                data = self._tls.read(1 << 20)
            except ssl.SSLWantReadError:
                # A runtime answers in the reply to the post that completes a request
                # (veracruz-server drains the enclave's TLS output before replying).
                # There is nothing to poll with: a body without TLS bytes ("<sid> ")
                # is malformed to veracruz-server, so never send one.
                self._abandon()
                raise errors.VeracruzError(
                    f"{what}: the runtime's reply ended before a complete response; the session is closed"
                ) from None
            except ssl.SSLZeroReturnError:
                self._abandon()
                raise errors.VeracruzError(f"{what}: the runtime closed the session") from None
            if not data:
                raise errors.VeracruzError(f"{what}: the runtime closed the session")
            found = decoder.feed(data)
            if found:
                return messages.parse_response(found[0])

    @staticmethod
    def _runtime_error(exc: CarrierError, what: str) -> errors.VeracruzError:
        if exc.status is None:
            return errors.RuntimeUnreachable(f"{what}: {exc}")
        match = _RUNTIME_ERROR.match(exc.body)
        if match:
            cls = errors.RUNTIME_ERRORS.get(match.group(1), errors.RequestRefused)
            return cls(f"{what} refused by the runtime: {match.group(1)}: {match.group(2)}", reason=match.group(1))
        return errors.RequestRefused(f"{what} failed: HTTP {exc.status}: {exc.body or 'no detail'}")

    @staticmethod
    def _expect_success(reply: pb.RuntimeManagerResponse) -> None:
        if reply.status != messages.Status.SUCCESS:
            name = messages.Status.Name(reply.status)
            raise errors.RequestRefused(f"the runtime answered {name}", reason=name)

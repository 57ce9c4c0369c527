"""The runtime manager: TLS sessions, the peer's identity, and the request protocol.

Mirrors Veracruz v1.3's runtime manager behind veracruz-server: bytes arrive
per session, TLS is terminated here, the peer is mapped to a policy identity by
its certificate DER, and each length-prefixed protobuf request is checked and
answered. Any refusal ends the session and fails the HTTP post (status 500).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from ipoc.policy import FullPolicy, Principal
from ipoc.wire import messages
from ipoc.wire.framing import DEFAULT_MAX_MESSAGE, FrameDecoder, FrameTooLarge, frame
from ipoc.wire.tls import openssl_suite
from runtime.executor import Executor, Streams
from runtime.refusal import Refused
from runtime.vfs import FileSystem

log = logging.getLogger(__name__)

MAX_SESSIONS = 64


@dataclass
class Session:
    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    decoder: FrameDecoder
    identity: tuple[int, Principal] | None = None
    handshake_done: bool = False


@dataclass
class RuntimeManager:
    policy: FullPolicy
    tls_context: ssl.SSLContext
    fs: FileSystem
    executor: Executor
    max_message: int = DEFAULT_MAX_MESSAGE
    alive: bool = True
    sessions: dict[int, Session] = field(default_factory=dict)
    _next_session: int = 1

    @classmethod
    def create(
        cls, policy: FullPolicy, tls_context: ssl.SSLContext, scratch: Path, *, time_limit: float
    ) -> "RuntimeManager":
        return cls(
            policy=policy,
            tls_context=tls_context,
            fs=FileSystem(scratch, policy.file_hashes),
            executor=Executor(
                max_memory_mib=policy.document["max_memory_mib"],
                enable_clock=policy.document["enable_clock"],
                time_limit=time_limit,
            ),
        )

    # -- sessions ---------------------------------------------------------------

    def handle(self, session_id: int, data: bytes) -> tuple[int, bytes]:
        """Feed one post's TLS bytes; return the session id and the TLS bytes to send back."""
        if not self.alive:
            raise Refused("NotAlive", "the runtime has shut down")
        if session_id == 0:
            session_id = self._open_session()
        session = self.sessions.get(session_id)
        if session is None:
            raise Refused("InvalidSession", f"no TLS session {session_id} (it ended or never existed)")
        try:
            session.incoming.write(data)
            if not session.handshake_done:
                self._continue_handshake(session_id, session)
            if session.handshake_done:
                self._process(session_id, session)
        except Refused:
            self.sessions.pop(session_id, None)
            raise
        return session_id, session.outgoing.read()

    def _open_session(self) -> int:
        if len(self.sessions) >= MAX_SESSIONS:
            oldest = next(iter(self.sessions))
            log.warning("too many TLS sessions: dropping session %d", oldest)
            del self.sessions[oldest]
        session_id = self._next_session
        self._next_session += 1
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.tls_context.wrap_bio(incoming, outgoing, server_side=True)
        self.sessions[session_id] = Session(tls, incoming, outgoing, FrameDecoder(self.max_message))
        return session_id

    def _continue_handshake(self, session_id: int, session: Session) -> None:
        try:
            session.tls.do_handshake()
        except ssl.SSLWantReadError:
            return
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            if "CERTIFICATE" in reason.upper():
                raise Refused(
                    "IdentityRefused", f"TLS handshake failed ({reason}): present one of the policy's identity certificates"
                ) from None
            raise Refused("HandshakeFailed", f"TLS handshake failed ({reason}): speak TLS 1.3 with the policy's ciphersuite") from None
        cipher = session.tls.cipher()
        if cipher is None or cipher[0] != openssl_suite(self.policy.document["ciphersuite"]):
            raise Refused("IdentityRefused", f"ciphersuite {cipher and cipher[0]} is not the policy's")
        der = session.tls.getpeercert(binary_form=True)
        identity = self.policy.identity_for(der) if der else None
        if identity is None:
            raise Refused("IdentityRefused", "the peer certificate is not one of the policy's identities")
        session.identity = identity
        session.handshake_done = True
        log.info("session %d: %s connected", session_id, identity[1].name)

    def _process(self, session_id: int, session: Session) -> None:
        while True:
            try:
                data = session.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                data = b""
            except ssl.SSLError as exc:
                raise Refused("InvalidRequest", f"TLS error: {exc}") from None
            if not data:  # close_notify: the client ended the session
                log.info("session %d closed by the client", session_id)
                try:
                    session.tls.unwrap()
                except ssl.SSLError:
                    pass
                self.sessions.pop(session_id, None)
                return
            try:
                requests = session.decoder.feed(data)
            except FrameTooLarge as exc:
                raise Refused("InvalidRequest", str(exc)) from None
            for request in requests:
                session.tls.write(frame(self._dispatch(session, request)))
                if not self.alive:
                    return

    # -- requests ----------------------------------------------------------------

    def _dispatch(self, session: Session, raw: bytes) -> bytes:
        assert session.identity is not None
        identity_id, principal = session.identity
        try:
            request = messages.parse_request(raw)
        except DecodeError as exc:
            raise Refused("InvalidRequest", f"cannot parse the request: {exc}") from None
        kind = request.WhichOneof("message_oneof")
        if kind == "request_policy_hash":
            return messages.response(policy_hash=self.policy.hash)
        if kind == "write_file":
            self.fs.write(principal, request.write_file.file_name, request.write_file.data)
            log.info("%s wrote %s (%d bytes)", principal.name, request.write_file.file_name, len(request.write_file.data))
            return messages.response()
        if kind == "append_file":
            self.fs.append(principal, request.append_file.file_name, request.append_file.data)
            return messages.response()
        if kind == "read_file":
            data = self.fs.read(principal, request.read_file.file_name)
            log.info("%s read %s (%d bytes)", principal.name, request.read_file.file_name, len(data))
            return messages.response(result=data) if data else messages.response()
        if kind == "request_result":
            code = self._execute(principal, request.request_result.file_name)
            return messages.response(result=messages.exit_code_bytes(code))
        if kind == "request_shutdown":
            log.info("%s requested shutdown", principal.name)
            self.alive = False
            return messages.response()
        log.info("%s sent an unsupported request (%s)", principal.name, kind)
        return messages.response(messages.Status.FAILED_INVALID_REQUEST)

    def _execute(self, participant: Principal, path: str) -> int:
        program_path, host = self.fs.executable(participant, path)
        program = self.policy.programs.get(program_path)
        if program is None:
            raise Refused("AccessDenied", f"{program_path} is not a program of this policy (programs[].program_file_name)")
        streams = {}
        for name in ("stdout", "stderr"):
            target = self.fs.stream_path(name)
            target.write_bytes(b"")  # each execution starts with empty output streams
            streams[name] = target if name in program.grants else None
        stdin = self.fs.stream_path("stdin") if "stdin" in program.grants and self.fs.stream_path("stdin").exists() else None
        log.info("%s executes %s", participant.name, program_path)
        code = self.executor.run(
            host.read_bytes(),
            self.fs.preopens(program),
            Streams(stdin=stdin, stdout=streams["stdout"], stderr=streams["stderr"]),
        )
        log.info("%s exited with code %d", program_path, code)
        return code

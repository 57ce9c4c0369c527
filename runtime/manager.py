"""The runtime manager: TLS sessions, the peer's identity, and the request protocol.

Mirrors Veracruz v1.3's runtime manager behind veracruz-server: bytes arrive
per session, TLS is terminated here, the peer is mapped to a policy identity by
its certificate DER, and each length-prefixed protobuf request is checked and
answered. A refused request ends its session and fails the HTTP post (status 500).

Sessions face anyone who reaches the port, so (issue 12, item 8):

- ids are random u32s (Veracruz's session id type), not a counter to guess;
- opening a session (id 0) costs a whole, valid TLS ClientHello: nothing is kept otherwise;
- a post whose bytes are not well-formed TLS records, or that repeats a record
  the session already received (a replay), is refused *without* touching the
  session: TLS state only changes on records it has not seen;
- once the session is authenticated, every record is first opened with the
  client's traffic key (:mod:`runtime.records`), and its plaintext is what the
  runtime reads (OpenSSL, past the handshake, only writes): a post holding a record that
  does not authenticate (forged with a well-formed header, replayed, bit-flipped)
  is refused and discarded, and the session carries on as if it never came. A
  stranger's bytes posted between two posts of a record the client split are
  set aside too: the start of an unfinished record is kept for the transport
  connection whose records last authenticated (the client's), apart from the
  candidates other connections' posts leave (up to ``MAX_PARTIALS``
  connections, the oldest going first), so strangers' posts never crowd out
  the client's half-record. A post continues its own connection's candidates
  first, and only a continuation that authenticates is taken. (Our client cuts
  posts only between records; independent clients may still split them.);
- at most ``MAX_HANDSHAKES`` unauthenticated sessions (the oldest goes first)
  and ``MAX_SESSIONS`` authenticated ones; an authenticated session is evicted
  only when idle for ``idle_seconds``, otherwise a new one is refused.

Concurrency: requests of one session run in order under its own lock; other
sessions' TLS work (connect, records, file operations) runs in parallel. One
program runs at a time, and while it runs a client operation waits only when
its path is one the program can see (a pre-opened directory or a stream the
run resets), so nobody observes or changes a running program's files; the rest
of the enclave tree stays available to every other client.
"""

from __future__ import annotations

import logging
import secrets
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from ipoc import rights
from ipoc.policy import FullPolicy, Principal
from ipoc.wire import messages
from ipoc.wire.framing import DEFAULT_MAX_MESSAGE, FrameDecoder, FrameTooLarge, frame
from ipoc.wire.tls import MAX_PLAINTEXT, openssl_suite
from runtime import records as tls_records
from runtime.executor import Executor, Streams
from runtime.refusal import Refused
from runtime.vfs import FileSystem, Preopen, max_bytes_from_environment

log = logging.getLogger(__name__)

MAX_SESSIONS = 64  # authenticated sessions
MAX_HANDSHAKES = 64  # sessions still in their handshake
SESSION_IDLE_SECONDS = 60.0
SESSION_ID_LIMIT = 1 << 32  # Veracruz's session ids are u32
TLS_RECORD_TYPES = (20, 21, 22, 23)  # change_cipher_spec, alert, handshake, application_data
TLS_MAX_RECORD = MAX_PLAINTEXT + 256  # TLS 1.3 ciphertext limit (RFC 8446 5.2)
MAX_PARTIALS = 4  # connections with unfinished records, and candidates per connection (see the module docstring)


@dataclass
class Session:
    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    decoder: FrameDecoder
    identity: tuple[int, Principal] | None = None
    handshake_done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    partial: bytes = b""  # the start of a record split across posts
    seen: set[bytes] = field(default_factory=set)  # digests of the records received (replay check)
    last_used: float = field(default_factory=time.monotonic)
    # set once authenticated (None: records go straight to OpenSSL); never in a repr (it holds the traffic key)
    keys: tls_records.ClientKeys | None = field(default=None, repr=False)
    # Once authenticated: the connection whose post last authenticated and the unfinished records it may
    # be continuing (never evicted by other connections' posts), and the candidates other connections left.
    held: tuple[object, list[bytes]] | None = None
    partials: dict[object, list[bytes]] = field(default_factory=dict)


@dataclass
class RuntimeManager:
    policy: FullPolicy
    tls_context: ssl.SSLContext
    fs: FileSystem
    executor: Executor
    max_message: int = DEFAULT_MAX_MESSAGE
    alive: bool = True
    sessions: dict[int, Session] = field(default_factory=dict)
    idle_seconds: float = SESSION_IDLE_SECONDS
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the sessions table
    _files: threading.Condition = field(default_factory=threading.Condition)  # file operations vs. a run
    _visible: tuple[str, ...] = ()  # paths the running program can see
    _run_lock: threading.Lock = field(default_factory=threading.Lock)
    secret_log: tls_records.SecretLog | None = None

    def __post_init__(self) -> None:
        if self.secret_log is None:
            self.secret_log = tls_records.install(self.tls_context)

    @classmethod
    def create(
        cls,
        policy: FullPolicy,
        tls_context: ssl.SSLContext,
        scratch: Path,
        *,
        time_limit: float,
        max_fs_bytes: int | None = None,
    ) -> RuntimeManager:
        """``max_fs_bytes`` caps the enclave file system (default: ``$IPOC_RUNTIME_MAX_FS_MIB`` MiB, else 2 GiB)."""
        return cls(
            policy=policy,
            tls_context=tls_context,
            fs=FileSystem(scratch, policy.file_hashes, max_bytes=max_fs_bytes or max_bytes_from_environment()),
            executor=Executor(
                max_memory_mib=policy.document["max_memory_mib"],
                enable_clock=policy.document["enable_clock"],
                time_limit=time_limit,
            ),
        )

    # -- sessions ---------------------------------------------------------------

    def handle(self, session_id: int, data: bytes, connection: object = None) -> tuple[int, bytes]:
        """Feed one post's TLS bytes; return the session id and the TLS bytes to send back.

        ``connection`` names the transport connection the post came on (the
        peer's address): a record split across posts is continued first with
        the bytes earlier posts of that connection left.
        """
        if not self.alive:
            raise Refused("NotAlive", "the runtime has shut down")
        if session_id == 0:
            return self._open_session(data)
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise Refused("InvalidSession", f"no TLS session {session_id} (it ended or never existed)")
        with session.lock:
            if self.sessions.get(session_id) is not session:
                raise Refused("InvalidSession", f"TLS session {session_id} ended meanwhile")
            records: list[memoryview] = []
            try:
                if session.keys is not None:
                    # refuses what the client did not send, session untouched
                    opened = self._authenticated(session, data, connection)
                else:  # refuses garbage and replays, leaving the session as it was
                    records, opened = self._records(session, data), []
            except tls_records.RecordError as exc:  # the client's own record, which TLS forbids
                self._drop(session_id, session)
                raise Refused("InvalidRequest", f"TLS error: {exc}") from None
            session.last_used = time.monotonic()
            checked = session.keys is not None
            try:
                for record in records:
                    if session.keys is not None:
                        # the post that finished the handshake (so the client's own) goes on: read with the keys
                        inner = session.keys.unprotect(record)
                        if inner is None:
                            raise Refused("InvalidRecord", "a TLS record after the handshake does not authenticate")
                        opened.append(inner)
                        continue
                    session.incoming.write(record)
                    if not session.handshake_done:
                        self._continue_handshake(session_id, session)
                if (
                    not checked and session.keys is not None
                ):  # this post finished the handshake: the client's connection
                    session.held, session.partial = (connection, [session.partial]), b""
                if session.keys is not None:
                    self._read(session_id, session, opened)
                elif session.handshake_done:
                    self._process(session_id, session)
            except tls_records.RecordError as exc:
                self._drop(session_id, session)
                raise Refused("InvalidRequest", f"TLS error: {exc}") from None
            except Refused:
                self._drop(session_id, session)
                raise
            return session_id, session.outgoing.read()

    def _authenticated(self, session: Session, data: bytes, connection: object) -> list[tuple[int, bytes | memoryview]]:
        """The records ``data`` completes, each authenticated and opened with the client's key (content type,
        content), or a refusal that changes nothing.

        ``data`` continues one of the candidate unfinished records (its own
        connection's first, then the held ones, then the others', then none):
        the first continuation whose complete records all authenticate wins,
        its connection becomes the held one, and every other candidate goes. A
        post that completes no record extends the held candidates when it comes
        on the held connection, and otherwise becomes its connection's
        candidates among the others', whose oldest connection goes beyond
        ``MAX_PARTIALS``: a stranger's posts, on connections of their own,
        never displace the half-record the client's earlier records vouch for.
        """
        assert session.keys is not None
        held_by, held = session.held if session.held is not None else (None, [])
        on_held = connection == held_by
        own = session.partials.get(connection, [])
        others = [c for key, kept in reversed(session.partials.items()) if key != connection for c in kept]
        ordered = [*held, *own, *others, b""] if on_held else [*own, *held, *others, b""]
        grown_held: list[bytes] = []
        grown: list[bytes] = []
        for partial in dict.fromkeys(ordered):
            try:
                complete, rest = _split(partial + data if partial else data)
            except Refused:
                continue
            if not complete:
                (grown_held if on_held and partial in held else grown).append(rest)
                continue
            keys = session.keys.copy()
            opened = []
            for record in complete:
                inner = keys.unprotect(record)
                if inner is None:
                    break
                opened.append(inner)
            else:
                session.keys = keys
                session.held, session.partials = (connection, [rest]), {}
                return opened
        if grown_held:
            session.held = (connection, grown_held[:MAX_PARTIALS])
        if grown:
            session.partials.pop(connection, None)
            session.partials[connection] = grown[:MAX_PARTIALS]
            while len(session.partials) > MAX_PARTIALS:
                session.partials.pop(next(iter(session.partials)))
        if grown_held or grown:
            return []
        raise Refused(
            "InvalidRecord",
            "the post holds a TLS record that does not authenticate for this session (forged, replayed or corrupted); "
            "it was discarded and the session is kept",
        )

    def _open_session(self, data: bytes) -> tuple[int, bytes]:
        """A new session, kept only when ``data`` holds a ClientHello the TLS stack answers."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.tls_context.wrap_bio(incoming, outgoing, server_side=True)
        session = Session(tls, incoming, outgoing, FrameDecoder(self.max_message))
        try:
            incoming.write(b"".join(self._records(session, data)))
        except Refused as exc:
            raise Refused("HandshakeFailed", f"TLS handshake failed ({exc.message})") from None
        try:
            tls.do_handshake()  # no secret is logged yet: OpenSSL logs the client's once its Finished checks out
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise Refused(
                "HandshakeFailed", f"TLS handshake failed ({reason}): speak TLS 1.3 with the policy's ciphersuite"
            ) from None
        if not outgoing.pending:
            raise Refused(
                "HandshakeFailed",
                "TLS handshake failed: the first post of a session must carry a whole TLS ClientHello",
            )
        with self._lock:
            pending = [(s.last_used, sid) for sid, s in self.sessions.items() if not s.handshake_done]
            if len(pending) >= MAX_HANDSHAKES:
                _, oldest = min(pending)
                log.warning("too many TLS handshakes in progress: dropping unauthenticated session %d", oldest)
                self._forget_secret(self.sessions.pop(oldest))
            session_id = secrets.randbelow(SESSION_ID_LIMIT - 1) + 1
            while session_id in self.sessions:
                session_id = secrets.randbelow(SESSION_ID_LIMIT - 1) + 1
            self.sessions[session_id] = session
        return session_id, outgoing.read()

    @staticmethod
    def _records(session: Session, data: bytes) -> list[memoryview]:
        """The whole TLS records ``data`` completes, after checking they are new records of this session.

        Nothing about the session changes when this refuses, so a stranger's post
        cannot end it. The tail of a record split across posts waits for the rest.
        """
        complete, rest = _split(session.partial + data if session.partial else data)
        # A record's last 16 bytes are its AEAD tag once encrypted: a replay repeats them, a new record's
        # differ (but for 2**-128), so they tell the two apart without hashing every byte.
        digests = [bytes(record[max(5, len(record) - 16) :]) for record in complete]
        if len(set(digests)) != len(digests) or not session.seen.isdisjoint(digests):
            raise Refused(
                "InvalidRecord",
                "the post repeats a TLS record this session already received (a replay); the session is kept",
            )
        session.seen.update(digests)
        session.partial = rest
        return complete

    def _drop(self, session_id: int, session: Session) -> None:
        with self._lock:
            if self.sessions.get(session_id) is session:
                del self.sessions[session_id]
        self._forget_secret(session)

    def _forget_secret(self, session: Session) -> None:
        """Drop the traffic secret OpenSSL logged for a session that ends before it took it.

        That is a handshake OpenSSL finished that the session then refused
        (identity, ciphersuite, TooManySessions); kept, such secrets would pile
        up until ``MAX_PENDING_SECRETS`` pushed out a pending client's.
        """
        if self.secret_log is not None and not session.handshake_done:
            self.secret_log.discard(session.tls)

    def _admit(self, session_id: int) -> None:
        """Make room for one more authenticated session by evicting only an idle one."""
        with self._lock:
            others = [
                (s.last_used, sid, s) for sid, s in self.sessions.items() if s.handshake_done and sid != session_id
            ]
            if len(others) < MAX_SESSIONS:
                return
            now = time.monotonic()
            idle = [
                (used, sid, s) for used, sid, s in others if now - used >= self.idle_seconds and not s.lock.locked()
            ]
            if not idle:
                raise Refused(
                    "TooManySessions",
                    f"{MAX_SESSIONS} TLS sessions are in use and none has been idle for {self.idle_seconds:g} s: "
                    "close one or retry later",
                )
            _, oldest, _ = min(idle, key=lambda item: item[0])
            log.warning(
                "too many TLS sessions: evicting session %d, idle for %.0f s",
                oldest,
                now - self.sessions[oldest].last_used,
            )
            del self.sessions[oldest]

    def _continue_handshake(self, session_id: int, session: Session) -> None:
        try:
            session.tls.do_handshake()
        except ssl.SSLWantReadError:
            return
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            if "CERTIFICATE" in reason.upper():
                raise Refused(
                    "IdentityRefused",
                    f"TLS handshake failed ({reason}): present one of the policy's identity certificates",
                ) from None
            raise Refused(
                "HandshakeFailed", f"TLS handshake failed ({reason}): speak TLS 1.3 with the policy's ciphersuite"
            ) from None
        cipher = session.tls.cipher()
        if cipher is None or cipher[0] != openssl_suite(self.policy.document["ciphersuite"]):
            raise Refused("IdentityRefused", f"ciphersuite {cipher and cipher[0]} is not the policy's")
        der = session.tls.getpeercert(binary_form=True)
        identity = self.policy.identity_for(der) if der else None
        if identity is None:
            raise Refused("IdentityRefused", "the peer certificate is not one of the policy's identities")
        self._admit(session_id)
        session.identity = identity
        session.handshake_done = True
        if self.secret_log is not None:
            session.keys = self.secret_log.take(session.tls, cipher[0])
            session.seen.clear()  # sequence numbers refuse replays from now on
        log.info("session %d: %s connected", session_id, identity[1].name)

    def _read(self, session_id: int, session: Session, opened: list[tuple[int, bytes | memoryview]]) -> None:
        """Act on the client's records, opened with its keys (OpenSSL, which never sees them, writes the replies)."""
        assert session.keys is not None
        for content_type, content in opened:
            if content_type == tls_records.CONTENT_APPLICATION_DATA:
                if self._requests(session, content):
                    return  # shut down
            elif content_type == tls_records.CONTENT_ALERT:
                if content[1:2] != b"\x00":  # not close_notify: the client aborted the session
                    raise Refused("InvalidRequest", f"TLS error: the client sent alert {content[1:2].hex() or '?'}")
                self._close(session_id, session)
                return
            elif content_type == tls_records.CONTENT_HANDSHAKE and (updates := tls_records.key_updates(content)):
                # the keys already follow it; the server answers a requested update as OpenSSL would
                if tls_records.UPDATE_REQUESTED in updates and not tls_records.answer_key_update(session.keys):
                    raise Refused("InvalidRequest", "TLS error: cannot answer the client's KeyUpdate")
            else:
                raise Refused("InvalidRequest", f"TLS error: unexpected record (content type {content_type})")

    def _requests(self, session: Session, data: bytes | memoryview) -> bool:
        """Answer every request ``data`` completes; True when one shut the runtime down."""
        try:
            requests = session.decoder.feed_pieces(data)
        except FrameTooLarge as exc:
            raise Refused("InvalidRequest", str(exc)) from None
        for request in requests:
            session.tls.write(frame(self._dispatch(session, request)))
            if not self.alive:
                return True
        return False

    def _close(self, session_id: int, session: Session) -> None:
        """close_notify: the client ended the session; answer with ours and forget it."""
        log.info("session %d closed by the client", session_id)
        try:
            session.tls.unwrap()
        except ssl.SSLError:
            pass
        self._drop(session_id, session)

    def _process(self, session_id: int, session: Session) -> None:
        """Read the client's records through OpenSSL (no client keys: the secret log is unavailable)."""
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
                self._close(session_id, session)
                return
            if self._requests(session, data):
                return

    # -- requests ----------------------------------------------------------------

    def _dispatch(self, session: Session, pieces: list[bytes | memoryview]) -> bytes:
        """Answer one request, given as the pieces its message arrived in: a write or append of a file
        goes to the file as those pieces (no copy); anything else is parsed whole by protobuf."""
        assert session.identity is not None
        identity_id, principal = session.identity
        store = messages.parse_data_request(pieces)
        if store is not None:
            kind, path, content = store
        else:
            try:
                request = messages.parse_request(b"".join(pieces))
            except DecodeError as exc:
                raise Refused("InvalidRequest", f"cannot parse the request: {exc}") from None
            kind = request.WhichOneof("message_oneof")
            if kind in ("write_file", "append_file"):
                stored = getattr(request, kind)
                path, content = stored.file_name, [stored.data]
        if kind == "request_policy_hash":
            return messages.response(policy_hash=self.policy.hash)
        if kind == "write_file":
            with self._file_access(path):
                self.fs.write(principal, path, content)
            log.info("%s wrote %s (%d bytes)", principal.name, path, sum(len(piece) for piece in content))
            return messages.response()
        if kind == "append_file":
            with self._file_access(path):
                self.fs.append(principal, path, content)
            return messages.response()
        if kind == "read_file":
            with self._file_access(request.read_file.file_name):
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

    @contextmanager
    def _file_access(self, path: str) -> Iterator[None]:
        """Hold the file lock for one client operation, first waiting while the running program can see ``path``."""
        target = self.fs.normalise(path)
        with self._files:
            self._files.wait_for(lambda: not _overlaps(target, self._visible))
            yield

    def _execute(self, participant: Principal, path: str) -> int:
        with self._run_lock:  # one program at a time (the engine's epoch is shared)
            with self._files:
                program, wasm, preopens, streams = self._prepare(participant, path)
                self._visible = (*(p.guest_path for p in preopens), *rights.STREAMS)
            before = self.fs.snapshot()
            try:
                log.info("%s executes %s", participant.name, program.name)
                code = self.executor.run(wasm, preopens, streams, program=program, monitor=self.fs.over_cap)
            except Refused as exc:
                if exc.code == "FileSystemFull":
                    with self._files:
                        reach = [p.host_dir for p in preopens if p.writable]
                        reach += [path for path in (streams.stdout, streams.stderr) if path is not None]
                        removed = self.fs.roll_back(before, reach)
                    log.warning(
                        "%s overflowed the file system: removed the %d files it made or changed",
                        program.name,
                        len(removed),
                    )
                raise
            finally:
                with self._files:
                    self._visible = ()
                    self._files.notify_all()
        log.info("%s exited with code %d", program.name, code)
        return code

    def _prepare(self, participant: Principal, path: str) -> tuple[Principal, bytes, list[Preopen], Streams]:
        program_path, wasm = self.fs.executable(participant, path)
        program = self.policy.programs.get(program_path)
        if program is None:
            raise Refused(
                "AccessDenied", f"{program_path} is not a program of this policy (programs[].program_file_name)"
            )
        streams = {}
        for name in ("stdout", "stderr"):
            target = self.fs.stream_path(name)
            target.write_bytes(b"")  # each execution starts with empty output streams
            streams[name] = target if name in program.grants else None
        stdin = (
            self.fs.stream_path("stdin")
            if "stdin" in program.grants and self.fs.stream_path("stdin").exists()
            else None
        )
        preopens = self.fs.preopens(program)
        return program, wasm, preopens, Streams(stdin=stdin, stdout=streams["stdout"], stderr=streams["stderr"])


def _split(buffer: bytes) -> tuple[list[memoryview], bytes]:
    """``buffer`` cut into whole TLS records (views of it, not copies) and the start of an unfinished one;
    refuse what is not TLS records."""
    complete, position, size, view = [], 0, len(buffer), memoryview(buffer)
    while size - position >= 5:
        kind, major, minor, length = struct.unpack_from(">BBBH", buffer, position)
        if kind not in TLS_RECORD_TYPES or major != 3 or minor > 4 or not 0 < length <= TLS_MAX_RECORD:
            raise Refused("InvalidRecord", "the post does not continue this session's TLS records; the session is kept")
        end = position + 5 + length
        if end > size:
            break
        complete.append(view[position:end])
        position = end
    return complete, buffer[position:]


def _overlaps(path: str, visible: tuple[str, ...]) -> bool:
    """Whether a client operation on ``path`` touches what a running program sees."""
    for seen in visible:
        if path == seen:
            return True
        if seen in rights.STREAMS or path in rights.STREAMS:
            continue
        if seen == "/" or path.startswith(seen + "/") or seen.startswith(path + "/"):
            return True
    return False

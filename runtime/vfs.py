"""The enclave's file system: files under a private scratch directory, reached only through rights.

Every client operation is checked against the calling principal's grants with
Veracruz's rules (README "Compatibility with Veracruz v1.3 and the original i-PoC"): the grant that applies is the
deepest granted ancestor directory; a full write to a path listed in
file_hashes must match its digest (checked before rights); appends to such a
path are refused; reading an empty file yields no result.

No operation follows a symbolic link (:mod:`runtime.nofollow`): a link a program
planted is refused, never resolved. The whole tree (files plus the standard
streams, counted by size, so sparse files count in full) is capped at
``max_bytes``; a client write past it, or a program growing the tree past it,
is refused with ``FileSystemFull``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ipoc import rights
from ipoc.errors import RightsError
from ipoc.policy import Principal
from ipoc.rights import Rights
from runtime import nofollow
from runtime.nofollow import NAME_MAX, LinkRefused
from runtime.refusal import Refused

Pieces = Sequence[bytes | bytearray | memoryview]  # a file's new bytes, in order (a message as it arrived)
WRITEV_MAX = 1024  # IOV_MAX on Linux: buffers one writev may take
# Bytes one write system call carries at most. Writing a file 2 MiB or more at a time cost ten times the CPU
# of 1 MiB here (2.5 against 0.25 s/GiB: the kernel then fills the page cache with large folios, whose fresh
# memory this VM's host faults in page by page); smaller calls cost the same as 1 MiB.
WRITE_STEP = 512 << 10


def write_all(fd: int, pieces: Pieces) -> None:
    """Write every byte of ``pieces`` to ``fd`` in order, copying none, in system calls of at most
    :data:`WRITE_STEP` bytes (a piece longer than that goes in parts)."""
    pending = [
        memoryview(piece).cast("B")[start : start + WRITE_STEP]
        for piece in pieces
        for start in range(0, memoryview(piece).nbytes, WRITE_STEP)
    ]
    first = 0
    while first < len(pending):
        batch, size = first, 0
        while batch < len(pending) and batch - first < WRITEV_MAX and size + len(pending[batch]) <= WRITE_STEP:
            size += len(pending[batch])
            batch += 1
        written = os.writev(fd, pending[first : max(batch, first + 1)])
        while first < len(pending) and written >= len(pending[first]):
            written -= len(pending[first])
            first += 1
        if written:  # a short write ended inside this piece
            pending[first] = pending[first][written:]


PATH_MAX = 4096
DEFAULT_MAX_FS_BYTES = 2 << 30  # Veracruz's file system lives in enclave memory: bounded by it
MAX_FS_ENV = "IPOC_RUNTIME_MAX_FS_MIB"  # a runtime process's own cap, in MiB
READ_CHUNK = 1 << 20


def max_bytes_from_environment() -> int:
    """The file-system cap for this runtime: ``$IPOC_RUNTIME_MAX_FS_MIB`` MiB, else 2 GiB."""
    text = os.environ.get(MAX_FS_ENV)
    if not text:
        return DEFAULT_MAX_FS_BYTES
    try:
        mib = int(text)
    except ValueError:
        mib = 0
    if mib <= 0:
        raise ValueError(f"{MAX_FS_ENV}={text!r}: give the enclave file system's cap as a positive number of MiB")
    return mib << 20


@dataclass(frozen=True)
class Preopen:
    host_dir: Path
    guest_path: str
    writable: bool
    rights: Rights = Rights(0)


class FileSystem:
    """Files live in ``<root>/fs``; the standard streams in ``<root>/streams``."""

    def __init__(self, root: Path, file_hashes: dict[str, str], *, max_bytes: int = DEFAULT_MAX_FS_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.root = root
        self.tree = root / "fs"
        self.streams = root / "streams"
        for directory in (self.tree, self.streams):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.file_hashes = file_hashes

    # -- path handling ----------------------------------------------------------

    @staticmethod
    def normalise(path: str) -> str:
        try:
            normal = rights.normalise_path(path)
        except RightsError as exc:
            raise Refused("InvalidRequest", exc.message) from None
        for part in normal.split("/"):
            if len(part.encode()) > NAME_MAX:
                raise Refused(
                    "InvalidRequest",
                    f"a path component of {len(part.encode())} bytes exceeds the {NAME_MAX}-byte limit: "
                    "shorten the name",
                )
        if len(normal.encode()) > PATH_MAX:
            raise Refused("InvalidRequest", f"the path is {len(normal.encode())} bytes: at most {PATH_MAX} are allowed")
        return normal

    @staticmethod
    def parts(enclave_path: str) -> list[str]:
        """The components of a normalised absolute enclave path."""
        return [p for p in enclave_path.split("/") if p]

    @contextmanager
    def _no_links(self, path: str) -> Iterator[None]:
        """Turn a link met on the way, or a file where a directory should be, into a refusal."""
        try:
            yield
        except LinkRefused as exc:
            raise Refused(
                "AccessDenied",
                f"{path} passes through the symbolic link {exc}: the runtime never follows links for clients",
            ) from None
        except NotADirectoryError:
            raise Refused("FileNotFound", f"a component of {path} is a file, not a directory") from None

    # -- the size cap -------------------------------------------------------------

    def _files(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every file (not directory) of the tree and streams, links unfollowed."""
        for top in (self.tree, self.streams):
            for directory, _, names in os.walk(top):
                for name in names:
                    path = os.path.join(directory, name)
                    try:
                        yield path, os.stat(path, follow_symlinks=False)
                    except FileNotFoundError:
                        continue

    def usage(self) -> int:
        """Bytes the enclave file system holds (apparent sizes: a sparse file counts in full)."""
        return sum(info.st_size for _, info in self._files())

    def over_cap(self) -> str | None:
        """Why the file system is over its cap, or None."""
        used = self.usage()
        if used > self.max_bytes:
            return f"the enclave file system holds {used} bytes, over its {self.max_bytes}-byte cap"
        return None

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        return {path: (info.st_ino, info.st_size, info.st_mtime_ns) for path, info in self._files()}

    def roll_back(self, before: dict[str, tuple[int, int, int]], within: list[Path]) -> list[str]:
        """Remove every file under ``within`` made or changed since ``before`` (a refused run leaves nothing half-done).

        Only the directories the program could reach are touched: other clients may
        have written elsewhere meanwhile.
        """
        roots = [str(p) for p in within]
        removed = []
        for path, info in list(self._files()):
            if not any(path == root or path.startswith(root + os.sep) for root in roots):
                continue
            if before.get(path) != (info.st_ino, info.st_size, info.st_mtime_ns):
                try:
                    os.unlink(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
        return removed

    def _check_room(self, path: str, adding: int, replacing: int) -> None:
        after = self.usage() - replacing + adding
        if after > self.max_bytes:
            raise Refused(
                "FileSystemFull",
                f"writing {adding} bytes to {path} would make the enclave file system {after} bytes, "
                f"over its {self.max_bytes}-byte cap; remove or shrink files first",
            )

    def exists(self, path: str) -> bool:
        """Whether ``path`` names something (a link counts, unfollowed)."""
        parts = self.parts(path)
        if not parts:
            return True
        with self._no_links(path):
            try:
                with nofollow.parent_dir(self.tree, parts) as parent:
                    os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return False
        return True

    # -- rights -----------------------------------------------------------------

    @staticmethod
    def _require(principal: Principal, path: str, needs: Rights, verb: str) -> None:
        grant = rights.covering_grant(principal.grants, path)
        if grant is None:
            raise Refused("AccessDenied", f"{principal.name} holds no rights on {path} (cannot {verb} it)")
        key, held = grant
        missing = needs & ~held
        if missing:
            raise Refused(
                "AccessDenied",
                f"{principal.name} may not {verb} {path}: "
                f"its rights on {key} ({rights.render(held)}) lack {rights.render(missing)}",
            )

    # -- client operations ------------------------------------------------------

    def write(self, principal: Principal, path: str, data: Pieces) -> None:
        """Create or replace ``path`` with the bytes of ``data`` (pieces, in order: a message as it arrived)."""
        path = self.normalise(path)
        self._check_hash(path, data, "the data written hashes to {actual}")
        self._authorise_store(principal, path, rights.WRITE_FILE_NEEDS, "write")
        self._store(path, data, append=False)

    def append(self, principal: Principal, path: str, data: Pieces) -> None:
        path = self.normalise(path)
        if path in self.file_hashes:
            raise Refused(
                "FileHashMismatch", f"{path} is listed in file_hashes: it must be written whole, not appended"
            )
        self._authorise_store(principal, path, rights.APPEND_FILE_NEEDS, "append to")
        self._store(path, data, append=True)

    def read(self, principal: Principal, path: str) -> bytes:
        path = self.normalise(path)
        if path in ("stdout", "stderr"):
            self._require(principal, path, rights.READ_STREAM_NEEDS, "read")
        else:
            self._require(principal, path, rights.READ_FILE_NEEDS, "read")
        if path in rights.STREAMS:
            stream = self.streams / path
            return stream.read_bytes() if stream.exists() else b""
        return self._load(path)

    def executable(self, principal: Principal, path: str) -> tuple[str, bytes]:
        """Check that ``principal`` may execute ``path``; return its bytes, checked against file_hashes.

        The bytes returned are the ones that run: checking the hash here (not only
        when a client wrote the file) also catches a program that overwrote another.
        """
        path = self.normalise(path)
        self._require(principal, path, rights.EXECUTE_NEEDS, "execute")
        try:
            wasm = self._load(path)
        except Refused as exc:
            if exc.code != "FileNotFound":
                raise
            raise Refused("FileNotFound", f"program {path} has not been written to the enclave") from None
        self._check_hash(
            path, [wasm], "its bytes now hash to {actual}: it was changed after it was written; write it again"
        )
        return path, wasm

    def _check_hash(self, path: str, data: Pieces, mismatch: str) -> None:
        """Refuse ``data`` for ``path`` when file_hashes names other bytes (``mismatch`` may use ``{actual}``)."""
        expected = self.file_hashes.get(path)
        if expected is None:
            return
        digest = hashlib.sha256()
        for piece in data:
            digest.update(piece)
        actual = digest.hexdigest()
        if actual != expected:
            raise Refused(
                "FileHashMismatch",
                f"{path} must hash to {expected} (file_hashes) but " + mismatch.format(actual=actual),
            )

    def _load(self, path: str) -> bytes:
        parts = self.parts(path)
        if not parts:
            raise Refused("FileNotFound", "/ is a directory, not a file")
        with self._no_links(path):
            try:
                with nofollow.parent_dir(self.tree, parts) as parent:
                    fd = nofollow.open_file(parent, parts[-1], os.O_RDONLY)
            except FileNotFoundError:
                raise Refused("FileNotFound", f"{path} does not exist in the enclave") from None
        with os.fdopen(fd, "rb", buffering=0) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise Refused("FileNotFound", f"{path} is a directory, not a file")
            if info.st_size > self.max_bytes:
                raise Refused("FileTooLarge", f"{path} holds {info.st_size} bytes, over the {self.max_bytes}-byte cap")
            data = bytearray()
            while chunk := handle.read(min(READ_CHUNK, self.max_bytes + 1 - len(data))):
                data += chunk
                if len(data) > self.max_bytes:
                    raise Refused("FileTooLarge", f"{path} grew past the {self.max_bytes}-byte cap while being read")
            return bytes(data)

    def _authorise_store(self, principal: Principal, path: str, needs: Rights, verb: str) -> None:
        """Writing stdin needs FD_WRITE on it; a file needs ``needs``, plus PATH_CREATE_FILE when new."""
        if path == "stdin":
            self._require(principal, path, rights.WRITE_STDIN_NEEDS, verb)
            return
        creating = not self.exists(path)
        self._require(principal, path, needs | (rights.CREATE_FILE_NEEDS if creating else Rights(0)), verb)

    def _size(self, path: str) -> int:
        host = self.streams / path if path in rights.STREAMS else self.tree.joinpath(*self.parts(path))
        try:
            info = os.stat(host, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        return info.st_size if stat.S_ISREG(info.st_mode) else 0

    def _store(self, path: str, data: Pieces, *, append: bool) -> None:
        self._check_room(path, sum(memoryview(piece).nbytes for piece in data), 0 if append else self._size(path))
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        if path in rights.STREAMS:
            fd = os.open(self.streams / path, flags, 0o666)
        else:
            parts = self.parts(path)
            if not parts:
                raise Refused("InvalidRequest", "/ is a directory")
            with self._no_links(path):
                with nofollow.parent_dir(self.tree, parts, create=True) as parent:
                    try:
                        fd = nofollow.open_file(parent, parts[-1], flags)
                    except IsADirectoryError:
                        raise Refused("InvalidRequest", f"{path} is a directory") from None
        try:
            write_all(fd, data)
        finally:
            os.close(fd)

    # -- what a program sees -----------------------------------------------------

    def preopens(self, program: Principal) -> list[Preopen]:
        """One pre-opened directory per granted path of the program, read-only unless it may write.

        A grant without PATH_OPEN (0, or FD_WRITE alone) opens nothing, so it is not
        pre-opened at all. The directories are made without following links: a link
        a program planted where a granted directory belongs fails the execution.
        """
        result = []
        for key, held in sorted(program.grants.items()):
            if key in rights.STREAMS or not held & Rights.PATH_OPEN:
                continue
            with self._no_links(key):
                try:
                    fd = nofollow.open_dir(self.tree, self.parts(key), create=True)
                except NotADirectoryError:
                    raise Refused(
                        "ExecutionFailed", f"{key} is granted to {program.name} as a directory but is a file"
                    ) from None
            os.close(fd)
            writable = bool(held & (Rights.FD_WRITE | Rights.PATH_CREATE_FILE))
            result.append(
                Preopen(host_dir=self.tree.joinpath(*self.parts(key)), guest_path=key, writable=writable, rights=held)
            )
        return result

    def stream_path(self, name: str) -> Path:
        return self.streams / name

"""The enclave's file system: files under a private scratch directory, reached only through rights.

Every client operation is checked against the calling principal's grants with
Veracruz's rules (behaviour reference §2(b)-(c)): the grant that applies is the
deepest granted ancestor directory; a full write to a path listed in
file_hashes must match its digest (checked before rights); appends to such a
path are refused; reading an empty file yields no result.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ipoc import rights as R
from ipoc.errors import RightsError
from ipoc.policy import Principal
from runtime.refusal import Refused


@dataclass(frozen=True)
class Preopen:
    host_dir: Path
    guest_path: str
    writable: bool


class FileSystem:
    """Files live in ``<root>/fs``; the standard streams in ``<root>/streams``."""

    def __init__(self, root: Path, file_hashes: dict[str, str]) -> None:
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
            return R.normalise_path(path)
        except RightsError as exc:
            raise Refused("InvalidRequest", exc.message) from None

    def host_path(self, enclave_path: str) -> Path:
        """Map an absolute enclave path into the tree, refusing anything that escapes it."""
        if enclave_path in R.STREAMS:
            return self.streams / enclave_path
        host = self.tree / enclave_path.lstrip("/")
        real = Path(os.path.realpath(host))
        tree = Path(os.path.realpath(self.tree))
        if real != tree and tree not in real.parents:
            raise Refused("AccessDenied", f"{enclave_path} resolves outside the enclave file system")
        return host

    # -- rights -----------------------------------------------------------------

    @staticmethod
    def _require(principal: Principal, path: str, needs: R.Rights, verb: str) -> None:
        grant = R.covering_grant(principal.grants, path)
        if grant is None:
            raise Refused("AccessDenied", f"{principal.name} holds no rights on {path} (cannot {verb} it)")
        key, held = grant
        missing = needs & ~held
        if missing:
            raise Refused(
                "AccessDenied",
                f"{principal.name} may not {verb} {path}: its rights on {key} ({R.render(held)}) lack {R.render(missing)}",
            )

    # -- client operations ------------------------------------------------------

    def write(self, principal: Principal, path: str, data: bytes) -> None:
        path = self.normalise(path)
        expected = self.file_hashes.get(path)
        if expected is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise Refused(
                    "FileHashMismatch",
                    f"{path} must hash to {expected} (file_hashes) but the data written hashes to {actual}",
                )
        self._authorise_store(principal, path, R.WRITE_FILE_NEEDS, "write")
        self._store(path, data, append=False)

    def append(self, principal: Principal, path: str, data: bytes) -> None:
        path = self.normalise(path)
        if path in self.file_hashes:
            raise Refused("FileHashMismatch", f"{path} is listed in file_hashes: it must be written whole, not appended")
        self._authorise_store(principal, path, R.APPEND_FILE_NEEDS, "append to")
        self._store(path, data, append=True)

    def read(self, principal: Principal, path: str) -> bytes:
        path = self.normalise(path)
        if path in ("stdout", "stderr"):
            self._require(principal, path, R.READ_STREAM_NEEDS, "read")
        else:
            self._require(principal, path, R.READ_FILE_NEEDS, "read")
        host = self.host_path(path)
        if not host.exists():
            if path in R.STREAMS:
                return b""
            raise Refused("FileNotFound", f"{path} does not exist in the enclave")
        if host.is_dir():
            raise Refused("FileNotFound", f"{path} is a directory, not a file")
        return host.read_bytes()

    def executable(self, principal: Principal, path: str) -> tuple[str, Path]:
        """Check that ``principal`` may execute ``path`` and that it exists; return its host path."""
        path = self.normalise(path)
        self._require(principal, path, R.EXECUTE_NEEDS, "execute")
        host = self.host_path(path)
        if not host.is_file():
            raise Refused("FileNotFound", f"program {path} has not been written to the enclave")
        return path, host

    def _authorise_store(self, principal: Principal, path: str, needs: R.Rights, verb: str) -> None:
        """Writing stdin needs FD_WRITE on it; a file needs ``needs``, plus PATH_CREATE_FILE when new."""
        if path == "stdin":
            self._require(principal, path, R.WRITE_STDIN_NEEDS, verb)
            return
        creating = not self.host_path(path).exists()
        self._require(principal, path, needs | (R.CREATE_FILE_NEEDS if creating else R.Rights(0)), verb)

    def _store(self, path: str, data: bytes, *, append: bool) -> None:
        host = self.host_path(path)
        if host.is_dir():
            raise Refused("InvalidRequest", f"{path} is a directory")
        host.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(host, "ab" if append else "wb") as handle:
            handle.write(data)

    # -- what a program sees -----------------------------------------------------

    def preopens(self, program: Principal) -> list[Preopen]:
        """One pre-opened directory per granted path of the program, read-only unless it may write."""
        result = []
        for key, held in sorted(program.grants.items()):
            if key in R.STREAMS:
                continue
            host = self.host_path(key)
            if host.exists() and not host.is_dir():
                raise Refused("ExecutionFailed", f"{key} is granted to {program.name} as a directory but is a file")
            host.mkdir(parents=True, exist_ok=True, mode=0o700)
            writable = bool(held & (R.Rights.FD_WRITE | R.Rights.PATH_CREATE_FILE))
            result.append(Preopen(host_dir=host, guest_path=key, writable=writable))
        return result

    def stream_path(self, name: str) -> Path:
        return self.streams / name

"""The local stack's durable state: moto's DynamoDB items and S3 objects, written through to files.

moto keeps everything in memory. Here every write moto acknowledges is also
written to a file (written in full, fsync'd, then renamed over the old one)
before moto answers, so what the stack answered 2xx for survives ``ipoc local
down``/``up`` and a ``kill -9`` at any moment. One file per item and per object:
an overwrite replaces a file, a delete removes it, nothing grows with every
write. A change is made in memory under moto's lock with a sequence number; its
file is written after the request lets go of that lock (a later change of the
same file is never overwritten by an earlier one), so other requests do not wait
behind a large upload's ``fsync``.

Layout under ``$IPOC_HOME/local/state/`` (``LAYOUT_VERSION`` 1)::

    FORMAT                                  {"layout": "ipoc-local-state", "version": 1}
    dynamodb/<table>/<sha256(key)>.json     {"key": ..., "item": ...} (DynamoDB JSON)
    s3/<bucket>/BUCKET.json                 {"name": ..., "region": ...}
    s3/<bucket>/<sha256(key)>.object        one JSON header line ({"key", "size", "etag", ...}), then the bytes

Restored objects are not copied into memory: moto reads their bytes from the
file when asked (``StoredBytes``, which holds no file descriptor between
reads), so starting with a GiB of artifacts costs reading one header line per
object, and thousands of objects use no descriptors. Step Functions executions, IAM and Lambda are not kept: the stack
registers its workflow at every start and reconciles the instances whose
execution did not survive (``local.reconcile``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from local.moto_patches import LOCK, dynamodb_json_default
from local.patching import mark

log = logging.getLogger(__name__)

LAYOUT = "ipoc-local-state"
LAYOUT_VERSION = 1
FORMAT_FILE = "FORMAT"
BUCKET_FILE = "BUCKET.json"
OBJECT_SUFFIX = ".object"
COPY_CHUNK = 8 * 1024 * 1024


class StateLayoutError(RuntimeError):
    """The state directory was written by another layout version (or is not ours)."""


# ---------------------------------------------------------------------------
# Files


def write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` so that a crash leaves either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_durably(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class StoredBytes(io.RawIOBase):
    """A read-only file over a stored object's bytes (after its header line).

    It holds no file descriptor: each read opens the file, ``pread``s and closes it, so a stack
    that restored thousands of objects does not run out of descriptors. A read checks the file
    is still the one restored (device and inode): a file replaced since is refused, never read
    as this object's bytes (moto disposes a replaced object before its new file is renamed in).
    """

    def __init__(self, path: Path, offset: int, size: int, identity: tuple[int, int] | None = None) -> None:
        super().__init__()
        self._path = path
        self._offset, self._size, self._position = offset, size, 0
        if identity is None:
            facts = os.stat(path)
            identity = (facts.st_dev, facts.st_ino)
        self._identity = identity

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + position)
        return self._position

    def tell(self) -> int:
        self._check_open()
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        end = self._size if size is None or size < 0 else min(self._size, self._position + size)
        if end <= self._position:
            return b""
        fd = os.open(self._path, os.O_RDONLY)
        try:
            facts = os.fstat(fd)
            if (facts.st_dev, facts.st_ino) != self._identity:
                raise OSError(f"{self._path} was replaced since this object was restored")
            data = os.pread(fd, end - self._position, self._offset + self._position)
        finally:
            os.close(fd)
        if len(data) != end - self._position:
            raise OSError(f"{self._path} is shorter than its header says ({self._offset + self._size} bytes)")
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


# ---------------------------------------------------------------------------
# The state directory


class DurableState:
    """Attach write-through persistence to moto's backends in this process, and restore what was kept."""

    def __init__(self, root: Path, region: str) -> None:
        self.root = root
        self.region = region
        self.tables_dir = root / "dynamodb"
        self.buckets_dir = root / "s3"
        self._sequence = itertools.count()  # taken under moto's lock: the order of changes in memory
        self._locks_lock = threading.Lock()
        self._item_locks: dict[Path, threading.Lock] = {}
        self._written: dict[Path, int] = {}  # the sequence number on disk, per item file

    @classmethod
    def open(cls, root: Path, region: str, *, fresh: bool = False) -> DurableState:
        """Open (or create) the state directory; refuse one of another layout version."""
        if fresh and root.exists():
            shutil.rmtree(root)
        remove_partial_writes(root)
        check_layout(root)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = root / FORMAT_FILE
        if not marker.exists():
            write_atomically(marker, [json.dumps({"layout": LAYOUT, "version": LAYOUT_VERSION}).encode() + b"\n"])
        state = cls(root, region)
        state.tables_dir.mkdir(exist_ok=True)
        state.buckets_dir.mkdir(exist_ok=True)
        return state

    # -- DynamoDB ------------------------------------------------------------------

    def _dynamodb(self) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[DEFAULT_ACCOUNT_ID][self.region]

    def snapshot_item(self, table_name: str, key: dict[str, Any]) -> tuple[Path, int, bytes | None]:
        """Under moto's lock: the item's file, this change's sequence number and the bytes to write
        (None: the item is gone)."""
        backend = self._dynamodb()
        table = backend.get_table(table_name)
        key = {name: key[name] for name in (table.hash_key_attr, table.range_key_attr) if name}
        directory = self.tables_dir / table_name
        directory.mkdir(exist_ok=True)
        item = backend.get_item(table_name, key)
        # binary values are bytes in moto's item: kept as DynamoDB JSON has them (base64), which restoring takes
        data = (
            None
            if item is None
            else json.dumps({"key": key, "item": item.to_json()["Attributes"]}, default=dynamodb_json_default).encode()
        )
        return directory / f"{_digest(key)}.json", next(self._sequence), data

    def write_item(self, path: Path, sequence: int, data: bytes | None) -> None:
        self.commit(path, sequence, None if data is None else [data])

    def take_sequence(self) -> int:
        """Under moto's lock: the order of this change among the changes in memory."""
        return next(self._sequence)

    def commit(
        self, path: Path, sequence: int, chunks: Iterable[bytes] | None, then: Callable[[bool], None] | None = None
    ) -> None:
        """Outside moto's lock (other requests go on meanwhile): write one change (None: remove the
        file), unless a later change of the same file is already on disk. Returns once the change (or
        a later one) is durable. ``then(written)`` runs while no other change of this file can start."""
        with self._locks_lock:
            lock = self._item_locks.setdefault(path, threading.Lock())
        with lock:
            written = self._written.get(path, -1) < sequence
            if written:
                if chunks is None:
                    remove_durably(path)
                else:
                    write_atomically(path, chunks)
                self._written[path] = sequence
            if then is not None:
                then(written)

    def restore_items(self) -> dict[str, int]:
        """Put every kept item back into the tables that exist now; return counts per table."""
        backend = self._dynamodb()
        counts: dict[str, int] = {}
        for directory in sorted(p for p in self.tables_dir.iterdir() if p.is_dir()):
            if directory.name not in backend.tables:
                log.warning("kept items of table %s ignored: the stack no longer creates that table", directory.name)
                continue
            table = backend.tables[directory.name]
            for path in directory.glob("*.json"):
                table.put_item(json.loads(path.read_bytes())["item"])
                counts[directory.name] = counts.get(directory.name, 0) + 1
        return counts

    def attach_dynamodb(self) -> None:
        """Wrap moto's DynamoDB writes: the change reaches the file before moto answers."""
        from moto.dynamodb.models import DynamoDBBackend

        def keys_of(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
            """The (table name, key or item) pairs a moto write touches, as moto was given them."""
            if name == "put_item":
                return [
                    (
                        kwargs.get("table_name", args[0] if args else None),
                        kwargs.get("item_attrs", args[1] if len(args) > 1 else None),
                    )
                ]
            if name in ("update_item", "delete_item"):
                return [
                    (
                        kwargs.get("table_name", args[0] if args else None),
                        kwargs.get("key", args[1] if len(args) > 1 else None),
                    )
                ]
            items = kwargs.get("transact_items", args[0] if args else [])
            touched = []
            for entry in items:
                kind, operation = next(iter(entry.items()))
                if kind in ("Put", "Update", "Delete"):
                    touched.append((operation["TableName"], operation.get("Key") or operation.get("Item")))
            return touched

        for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
            original = getattr(DynamoDBBackend, name)
            if getattr(original, "_ipoc_durable", None) is self:
                continue
            setattr(
                DynamoDBBackend, name, self._through(name, getattr(original, "_ipoc_original", original), keys_of, LOCK)
            )

    def _through(
        self, name: str, method: Callable[..., Any], keys_of: Callable[..., Any], lock: Any
    ) -> Callable[..., Any]:
        state = self

        @functools.wraps(method)
        def wrapper(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:  # moto's own lock (local.moto_patches): the snapshot is of exactly this change
                result = method(backend, *args, **kwargs)
                changes = [state.snapshot_item(table_name, key) for table_name, key in keys_of(name, args, kwargs)]
            for change in changes:  # durable before moto answers; sequence numbers keep the last change last
                state.write_item(*change)
            return result

        mark(wrapper, "_ipoc_durable", self)
        mark(wrapper, "_ipoc_original", method)
        return wrapper

    # -- S3 --------------------------------------------------------------------------

    def _s3(self) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]

    def attach_s3(self) -> None:
        """Every bucket created from now on keeps its objects in files."""
        from moto.s3.models import S3Backend

        state = self
        create, delete = S3Backend.create_bucket, S3Backend.delete_bucket
        create = getattr(create, "_ipoc_original", create)
        delete = getattr(delete, "_ipoc_original", delete)

        @functools.wraps(create)
        def create_bucket(backend: Any, bucket_name: str, region_name: str, *args: Any, **kwargs: Any) -> Any:
            bucket = create(backend, bucket_name, region_name, *args, **kwargs)
            directory = state.buckets_dir / bucket_name
            directory.mkdir(exist_ok=True)
            marker, facts = directory / BUCKET_FILE, json.dumps({"name": bucket_name, "region": region_name}).encode()
            if not _holds(marker, facts):  # a restored bucket's is already on disk (no fsyncs at every start)
                write_atomically(marker, [facts])
            bucket.keys = durable_key_store(state, directory, bucket.keys)
            return bucket

        @functools.wraps(delete)
        def delete_bucket(backend: Any, bucket_name: str) -> Any:
            deleted = delete(backend, bucket_name)
            if deleted is not None:
                shutil.rmtree(state.buckets_dir / bucket_name, ignore_errors=True)
                _fsync_dir(state.buckets_dir)
            return deleted

        mark(create_bucket, "_ipoc_original", create)
        mark(delete_bucket, "_ipoc_original", delete)
        # moto patched in place (functools.wraps gives the wrappers a type of their own)
        S3Backend.create_bucket = create_bucket  # type: ignore[method-assign,assignment]
        S3Backend.delete_bucket = delete_bucket  # type: ignore[method-assign,assignment]

    def restore_buckets(self) -> dict[str, int]:
        """Create every kept bucket with its objects (bytes read from their files on demand)."""
        backend = self._s3()
        counts: dict[str, int] = {}
        for marker in sorted(self.buckets_dir.glob(f"*/{BUCKET_FILE}")):
            facts = json.loads(marker.read_bytes())
            bucket = backend.create_bucket(facts["name"], facts["region"])
            counts[facts["name"]] = bucket.keys.restore(backend, bucket)
        return counts


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def remove_partial_writes(root: Path) -> int:
    """Delete what a writer killed mid-write left: ``write_atomically``'s temporary files are never state (the
    rename is the commit), only disk used (an object's size, each) and, for the first FORMAT, an unreadable
    state directory. One stack uses a state directory at a time, so none is being written now."""
    removed = 0
    if root.exists():
        for leftover in root.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def check_layout(root: Path) -> None:
    """Refuse state of another layout version with what to do about it."""
    marker = root / FORMAT_FILE
    if not root.exists() or not any(root.iterdir()):
        return
    try:
        facts = json.loads(marker.read_text())
    except (OSError, ValueError):
        raise StateLayoutError(
            f"{root} holds no readable {FORMAT_FILE} file, so it is not local stack state this release can read; "
            "move it away, or start empty with `ipoc local up --fresh` (which deletes it)"
        ) from None
    if facts.get("layout") != LAYOUT or facts.get("version") != LAYOUT_VERSION:
        raise StateLayoutError(
            f"{root} has state layout {facts.get('layout')!r} version {facts.get('version')!r}; this release reads "
            f"{LAYOUT!r} version {LAYOUT_VERSION} and has no migration from it: use the release that wrote it, "
            "or start empty with `ipoc local up --fresh` (which deletes it)"
        )


def durable_key_store(state: DurableState, directory: Path, current: Any) -> Any:
    """A bucket's key store (moto's ``_VersionedKeyStore``) that writes objects through to ``directory``."""
    from moto.s3.utils import _VersionedKeyStore

    class DurableKeyStore(_VersionedKeyStore):
        """Latest versions only: our buckets are not versioned.

        A change swaps the key's versions in memory under moto's lock and takes its sequence number
        there; its file is written (bytes, ``fsync``, rename) once the request lets go of the lock, and
        the request answers after that. The versions it replaced are disposed once the new file is
        in place; a failed write puts them back (if no later change replaced them meanwhile).
        """

        def setlist(self, key: Any, list_: Any) -> Any:
            versions = list(list_) if isinstance(list_, (list, tuple)) else [list_]
            self._change(key, versions or None)

        def __setitem__(self, key: str, value: Any) -> Any:
            self._change(key, [*(self.getlist(key) or []), value])

        def pop(self, key: str) -> None:  # type: ignore[override]  # moto's store: pop(key), never a default
            if dict.__contains__(self, key):
                self._change(key, None)
            else:
                dict.pop(self, key)  # moto's KeyError

        def __delitem__(self, key: str) -> None:
            if not dict.__contains__(self, key):
                raise KeyError(key)
            self._change(key, None)

        def _change(self, key: str, versions: list[Any] | None) -> None:
            path = _object_path(directory, key)
            with LOCK:
                previous = dict.get(self, key)
                if versions is None:
                    dict.pop(self, key, None)
                else:
                    dict.__setitem__(self, key, versions)
                sequence = state.take_sequence()
                replaced = [v for v in previous or [] if not any(v is kept for kept in versions or [])]
                latest = versions[-1] if versions else None
                chunks = _object_chunks(key, latest) if latest is not None and _is_object(latest) else None
                if versions and chunks is None:  # a delete marker: versioned buckets are not kept
                    for version in replaced:
                        _dispose(version)
                    return

                def settled(written: bool) -> None:
                    for version in replaced:
                        _dispose(version)

                def commit() -> None:
                    try:
                        state.commit(path, sequence, chunks, settled)
                    except BaseException:
                        with LOCK:  # undo in memory what could not be kept, unless a later change replaced it
                            if dict.get(self, key) is versions:
                                if previous is None:
                                    dict.pop(self, key, None)
                                else:
                                    dict.__setitem__(self, key, previous)
                                for version in versions or []:
                                    _dispose(version)
                            else:
                                for version in replaced:
                                    _dispose(version)
                        raise

                LOCK.after_release(commit)

        def restore(self, backend: Any, bucket: Any) -> int:
            count = 0
            for path in directory.glob(f"*{OBJECT_SUFFIX}"):
                key = _read_object(path, backend, bucket)
                dict.__setitem__(self, key.name, [key])
                count += 1
            return count

    store = DurableKeyStore()
    for name in list(current.keys()):
        dict.__setitem__(store, name, current.getlist(name))
    return store


def _object_path(directory: Path, key: str) -> Path:
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()}{OBJECT_SUFFIX}"


def _is_object(version: Any) -> bool:
    from moto.s3.models import FakeKey

    return isinstance(version, FakeKey)


def _dispose(version: Any) -> None:
    if hasattr(version, "dispose"):
        version.dispose()


def _object_chunks(key: str, fake_key: Any) -> Iterable[bytes]:
    """The object's file: one JSON header line, then its bytes. The header is taken now (under moto's
    lock); the bytes are read when written, a chunk at a time under the key's own lock (a GET of the
    same key, which takes that lock too, waits a chunk, not the whole write)."""
    header = {
        "key": key,
        "size": fake_key.size,
        "etag": fake_key.etag.strip('"'),
        "last_modified": fake_key.last_modified.isoformat(),
        "metadata": dict(fake_key.metadata),
        "checksum_algorithm": fake_key.checksum_algorithm,
        "checksum_value": fake_key.checksum_value,
    }

    def chunks() -> Iterable[bytes]:
        yield json.dumps(header).encode() + b"\n"
        position = 0
        while True:
            with fake_key.lock:
                buffer = fake_key._value_buffer
                buffer.seek(position)
                chunk = buffer.read(COPY_CHUNK)
            if not chunk:
                return
            position += len(chunk)
            yield chunk

    return chunks()


def _read_object(path: Path, backend: Any, bucket: Any) -> Any:
    import datetime as _dt

    from moto.s3.models import FakeKey

    with open(path, "rb") as handle:
        line = handle.readline()
        facts = os.fstat(handle.fileno())
    header = json.loads(line)
    key = FakeKey(
        name=header["key"],
        value=b"",
        account_id=backend.account_id,
        region_name=bucket.region_name,
        bucket_name=bucket.name,
        etag=header["etag"],
        checksum_value=header.get("checksum_value"),
    )
    key._value_buffer.close()
    # moto declares a SpooledTemporaryFile; ours reads the object's file on demand (the same file-like calls)
    stored = StoredBytes(path, len(line), header["size"], (facts.st_dev, facts.st_ino))
    key._value_buffer = stored  # type: ignore[assignment]
    key.contentsize = header["size"]
    key.checksum_algorithm = header.get("checksum_algorithm")
    key.set_metadata(dict(header.get("metadata") or {}), replace=True)
    key.last_modified = _dt.datetime.fromisoformat(header["last_modified"])
    return key

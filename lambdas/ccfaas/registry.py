"""The function registry: function policies in DynamoDB, program and data-file binaries in S3.

A binary counts as loaded only after its bytes hashed to the policy's
``pi_hash``; on a mismatch nothing is kept. Small binaries come in the request
body; large ones go straight to S3 through a presigned PUT and are verified
when the client says the upload is complete. That PUT is the one part of a
multipart upload, so completing (or failing, or replacing) the upload closes
it and the URL stops working; a presigned URL alone cannot be revoked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from ipoc import schemas
from ipoc.errors import Conflict, HashMismatch, NotFound, PayloadTooLarge, ValidationError
from ipoc.rights import normalise_path
from lambdas.shared.config import settings
from lambdas.shared.stores import ArtifactStore, FunctionRecord, FunctionStore, InstanceStore, now_iso

Kind = Literal["program", "data_file"]
KINDS: tuple[Kind, ...] = ("program", "data_file")
NOT_LOADED, UPLOADING, LOADED = "not loaded", "uploading", "loaded"
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def encode_path(path: str) -> str:
    """The URL segment for an enclave path: standard base64, as the original i-PoC."""
    return base64.b64encode(path.encode()).decode()


def decode_path(segment: str) -> str:
    """Accept standard or URL-safe base64, padded or not."""
    text = segment.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            f"{segment!r} is not the base64 of an enclave path (e.g. {encode_path('/program/detector.wasm')})"
        ) from None


@dataclass
class Registry:
    functions: FunctionStore
    artifacts: ArtifactStore
    instances: InstanceStore

    @classmethod
    def from_settings(cls) -> "Registry":
        return cls(FunctionStore(), ArtifactStore(), InstanceStore())

    # -- functions ---------------------------------------------------------------

    def register(self, policy: Any) -> dict[str, Any]:
        schemas.validate("function", policy)
        files = _declared_files(policy)
        record = FunctionRecord(
            name=policy["function"],
            policy=policy,
            files={path: {"kind": kind, "pi_hash": pi_hash, "status": NOT_LOADED} for path, (kind, pi_hash) in files.items()},
            created_at=now_iso(),
        )
        self.functions.create(record)
        return policy

    def names(self) -> list[str]:
        return self.functions.names()

    def get(self, name: str) -> FunctionRecord:
        record = self.functions.get(name)
        if record is None:
            raise NotFound(f"function {name!r} is not registered")
        return record

    def delete(self, name: str) -> None:
        record = self.get(name)
        live = self.instances.live_for_function(name)
        if live:
            raise Conflict(f"function {name!r} has live instances ({', '.join(sorted(live))}); delete them first")
        for key in {entry["key"] for entry in record.files.values() if entry.get("key")}:
            self.artifacts.delete(key)
        for entry in record.files.values():
            if entry.get("upload"):
                self._close_upload(entry["upload"])
        self.functions.delete(name)

    # -- files -------------------------------------------------------------------

    def _file(self, name: str, kind: Kind, segment: str) -> tuple[FunctionRecord, str, dict[str, Any]]:
        record = self.get(name)
        path = decode_path(segment)
        entry = record.files.get(path)
        if entry is None or entry["kind"] != kind:
            declared = [p for p, e in record.files.items() if e["kind"] == kind]
            raise NotFound(
                f"{kind.replace('_', ' ')} {path!r} is not declared by function {name!r}"
                + (f" (it declares {', '.join(declared)})" if declared else "")
            )
        return record, path, entry

    def _limit(self, kind: Kind) -> int:
        return settings().max_program_size if kind == "program" else settings().max_data_file_size

    def file_status(self, name: str, kind: Kind, segment: str) -> dict[str, Any]:
        _, path, entry = self._file(name, kind, segment)
        return describe(path, entry)

    def list_files(self, name: str, kind: Kind) -> list[dict[str, Any]]:
        record = self.get(name)
        return [describe(path, entry) for path, entry in record.files.items() if entry["kind"] == kind]

    def upload(self, name: str, kind: Kind, segment: str, body: bytes) -> dict[str, Any]:
        """A direct upload: hash-check the body, keep it only if it matches."""
        _, path, entry = self._file(name, kind, segment)
        if entry["status"] == LOADED:
            raise Conflict(f"{path} of function {name!r} is already loaded; DELETE it first to replace it")
        limit = self._limit(kind)
        if len(body) > limit:
            raise PayloadTooLarge(f"{path} is {len(body)} bytes; the limit for a {kind} is {limit}")
        if len(body) > settings().direct_upload_limit:
            raise PayloadTooLarge(
                f"{path} is {len(body)} bytes, more than a direct upload carries ({settings().direct_upload_limit}); "
                f"POST /function/{name}/{kind}/{segment}/upload for a presigned upload"
            )
        actual = hashlib.sha256(body).hexdigest()
        _check_hash(path, entry["pi_hash"], actual)
        key = ArtifactStore.artifact_key(name, actual)
        self.artifacts.put(key, body)
        return self._mark_loaded(name, path, entry, key, len(body))

    def start_upload(self, name: str, kind: Kind, segment: str) -> dict[str, Any]:
        """Hand out a presigned PUT for a large binary, staged until it is verified."""
        _, path, entry = self._file(name, kind, segment)
        if entry["status"] == LOADED:
            raise Conflict(f"{path} of function {name!r} is already loaded; DELETE it first to replace it")
        if entry.get("upload"):
            self._close_upload(entry["upload"])  # a new upload replaces an abandoned one, and its URL stops working
        expires = settings().presigned_expiry
        key = ArtifactStore.staging_key(name, uuid.uuid4().hex)
        upload_id, url = self.artifacts.start_upload(key, expires)
        staged = {**entry, "status": UPLOADING, "upload": {"key": key, "upload_id": upload_id, "started_at": now_iso()}}
        if not self.functions.update_file(name, path, staged, unless_status=LOADED):
            self.artifacts.abort_upload(key, upload_id)
            raise Conflict(f"{path} of function {name!r} was loaded meanwhile")
        return {
            "path": path,
            "upload_url": url,
            "method": "PUT",
            "expires_in": expires,
            "complete": f"/function/{name}/{kind}/{segment}/upload/complete",
        }

    def complete_upload(self, name: str, kind: Kind, segment: str) -> dict[str, Any]:
        """Verify a staged upload by streaming it through sha256; keep it only if it matches."""
        _, path, entry = self._file(name, kind, segment)
        if entry["status"] == LOADED:
            raise Conflict(f"{path} of function {name!r} is already loaded")
        upload = entry.get("upload")
        if not upload:
            raise NotFound(f"no upload in progress for {path}; POST /function/{name}/{kind}/{segment}/upload first")
        staging = upload["key"]
        cleared = {k: v for k, v in entry.items() if k != "upload"} | {"status": NOT_LOADED}
        if "upload_id" not in upload:  # started before uploads were multipart: its URL is a plain PUT, still open
            self.artifacts.delete(staging)
            self.functions.update_file(name, path, cleared, unless_status=LOADED)
            raise Conflict(f"the upload of {path} was started by an older version; POST .../upload again")
        if not self.artifacts.finish_upload(staging, upload["upload_id"]):
            raise NotFound(f"nothing was uploaded for {path} yet: PUT the bytes to the upload_url, then complete")
        # From here the upload is closed: its URL answers NoSuchUpload, whatever the outcome below.
        limit = self._limit(kind)
        actual, size = self.artifacts.hash_object(staging, limit)
        if size > limit or actual != entry["pi_hash"]:
            self.artifacts.delete(staging)
            self.functions.update_file(name, path, cleared, unless_status=LOADED)
            if size > limit:
                raise PayloadTooLarge(f"{path} is over the {limit}-byte limit for a {kind}; nothing was kept")
            _check_hash(path, entry["pi_hash"], actual)
        key = ArtifactStore.artifact_key(name, actual)
        self.artifacts.copy(staging, key)
        self.artifacts.delete(staging)
        return self._mark_loaded(name, path, cleared, key, size)

    def delete_file(self, name: str, kind: Kind, segment: str) -> dict[str, Any]:
        record, path, entry = self._file(name, kind, segment)
        if entry["status"] != LOADED:
            raise NotFound(f"{path} of function {name!r} is not loaded")
        live = self.instances.live_for_function(name)
        if live:
            raise Conflict(f"function {name!r} has live instances ({', '.join(sorted(live))}); delete them first")
        cleared = {"kind": entry["kind"], "pi_hash": entry["pi_hash"], "status": NOT_LOADED}
        self.functions.update_file(name, path, cleared)
        shared = any(e.get("key") == entry["key"] for p, e in record.files.items() if p != path)
        if not shared:
            self.artifacts.delete(entry["key"])
        return describe(path, cleared)

    def _close_upload(self, upload: dict[str, Any]) -> None:
        """End an upload in progress: its URL stops working and nothing it wrote is kept."""
        if "upload_id" in upload:
            self.artifacts.abort_upload(upload["key"], upload["upload_id"])
        self.artifacts.delete(upload["key"])

    def _mark_loaded(self, name: str, path: str, entry: dict[str, Any], key: str, size: int) -> dict[str, Any]:
        loaded = {
            "kind": entry["kind"], "pi_hash": entry["pi_hash"], "status": LOADED,
            "size": size, "key": key, "loaded_at": now_iso(),
        }
        if not self.functions.update_file(name, path, loaded, unless_status=LOADED):
            # A concurrent upload of the same verified bytes won: same key, same content, nothing lost.
            raise Conflict(f"{path} of function {name!r} is already loaded")
        return describe(path, loaded)


def describe(path: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The public view of one file (no storage keys)."""
    view = {"name": encode_path(path), "path": path, "kind": entry["kind"], "status": entry["status"], "pi_hash": entry["pi_hash"]}
    if entry["status"] == LOADED:
        view["size"] = entry.get("size")
        view["loaded_at"] = entry.get("loaded_at")
    return view


def _check_hash(path: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise HashMismatch(f"{path} must hash to {expected} (pi_hash) but the bytes received hash to {actual}; nothing was kept")


def _declared_files(policy: dict[str, Any]) -> dict[str, tuple[Kind, str]]:
    """Check the semantic rules the schema cannot express; return {path: (kind, pi_hash)}."""
    name = policy["function"]
    if not _FUNCTION_NAME.match(name):
        raise ValidationError(
            "$.function must be 1-128 characters of letters, digits, '_', '.' or '-', starting with a letter or digit",
            path="$.function",
        )
    if policy["max_memory_mib"] <= 0:
        raise ValidationError("$.max_memory_mib must be positive", path="$.max_memory_mib")
    if policy["execution_strategy"] not in ("JIT", "Interpretation"):
        raise ValidationError("$.execution_strategy must be JIT or Interpretation", path="$.execution_strategy")
    files: dict[str, tuple[Kind, str]] = {}
    ids: set[int] = set()
    entries = [("program", i, p["program_file_name"], p["pi_hash"]) for i, p in enumerate(policy["programs"])]
    entries += [("data_file", i, d["data_file"], d["pi_hash"]) for i, d in enumerate(policy.get("data_files", []))]
    for kind, index, raw_path, pi_hash in entries:
        where = f"$.{kind}s[{index}]"
        try:
            path = normalise_path(raw_path)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.message}", path=where) from None
        if path != raw_path or path in ("stdin", "stdout", "stderr"):
            raise ValidationError(f"{where}: {raw_path!r} must be an absolute enclave path such as {path!r}", path=where)
        if path in files:
            raise ValidationError(f"{where}: {path} is declared twice", path=where)
        if not _SHA256.match(pi_hash):
            raise ValidationError(f"{where}.pi_hash must be 64 lowercase hex characters (a sha256)", path=f"{where}.pi_hash")
        files[path] = (kind, pi_hash)  # type: ignore[assignment]
    for index, program in enumerate(policy["programs"]):
        if program["id"] in ids:
            raise ValidationError(f"$.programs[{index}].id {program['id']} is used twice", path=f"$.programs[{index}].id")
        ids.add(program["id"])
    return files

"""The function registry: function policies in DynamoDB, program and data-file binaries in S3.

A binary counts as loaded only after its bytes hashed to the policy's
``pi_hash``; on a mismatch nothing is kept. Small binaries come in the request
body; large ones go straight to S3 through a presigned PUT and are verified
when the client says the upload is complete. That PUT is the one part of a
multipart upload, so completing (or failing, or replacing) the upload closes
it and the URL stops working; a presigned URL alone cannot be revoked.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from ipoc import schemas
from ipoc.errors import Conflict, HashMismatch, NotFound, PayloadTooLarge, ValidationError
from ipoc.function_names import check_function_name
from ipoc.path_segments import decode_path, encode_path
from ipoc.rights import normalise_path
from lambdas.shared.config import settings
from lambdas.shared.stores import (
    ArtifactStorage,
    ArtifactStore,
    FunctionRecord,
    FunctionStorage,
    FunctionStore,
    InstanceStorage,
    InstanceStore,
    now_iso,
)

Kind = Literal["program", "data_file"]
KINDS: tuple[Kind, ...] = ("program", "data_file")
NOT_LOADED, UPLOADING, LOADED = "not loaded", "uploading", "loaded"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
LATEST = "latest"
MAX_VERSION = 10**10 - 1  # the width of the version items' zero-padded sort key


def parse_reference(reference: str) -> tuple[str, int | str | None]:
    """``name``, ``name:VERSION`` or ``name:ALIAS`` → (name, None | version number | alias name)."""
    name, sep, selector = reference.partition(":")
    if not sep:
        return name, None
    if selector.isascii() and selector.isdigit() and 0 < int(selector) <= MAX_VERSION:
        return name, int(selector)
    if ALIAS_PATTERN.match(selector):
        return name, selector
    raise ValidationError(
        f"{reference!r} is not a function reference: use NAME, NAME:VERSION (a number from 1) or NAME:ALIAS"
    )


def policy_sha256(policy: dict[str, Any]) -> str:
    """The identity of a version's content: its policy, which pins every file by hash."""
    return hashlib.sha256(json.dumps(policy, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Registry:
    functions: FunctionStorage
    artifacts: ArtifactStorage
    instances: InstanceStorage

    @classmethod
    def from_settings(cls) -> Registry:
        return cls(FunctionStore(), ArtifactStore(), InstanceStore())

    # -- versions ----------------------------------------------------------------

    def publish(self, policy: Any) -> tuple[FunctionRecord, bool]:
        """Store ``policy`` as version N+1 of its function; (the version, True) — or (the latest, False) when the
        latest already has this exact content. Files other versions already loaded are reused, not uploaded again."""
        schemas.validate("function", policy)
        files = _declared_files(policy)
        name = policy["function"]
        digest = policy_sha256(policy)
        current = [v for v in self.functions.versions(name) if not v.deleting]
        if current and current[-1].policy_sha256 == digest:
            return current[-1], False
        loaded = {e["pi_hash"]: e for v in current for e in v.files.values() if e["status"] == LOADED}
        created_at = now_iso()
        record = FunctionRecord(
            name=name,
            policy=policy,
            files={path: _reused(kind, pi_hash, loaded.get(pi_hash)) for path, (kind, pi_hash) in files.items()},
            created_at=created_at,
            version=self.functions.next_version(name, created_at),
            policy_sha256=digest,
        )
        if not self.functions.create_version(record):  # only if the head item was lost while its versions stayed
            raise Conflict(f"version {record.version} of function {name!r} already exists; publish again")
        # A version deleted meanwhile may have removed bytes we reuse: those files must be uploaded again.
        self._unload_missing(record)
        return self.version(name, record.version), True

    def names(self) -> list[str]:
        return self.functions.names()

    def get(self, reference: str) -> FunctionRecord:
        """The version a reference names: ``name`` (the latest), ``name:VERSION`` or ``name:ALIAS``."""
        name, selector = parse_reference(reference)
        if selector is None or selector == LATEST:
            newest = self.functions.newest(name)
            if newest is None:
                raise NotFound(f"function {name!r} is not registered")
            return newest
        if isinstance(selector, str):
            aliases = self.functions.aliases(name)
            if selector not in aliases:
                self.get(name)  # an unknown function says so first
                raise NotFound(f"function {name!r} has no alias {selector!r} (it has {', '.join(self.aliases(name))})")
            selector = aliases[selector]
        return self.version(name, selector)

    def version(self, name: str, version: int | None) -> FunctionRecord:
        """One exact version (``None``: the latest); a version being deleted no longer counts."""
        if version is None:
            return self.get(name)
        record = self.functions.get_version(name, int(version))
        if record is None or record.deleting:
            self.get(name)
            raise NotFound(f"function {name!r} has no version {version}")
        return record

    def of_instance(self, name: str, version: int | None) -> FunctionRecord:
        """The exact version an instance was created with, for its workflow (``None``, a state written before
        versions: the latest). A deletion's mark does not hide it: the instance's record exists, so that deletion
        finds it and is refused (a refused deletion's mark, held for a moment, used to fail the instances it was
        refused for)."""
        if version is None:
            return self.get(name)
        record = self.functions.get_version(name, int(version))
        if record is None:
            raise NotFound(f"version {version} of function {name!r} is not registered")
        return record

    def versions(self, name: str) -> list[FunctionRecord]:
        versions = [v for v in self.functions.versions(name) if not v.deleting]
        if not versions:
            raise NotFound(f"function {name!r} is not registered")
        return versions

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias with its version, ``latest`` first."""
        return {LATEST: self.get(name).version, **dict(sorted(self.functions.aliases(name).items()))}

    def set_alias(self, name: str, alias: str, version: Any) -> dict[str, int]:
        """Point ``alias`` at ``version`` (creating it, or moving it: the rollback)."""
        if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias):
            raise ValidationError("an alias is 1-64 letters, digits, '_' or '-', starting with a letter")
        if alias == LATEST:
            raise ValidationError("'latest' always follows the newest version; choose another alias name")
        if isinstance(version, bool) or not isinstance(version, int) or not 0 < version <= MAX_VERSION:
            raise ValidationError("$.version must be a version number (1, 2, ...)", path="$.version")
        self.version(name, version)  # names what is missing (function or version)
        previous = self.functions.put_alias(name, alias, version)
        # A deletion marks its version first, then reads the aliases: checking again after our write means
        # either it sees this alias (and refuses) or we see its mark (and take the alias back).
        target = self.functions.get_version(name, version)
        if target is None or target.deleting:
            self.functions.restore_alias(name, alias, version, previous)
            raise Conflict(
                f"version {version} of function {name!r} is being deleted; point {alias!r} at another version"
            )
        return self.aliases(name)

    def delete_alias(self, name: str, alias: str) -> dict[str, int]:
        if alias == LATEST:
            raise ValidationError("'latest' always exists; it cannot be deleted")
        if not self.functions.delete_alias(name, alias):
            self.get(name)
            raise NotFound(f"function {name!r} has no alias {alias!r}")
        return self.aliases(name)

    def delete_version(self, name: str, version: int) -> None:
        """Delete one version, refused while instances use it or an alias points at it; bytes no other version
        uses go with it, and the function with its last version (as :meth:`delete` ends)."""
        record = self.version(name, version)
        self._take_for_deletion(name, [record])
        self.functions.delete_version(name, record.version)
        self._drop_unreferenced(name, [record])
        if not self.functions.versions(name):
            self.functions.delete_head(name)

    def delete(self, name: str) -> None:
        """Delete a function: every version, under the rule each version's deletion follows."""
        versions = self.versions(name)
        self._take_for_deletion(name, versions)
        for record in versions:
            self.functions.delete_version(name, record.version)
        self._drop_unreferenced(name, versions)
        if not self.functions.versions(name):
            self.functions.delete_head(name)

    def _take_for_deletion(self, name: str, records: list[FunctionRecord]) -> None:
        """Mark the versions as being deleted (no new alias or instance can use them from then on), then check
        nothing uses them; on a refusal the marks are taken back and nothing changed."""
        marked = [r for r in records if self.functions.set_deleting(name, r.version, True)]
        numbers = {r.version for r in records}
        try:
            if len(marked) != len(records):
                raise Conflict(f"function {name!r} is being deleted by another request; try again")
            live = [i for n in sorted(numbers) for i in self.instances.live_for_function(name, n)]
            aliases = sorted(a for a, v in self.functions.aliases(name).items() if v in numbers)
            reasons = []
            if live:
                reasons.append(f"instances use it ({', '.join(sorted(live))}): delete them first")
            if aliases:
                reasons.append(
                    f"aliases point at it ({', '.join(aliases)}): move them to another version or delete them"
                )
            if reasons:
                what = (
                    f"version {records[0].version} of function {name!r}" if len(records) == 1 else f"function {name!r}"
                )
                raise Conflict(f"{what} cannot be deleted: " + "; ".join(reasons))
        except Conflict:
            for record in marked:
                self.functions.set_deleting(name, record.version, False)
            raise

    def _drop_unreferenced(self, name: str, removed: list[FunctionRecord]) -> None:
        """Remove the bytes (and abandoned staged uploads) of deleted versions that no remaining version uses."""
        remaining = self.functions.versions(name)
        kept = {e.get("key") for v in remaining for e in v.files.values()}
        gone = {e["key"] for r in removed for e in r.files.values() if e.get("key")} - kept
        for key in gone:
            self.artifacts.delete(key)
        for entry in (e for r in removed for e in r.files.values()):
            if entry.get("upload"):
                self._close_upload(entry["upload"])
        if gone:
            for record in self.functions.versions(name):  # a version published meanwhile that reused what just went
                self._unload_missing(record, gone)

    def _unload_missing(self, record: FunctionRecord, suspects: set[str] | None = None) -> None:
        """Files marked loaded whose bytes are gone go back to "not loaded" (to be uploaded again)."""
        for path, entry in record.files.items():
            if entry["status"] != LOADED or (suspects is not None and entry["key"] not in suspects):
                continue
            if not self.artifacts.exists(entry["key"]):
                cleared = {"kind": entry["kind"], "pi_hash": entry["pi_hash"], "status": NOT_LOADED}
                self.functions.update_file(record.name, record.version, path, cleared)

    # -- files (of the version a reference names: the latest for a plain name) ----------------------------

    def _file(self, reference: str, kind: Kind, segment: str) -> tuple[FunctionRecord, str, dict[str, Any]]:
        record = self.get(reference)
        path = decode_path(segment)
        entry = record.files.get(path)
        if entry is None or entry["kind"] != kind:
            declared = [p for p, e in record.files.items() if e["kind"] == kind]
            raise NotFound(
                f"{kind.replace('_', ' ')} {path!r} is not declared by version {record.version} "
                f"of function {record.name!r}" + (f" (it declares {', '.join(declared)})" if declared else "")
            )
        return record, path, entry

    def _file_to_load(self, reference: str, kind: Kind, segment: str) -> tuple[FunctionRecord, str, dict[str, Any]]:
        """The declared file an upload step is about, refused (409) once it is loaded: a loaded file is replaced
        only by deleting it first, so two uploads never race to overwrite each other."""
        record, path, entry = self._file(reference, kind, segment)
        if entry["status"] == LOADED:
            raise Conflict(f"{path} of function {record.name!r} is already loaded; DELETE it first to replace it")
        return record, path, entry

    def _limit(self, kind: Kind) -> int:
        return settings().max_program_size if kind == "program" else settings().max_data_file_size

    def file_status(self, reference: str, kind: Kind, segment: str) -> dict[str, Any]:
        _, path, entry = self._file(reference, kind, segment)
        return describe(path, entry)

    def list_files(self, reference: str, kind: Kind) -> list[dict[str, Any]]:
        record = self.get(reference)
        return [describe(path, entry) for path, entry in record.files.items() if entry["kind"] == kind]

    def upload(self, reference: str, kind: Kind, segment: str, body: bytes) -> dict[str, Any]:
        """A direct upload: hash-check the body, keep it only if it matches."""
        record, path, entry = self._file_to_load(reference, kind, segment)
        name = record.name
        limit = self._limit(kind)
        if len(body) > limit:
            raise PayloadTooLarge(f"{path} is {len(body)} bytes; the limit for a {kind} is {limit}")
        if len(body) > settings().direct_upload_limit:
            raise PayloadTooLarge(
                f"{path} is {len(body)} bytes, more than a direct upload carries ({settings().direct_upload_limit}); "
                f"POST /function/{reference}/{kind}/{segment}/upload for a presigned upload"
            )
        actual = hashlib.sha256(body).hexdigest()
        _check_hash(path, entry["pi_hash"], actual)
        key = ArtifactStore.artifact_key(name, actual)
        self.artifacts.put(key, body)
        return self._mark_loaded(record, path, entry, key, len(body))

    def start_upload(self, reference: str, kind: Kind, segment: str) -> dict[str, Any]:
        """Hand out a presigned PUT for a large binary, staged until it is verified."""
        record, path, entry = self._file_to_load(reference, kind, segment)
        name = record.name
        if entry.get("upload"):
            self._close_upload(entry["upload"])  # a new upload replaces an abandoned one, and its URL stops working
        expires = settings().presigned_expiry
        key = ArtifactStore.staging_key(name, uuid.uuid4().hex)
        upload_id, url = self.artifacts.start_upload(key, expires)
        staged = {**entry, "status": UPLOADING, "upload": {"key": key, "upload_id": upload_id, "started_at": now_iso()}}
        if not self.functions.update_file(name, record.version, path, staged, unless_status=LOADED):
            self.artifacts.abort_upload(key, upload_id)
            raise Conflict(f"{path} of function {name!r} was loaded meanwhile")
        return {
            "path": path,
            "upload_url": url,
            "method": "PUT",
            "expires_in": expires,
            "complete": f"/function/{reference}/{kind}/{segment}/upload/complete",
        }

    def complete_upload(self, reference: str, kind: Kind, segment: str) -> dict[str, Any]:
        """Verify a staged upload by streaming it through sha256; keep it only if it matches."""
        record, path, entry = self._file_to_load(reference, kind, segment)
        name = record.name
        upload = entry.get("upload")
        if not upload:
            raise NotFound(
                f"no upload in progress for {path}; POST /function/{reference}/{kind}/{segment}/upload first"
            )
        staging = upload["key"]
        cleared = {k: v for k, v in entry.items() if k != "upload"} | {"status": NOT_LOADED}
        if "upload_id" not in upload:  # started before uploads were multipart: its URL is a plain PUT, still open
            self.artifacts.delete(staging)
            self.functions.update_file(name, record.version, path, cleared, unless_status=LOADED)
            raise Conflict(f"the upload of {path} was started by an older version; POST .../upload again")
        if not self.artifacts.finish_upload(staging, upload["upload_id"]):
            raise NotFound(f"nothing was uploaded for {path} yet: PUT the bytes to the upload_url, then complete")
        # From here the upload is closed: its URL answers NoSuchUpload, whatever the outcome below.
        limit = self._limit(kind)
        actual, size = self.artifacts.hash_object(staging, limit)
        if size > limit or actual != entry["pi_hash"]:
            self.artifacts.delete(staging)
            self.functions.update_file(name, record.version, path, cleared, unless_status=LOADED)
            if size > limit:
                raise PayloadTooLarge(f"{path} is over the {limit}-byte limit for a {kind}; nothing was kept")
            _check_hash(path, entry["pi_hash"], actual)
        key = ArtifactStore.artifact_key(name, actual)
        self.artifacts.copy(staging, key)
        self.artifacts.delete(staging)
        return self._mark_loaded(record, path, cleared, key, size)

    def delete_file(self, reference: str, kind: Kind, segment: str) -> dict[str, Any]:
        """Unload one file of a version (refused while instances use the version); its bytes go only when no
        other file of any version uses them.

        The same handshake as a version's deletion, with the unload as the mark: the file is marked not loaded
        first (no new instance can start from then on), then instances are looked for; an instance's creation
        writes its record first, then checks the version is still whole. One of the two sees the other.
        """
        record, path, entry = self._file(reference, kind, segment)
        name = record.name
        if entry["status"] != LOADED:
            raise NotFound(f"{path} of function {name!r} is not loaded")
        cleared = {"kind": entry["kind"], "pi_hash": entry["pi_hash"], "status": NOT_LOADED}
        if not self.functions.update_file(name, record.version, path, cleared, if_status=LOADED):
            raise NotFound(f"{path} of function {name!r} is not loaded")  # another request unloaded it first
        live = self.instances.live_for_function(name, record.version)
        if live:
            self.functions.update_file(name, record.version, path, entry, unless_status=LOADED)
            raise Conflict(
                f"version {record.version} of function {name!r} has live instances "
                f"({', '.join(sorted(live))}); delete them first"
            )
        shared = any(
            e.get("key") == entry["key"] and e["status"] == LOADED and (v.version, p) != (record.version, path)
            for v in self.functions.versions(name)
            for p, e in v.files.items()
        )
        if not shared:
            self.artifacts.delete(entry["key"])
        return describe(path, cleared)

    def _close_upload(self, upload: dict[str, Any]) -> None:
        """End an upload in progress: its URL stops working and nothing it wrote is kept."""
        if "upload_id" in upload:
            self.artifacts.abort_upload(upload["key"], upload["upload_id"])
        self.artifacts.delete(upload["key"])

    def _mark_loaded(
        self, record: FunctionRecord, path: str, entry: dict[str, Any], key: str, size: int
    ) -> dict[str, Any]:
        loaded = {
            "kind": entry["kind"],
            "pi_hash": entry["pi_hash"],
            "status": LOADED,
            "size": size,
            "key": key,
            "loaded_at": now_iso(),
        }
        if not self.functions.update_file(record.name, record.version, path, loaded, unless_status=LOADED):
            # A concurrent upload of the same verified bytes won: same key, same content, nothing lost.
            raise Conflict(f"{path} of function {record.name!r} is already loaded")
        return describe(path, loaded)


def _reused(kind: Kind, pi_hash: str, loaded: dict[str, Any] | None) -> dict[str, Any]:
    """A new version's file entry: loaded already when another version holds the same bytes."""
    if loaded is None:
        return {"kind": kind, "pi_hash": pi_hash, "status": NOT_LOADED}
    return {
        "kind": kind,
        "pi_hash": pi_hash,
        "status": LOADED,
        "size": loaded["size"],
        "key": loaded["key"],
        "loaded_at": loaded["loaded_at"],
    }


def version_view(record: FunctionRecord, aliases: dict[str, int]) -> dict[str, Any]:
    """The public view of one version: number, content hash, aliases on it, files and whether all are loaded."""
    files = [describe(path, entry) for path, entry in record.files.items()]
    return {
        "function": record.name,
        "version": record.version,
        "policy_sha256": record.policy_sha256,
        "created_at": record.created_at,
        "aliases": [a for a, v in aliases.items() if v == record.version],
        "loaded": all(f["status"] == LOADED for f in files),
        "files": files,
    }


def describe(path: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The public view of one file (no storage keys)."""
    view = {
        "name": encode_path(path),
        "path": path,
        "kind": entry["kind"],
        "status": entry["status"],
        "pi_hash": entry["pi_hash"],
    }
    if entry["status"] == LOADED:
        view["size"] = entry.get("size")
        view["loaded_at"] = entry.get("loaded_at")
    return view


def _check_hash(path: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise HashMismatch(
            f"{path} must hash to {expected} (pi_hash) but the bytes received hash to {actual}; nothing was kept"
        )


def _declared_files(policy: dict[str, Any]) -> dict[str, tuple[Kind, str]]:
    """Check the semantic rules the schema cannot express; return {path: (kind, pi_hash)}."""
    check_function_name(policy["function"])
    if policy["max_memory_mib"] <= 0:
        raise ValidationError("$.max_memory_mib must be positive", path="$.max_memory_mib")
    if policy["execution_strategy"] not in ("JIT", "Interpretation"):
        raise ValidationError("$.execution_strategy must be JIT or Interpretation", path="$.execution_strategy")
    files: dict[str, tuple[Kind, str]] = {}
    ids: set[int] = set()
    entries: list[tuple[Kind, int, str, str]] = [
        ("program", i, p["program_file_name"], p["pi_hash"]) for i, p in enumerate(policy["programs"])
    ]
    entries += [("data_file", i, d["data_file"], d["pi_hash"]) for i, d in enumerate(policy.get("data_files", []))]
    for kind, index, raw_path, pi_hash in entries:
        where = f"$.{kind}s[{index}]"
        try:
            path = normalise_path(raw_path)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.message}", path=where) from None
        if path != raw_path or path in ("stdin", "stdout", "stderr"):
            raise ValidationError(
                f"{where}: {raw_path!r} must be an absolute enclave path such as {path!r}", path=where
            )
        if path in files:
            raise ValidationError(f"{where}: {path} is declared twice", path=where)
        if not _SHA256.match(pi_hash):
            raise ValidationError(
                f"{where}.pi_hash must be 64 lowercase hex characters (a sha256)", path=f"{where}.pi_hash"
            )
        files[path] = (kind, pi_hash)
    for index, program in enumerate(policy["programs"]):
        if program["id"] in ids:
            raise ValidationError(
                f"$.programs[{index}].id {program['id']} is used twice", path=f"$.programs[{index}].id"
            )
        ids.add(program["id"])
    return files

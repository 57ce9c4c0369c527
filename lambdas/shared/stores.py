"""DynamoDB and S3 behind small interfaces, so logic receives its storage instead of building it.

Each store's interface is a Protocol at the end of this module (``FunctionStorage``,
``ArtifactStorage``, ``InstanceStorage``, ``SlotStorage``): the registry, the
instances and VaaS are typed against those, so unit tests hand them the
in-memory fakes of ``tests/fakes`` (held to the same contract as these stores
by ``tests/functional/lambdas/test_store_contract.py``).

Every write that could race is conditional: registering a function, marking a
file loaded, taking a slot. A failed condition is a domain outcome (Conflict,
no capacity), never a half-written record.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, BinaryIO, ClassVar, Protocol

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from botocore.exceptions import ClientError

from ipoc.errors import Conflict, DependencyFailed
from lambdas.shared import aws
from lambdas.shared.config import settings
from lambdas.shared.tables import STAGING_PREFIX

HASH_CHUNK = 1024 * 1024


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def parse_iso(text: Any) -> _dt.datetime | None:
    """A time :func:`now_iso` wrote; None when there is none, or it is not one."""
    if not text or not isinstance(text, str):
        return None
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _scan(table: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a table, page by page."""
    while True:
        page = table.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _conditionally(write: Callable[[], Any]) -> bool:
    """Run a conditional write; False when its condition did not hold (nothing was written)."""
    try:
        write()
        return True
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise


# ---------------------------------------------------------------------------
# Functions


VERSION_PREFIX, ALIAS_PREFIX, HEAD_ITEM = "version#", "alias#", "function"


def version_item(version: int) -> str:
    """The sort key of a version item; zero-padded so items sort by version number."""
    return f"{VERSION_PREFIX}{version:010d}"


def alias_item(alias: str) -> str:
    return f"{ALIAS_PREFIX}{alias}"


@dataclass
class FunctionRecord:
    """One immutable version of a function: its policy and the upload state of the files it declares."""

    name: str
    policy: dict[str, Any]
    files: dict[str, dict[str, Any]]  # enclave path -> {kind, pi_hash, status, size?, key?, loaded_at?, upload?}
    created_at: str
    version: int = 1
    policy_sha256: str = ""
    deleting: bool = False  # a deletion is under way: no new alias or instance may use this version

    def to_item(self) -> dict[str, Any]:
        return {
            "function": self.name,
            "item": version_item(self.version),
            "version": self.version,
            "policy": json.dumps(self.policy),
            "policy_sha256": self.policy_sha256,
            "files": self.files,
            "created_at": self.created_at,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> FunctionRecord:
        files = {path: {k: _plain(v) for k, v in entry.items()} for path, entry in item.get("files", {}).items()}
        return cls(
            item["function"],
            json.loads(item["policy"]),
            files,
            item.get("created_at", ""),
            int(item.get("version", 1)),
            item.get("policy_sha256", ""),
            bool(item.get("deleting", False)),
        )


def _get_item(table: Any, key: dict[str, str]) -> dict[str, Any] | None:
    """A consistent read of one item; None when a key part is empty (DynamoDB refuses an empty key with a 400,
    so nothing can be stored under one: a caller's empty id is simply not found)."""
    if not all(key.values()):
        return None
    return aws.get_item(table, key)


def _plain(value: Any) -> Any:
    """DynamoDB returns numbers as Decimal; our records only hold integers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class FunctionStore:
    """Version items and alias items, one partition per function name.

    The head item (``item = "function"``) counts the versions given: a
    publisher takes its number with an atomic ``ADD`` on that counter, then puts
    the version item conditionally, so two publishers racing cannot both be
    N+1, and a deleted version's number is never given again. ``latest`` is
    not stored: it is the newest version present, so it always follows the
    newest. (No transactions: each write is one item and one IAM action.)
    """

    def __init__(self, table_name: str | None = None) -> None:
        self.table = aws.table(table_name or settings().functions_table)

    # -- versions ----------------------------------------------------------------

    def next_version(self, name: str, created_at: str) -> int:
        """Take the next version number: an atomic counter on the head item, so every caller gets its own
        number, and a deleted version's number is never given again while the function exists."""
        reply = self.table.update_item(
            Key={"function": name, "item": HEAD_ITEM},
            UpdateExpression="ADD last_version :one SET created_at = if_not_exists(created_at, :now)",
            ExpressionAttributeValues={":one": 1, ":now": created_at},
            ReturnValues="UPDATED_NEW",
        )
        return int(reply["Attributes"]["last_version"])

    def create_version(self, record: FunctionRecord) -> bool:
        """Store a version under the number :meth:`next_version` gave; False if that item exists (nothing written)."""
        return _conditionally(
            lambda: self.table.put_item(
                Item=record.to_item(),
                ConditionExpression="attribute_not_exists(#f)",
                ExpressionAttributeNames={"#f": "function"},
            )
        )

    def delete_head(self, name: str) -> None:
        self.table.delete_item(Key={"function": name, "item": HEAD_ITEM})

    def versions(self, name: str) -> list[FunctionRecord]:
        """Every version of a function, oldest first (read consistently)."""
        if not name:
            return []  # DynamoDB refuses an empty key (a 400 from AWS); nothing is stored under one
        items = self._query(name, VERSION_PREFIX)
        return [FunctionRecord.from_item(item) for item in items]

    def newest(self, name: str) -> FunctionRecord | None:
        """The newest version not being deleted, reading from the newest down (a page at a time)."""
        if not name:
            return None
        for item in self._query(name, VERSION_PREFIX, newest_first=True, page=4):
            record = FunctionRecord.from_item(item)
            if not record.deleting:
                return record
        return None

    def get_version(self, name: str, version: int) -> FunctionRecord | None:
        item = _get_item(self.table, {"function": name, "item": version_item(version)})
        return FunctionRecord.from_item(item) if item else None

    def names(self) -> list[str]:
        items = _scan(
            self.table,
            ProjectionExpression="#f",
            ExpressionAttributeNames={"#f": "function", "#i": "item"},
            FilterExpression="#i = :head",
            ExpressionAttributeValues={":head": HEAD_ITEM},
        )
        return sorted({item["function"] for item in items})

    def set_deleting(self, name: str, version: int, deleting: bool) -> bool:
        """Mark (or unmark) a version as being deleted; False when the version is gone (or already marked)."""
        key = {"function": name, "item": version_item(version)}
        if deleting:
            return _conditionally(
                lambda: self.table.update_item(
                    Key=key,
                    UpdateExpression="SET deleting = :t",
                    ExpressionAttributeValues={":t": True},
                    ConditionExpression="attribute_exists(#f) AND attribute_not_exists(deleting)",
                    ExpressionAttributeNames={"#f": "function"},
                )
            )
        return _conditionally(
            lambda: self.table.update_item(
                Key=key,
                UpdateExpression="REMOVE deleting",
                ConditionExpression="attribute_exists(#f)",
                ExpressionAttributeNames={"#f": "function"},
            )
        )

    def delete_version(self, name: str, version: int) -> None:
        self.table.delete_item(Key={"function": name, "item": version_item(version)})

    def update_file(
        self,
        name: str,
        version: int,
        path: str,
        entry: dict[str, Any],
        *,
        unless_status: str | None = None,
        if_status: str | None = None,
    ) -> bool:
        """Replace one file's entry of a version; True when written.

        With ``unless_status``, only if its status is not that; with ``if_status``, only if it is that.
        """
        kwargs: dict[str, Any] = {
            "Key": {"function": name, "item": version_item(version)},
            "UpdateExpression": "SET #files.#path = :entry",
            "ExpressionAttributeNames": {"#files": "files", "#path": path},
            "ExpressionAttributeValues": {":entry": entry},
            "ConditionExpression": "attribute_exists(#files.#path)",
        }
        if unless_status is not None:
            kwargs["ExpressionAttributeNames"]["#status"] = "status"
            kwargs["ExpressionAttributeValues"][":status"] = unless_status
            kwargs["ConditionExpression"] += " AND #files.#path.#status <> :status"
        if if_status is not None:
            kwargs["ExpressionAttributeNames"]["#status"] = "status"
            kwargs["ExpressionAttributeValues"][":if_status"] = if_status
            kwargs["ConditionExpression"] += " AND #files.#path.#status = :if_status"
        return _conditionally(lambda: self.table.update_item(**kwargs))

    # -- aliases -----------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, int]:
        """Stored aliases (``latest`` is not stored: it is the newest version)."""
        if not name:
            return {}
        return {item["item"][len(ALIAS_PREFIX) :]: int(item["version"]) for item in self._query(name, ALIAS_PREFIX)}

    def put_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point an alias at a version; the version it pointed at before (None for a new alias)."""
        reply = self.table.put_item(
            Item={"function": name, "item": alias_item(alias), "version": version, "updated_at": now_iso()},
            ReturnValues="ALL_OLD",
        )
        old = reply.get("Attributes")
        return int(old["version"]) if old else None

    def restore_alias(self, name: str, alias: str, version: int, previous: int | None) -> None:
        """Undo :meth:`put_alias` if the alias still points where it put it (a later move is kept)."""
        key = {"function": name, "item": alias_item(alias)}
        if previous is None:
            _conditionally(lambda: self.table.delete_item(Key=key, ConditionExpression=Attr("version").eq(version)))
        else:
            _conditionally(
                lambda: self.table.update_item(
                    Key=key,
                    UpdateExpression="SET version = :previous",
                    ConditionExpression=Attr("version").eq(version),
                    ExpressionAttributeValues={":previous": previous},
                )
            )

    def delete_alias(self, name: str, alias: str) -> bool:
        return _conditionally(
            lambda: self.table.delete_item(
                Key={"function": name, "item": alias_item(alias)}, ConditionExpression=Attr("function").exists()
            )
        )

    def _query(
        self, name: str, prefix: str, *, newest_first: bool = False, page: int | None = None
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("function").eq(name) & Key("item").begins_with(prefix),
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
            **({"Limit": page} if page else {}),
        }
        while True:
            result = self.table.query(**kwargs)
            yield from result.get("Items", [])
            if "LastEvaluatedKey" not in result:
                return
            kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]


# ---------------------------------------------------------------------------
# Artifacts (S3)


class ArtifactStore:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or settings().artifacts_bucket
        self.s3 = aws.client("s3")

    @staticmethod
    def artifact_key(function: str, sha256: str) -> str:
        """Content-addressed per function: the versions of a function that declare the same bytes share one object."""
        return f"functions/{function}/{sha256}"

    @staticmethod
    def staging_key(function: str, token: str) -> str:
        return f"{STAGING_PREFIX}{function}/{token}"

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def copy(self, source: str, target: str) -> None:
        self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source})

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def start_upload(self, key: str, expires_in: int) -> tuple[str, str]:
        """A one-part multipart upload and a presigned PUT for its part: ``(upload_id, url)``.

        A presigned URL cannot be revoked, but a part URL only works while its
        multipart upload is open: once :meth:`finish_upload` or
        :meth:`abort_upload` closed it, the URL answers ``NoSuchUpload``.
        """
        upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        url = self.s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": 1},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return upload_id, url

    def finish_upload(self, key: str, upload_id: str) -> bool:
        """Close the upload into an object at ``key``; False (the upload stays open) when no part arrived yet."""
        try:
            parts = self.s3.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id).get("Parts", [])
            if not parts:
                return False
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
                raise Conflict("this upload was already completed or replaced meanwhile") from None
            raise
        return True

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Close an upload without keeping anything (idempotent: an upload already closed is fine)."""
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            raise DependencyFailed(
                f"cannot read s3://{self.bucket}/{key}: {exc.response['Error'].get('Code')}"
            ) from None

    def hash_object(self, key: str, limit: int) -> tuple[str, int]:
        """Stream an object through sha256 in bounded memory; stop early past ``limit`` bytes."""
        digest, size = hashlib.sha256(), 0
        body = self.open(key)
        try:
            for chunk in iter(lambda: body.read(HASH_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                if size > limit:
                    break
        finally:
            body.close()
        return digest.hexdigest(), size


# ---------------------------------------------------------------------------
# Instances (written by the lifecycle; read here to protect functions in use)


class _ScannableTable:
    table: Any

    def all(self) -> Iterator[dict[str, Any]]:
        """Every item, read consistently (tables here hold hundreds of items, not millions)."""
        return (_plain(item) for item in _scan(self.table, ConsistentRead=True))

    def matching(self, attribute: str, value: str) -> Iterator[dict[str, Any]]:
        """Every item whose ``attribute`` equals ``value`` (a filtered scan, read consistently)."""
        items = _scan(self.table, ConsistentRead=True, FilterExpression=Attr(attribute).eq(value))
        return (_plain(item) for item in items)


class InstanceStatus(StrEnum):
    """An instance's status. String-valued, so stored items and the API's JSON carry the plain name.

    The order of a life: PENDING → ALLOCATING → PROVISIONING → READY → RELEASING → DELETED (ALLOCATING only
    when a slot is waited for or a runtime started: a warm runtime is handed over at once). A failure moves
    any live instance to TEARING_DOWN (its reason recorded) while its runtime and slot are given back, then
    to FAILED. A terminal status (FAILED, DELETED) is written only once the runtime and slot are released,
    so a user who reads it can trust that nothing of the instance is left running.
    """

    PENDING = "PENDING"
    ALLOCATING = "ALLOCATING"
    PROVISIONING = "PROVISIONING"
    READY = "READY"
    RELEASING = "RELEASING"
    TEARING_DOWN = "TEARING_DOWN"
    FAILED = "FAILED"
    DELETED = "DELETED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = (InstanceStatus.DELETED, InstanceStatus.FAILED)
# Live and not failing: the statuses the workflow moves forward through, and may release from.
ACTIVE = (
    InstanceStatus.PENDING,
    InstanceStatus.ALLOCATING,
    InstanceStatus.PROVISIONING,
    InstanceStatus.READY,
    InstanceStatus.RELEASING,
)
# What a status may be written over: nothing after a terminal status; after TEARING_DOWN only FAILED (so the
# first failure's reason is the one kept); FAILED only after TEARING_DOWN (so it follows a teardown).
TRANSITIONS_FROM: dict[InstanceStatus, tuple[InstanceStatus, ...]] = {
    **{status: ACTIVE for status in ACTIVE},
    InstanceStatus.TEARING_DOWN: ACTIVE,
    InstanceStatus.FAILED: (InstanceStatus.TEARING_DOWN,),
    InstanceStatus.DELETED: ACTIVE,
}


class InstanceWrites:
    """The status rules every instance store follows (:data:`TRANSITIONS_FROM`), over the store's one
    conditional write ``_write`` (DynamoDB's condition expression here, a lock in ``tests/fakes``)."""

    def transition(
        self,
        instance_id: str,
        to: InstanceStatus,
        reason: str | None = None,
        *,
        remove: tuple[str, ...] = (),
        **fields: Any,
    ) -> bool:
        """Move the instance to ``to`` (with ``reason`` and ``fields``) if :data:`TRANSITIONS_FROM` allows it from
        its stored status, in one conditional write. True when written; False leaves the item as it was."""
        status = InstanceStatus(to)
        if reason is not None:
            fields["reason"] = reason
        return self._write(instance_id, {**fields, "status": status.value}, remove, TRANSITIONS_FROM[status])

    def mark(self, instance_id: str, *, remove: tuple[str, ...] = (), **fields: Any) -> bool:
        """Set fields other than the status (a task token, the release flag) on an instance that is live and not
        failing; True when written."""
        return self._write(instance_id, fields, remove, ACTIVE)

    def update(self, instance_id: str, *, remove: tuple[str, ...] = (), **fields: Any) -> bool:
        """Set fields (and ``updated_at``) whatever the status (never the status itself: see :meth:`transition`)."""
        if "status" in fields:
            raise ValueError("an instance's status changes only through InstanceStore.transition")
        return self._write(instance_id, fields, remove, ())

    def _write(
        self, instance_id: str, fields: dict[str, Any], remove: tuple[str, ...], only_from: tuple[InstanceStatus, ...]
    ) -> bool:
        """Set ``fields`` (and ``updated_at``) and drop ``remove`` if the instance exists and, when ``only_from``
        is given, its status is one of them; True when written."""
        raise NotImplementedError


class InstanceStore(InstanceWrites, _ScannableTable):
    """One item per instance: owner, status, reason, the exact policy text, workflow handles."""

    LIVE: ClassVar[tuple[InstanceStatus, ...]] = (*ACTIVE, InstanceStatus.TEARING_DOWN)  # may hold a runtime, a slot
    TERMINAL: ClassVar[tuple[InstanceStatus, ...]] = TERMINAL
    ENDING = (InstanceStatus.TEARING_DOWN, *TERMINAL)  # ended or ending: no workflow wait is kept for it

    def __init__(self, table_name: str | None = None) -> None:
        self.table = aws.table(table_name or settings().instances_table)

    def live_for_function(self, function: str, version: int | None = None) -> list[str]:
        """Live instances of a function (of one version when given; records from before versions ran version 1).

        A consistent scan of the table, not a query of an index: the deletion handshake (mark the version or
        unload the file, then look for instances; an instance's creation writes, then re-reads the version)
        holds only if this read sees every instance written before it, and DynamoDB reads a global secondary
        index only eventually consistently (a ``ConsistentRead`` query of one is a ValidationException).
        """
        return [
            item["instance_id"]
            for item in self.matching("function", function)
            if item.get("status") in self.LIVE and (version is None or int(item.get("version", 1)) == version)
        ]

    def create(self, item: dict[str, Any]) -> None:
        try:
            self.table.put_item(Item=item, ConditionExpression=Attr("instance_id").not_exists())
        except ClientError as exc:
            if _condition_failed(exc):
                raise Conflict(f"instance {item['instance_id']!r} already exists; choose another instanceid") from None
            raise

    def get(self, instance_id: str) -> dict[str, Any] | None:
        item = _get_item(self.table, {"instance_id": instance_id})
        return _plain(item) if item else None

    def delete(self, instance_id: str) -> None:
        """Remove a record outright (a creation undone before its workflow started); nothing if absent."""
        self.table.delete_item(Key={"instance_id": instance_id})

    def _write(
        self, instance_id: str, fields: dict[str, Any], remove: tuple[str, ...], only_from: tuple[InstanceStatus, ...]
    ) -> bool:
        fields["updated_at"] = now_iso()
        names = {f"#{k}": k for k in (*fields, *remove)}
        values = {f":{k}": v for k, v in fields.items()}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in fields)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        condition = "attribute_exists(instance_id)"
        if only_from:
            names["#status"] = "status"
            values.update({f":from{index}": status.value for index, status in enumerate(only_from)})
            condition += " AND #status IN (" + ", ".join(f":from{index}" for index in range(len(only_from))) + ")"
        return _conditionally(
            lambda: self.table.update_item(
                Key={"instance_id": instance_id},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )


# ---------------------------------------------------------------------------
# Slots: one item per allocated runtime port; the item's existence is the allocation.


class SlotStore(_ScannableTable):
    def __init__(self, table_name: str | None = None) -> None:
        self.table = aws.table(table_name or settings().slots_table)

    def take(
        self, candidates: list[str], item: dict[str, Any], fields_for: Callable[[str], dict[str, Any]] | None = None
    ) -> str | None:
        """Take the first free slot with a conditional put: two requests can never hold one. ``fields_for(slot)``
        adds what depends on the slot (asked for each candidate tried)."""
        for slot in candidates:
            fields = fields_for(slot) if fields_for is not None else {}
            if _conditionally(
                functools.partial(
                    self.table.put_item,
                    Item={**item, **fields, "slot": slot},
                    ConditionExpression=Attr("slot").not_exists(),
                )
            ):
                return slot
        return None

    def held(self) -> set[str]:
        """The slots held, read consistently: their keys alone. A create polled while every slot is busy reads
        this; the whole items (hashes, URL, the runtime's facts as a map) cost ~4x the CPU to read (in-process
        moto, ten slots: 9.6-10.2 against 2.5-2.8 ms)."""
        items = _scan(
            self.table, ConsistentRead=True, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "slot"}
        )
        return {str(item["slot"]) for item in items}

    def get(self, slot: str) -> dict[str, Any] | None:
        item = _get_item(self.table, {"slot": slot})
        return _plain(item) if item else None

    def update(self, slot: str, allocation: str, *, only_from: str | None = None, **fields: Any) -> bool:
        """Set fields on the slot only while it holds this allocation (and, with ``only_from``, is in that state):
        a start that outlived its slot's deletion must not write over the next allocation. False when it did not."""
        names = {f"#{k}": k for k in fields}
        values = {f":{k}": v for k, v in fields.items()}
        condition: ConditionBase = Attr("allocation").eq(allocation)
        if only_from is not None:
            condition = condition & Attr("state").eq(only_from)
        return _conditionally(
            lambda: self.table.update_item(
                Key={"slot": slot},
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ConditionExpression=condition,
            )
        )

    def release(self, slot: str, allocation: str) -> bool:
        """Free a slot only if it still holds this allocation (a retried delete frees nothing else)."""
        return _conditionally(
            lambda: self.table.delete_item(Key={"slot": slot}, ConditionExpression=Attr("allocation").eq(allocation))
        )


# ---------------------------------------------------------------------------
# Interfaces: what the logic needs of each store (the classes above; tests/fakes in memory)


class FunctionStorage(Protocol):
    def next_version(self, name: str, created_at: str) -> int: ...
    def create_version(self, record: FunctionRecord) -> bool: ...
    def delete_head(self, name: str) -> None: ...
    def versions(self, name: str) -> list[FunctionRecord]: ...
    def newest(self, name: str) -> FunctionRecord | None: ...
    def get_version(self, name: str, version: int) -> FunctionRecord | None: ...
    def names(self) -> list[str]: ...
    def set_deleting(self, name: str, version: int, deleting: bool) -> bool: ...
    def delete_version(self, name: str, version: int) -> None: ...
    def update_file(
        self,
        name: str,
        version: int,
        path: str,
        entry: dict[str, Any],
        *,
        unless_status: str | None = None,
        if_status: str | None = None,
    ) -> bool: ...
    def aliases(self, name: str) -> dict[str, int]: ...
    def put_alias(self, name: str, alias: str, version: int) -> int | None: ...
    def restore_alias(self, name: str, alias: str, version: int, previous: int | None) -> None: ...
    def delete_alias(self, name: str, alias: str) -> bool: ...


class ArtifactStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def copy(self, source: str, target: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def start_upload(self, key: str, expires_in: int) -> tuple[str, str]: ...
    def finish_upload(self, key: str, upload_id: str) -> bool: ...
    def abort_upload(self, key: str, upload_id: str) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def hash_object(self, key: str, limit: int) -> tuple[str, int]: ...


class InstanceStorage(Protocol):
    LIVE: ClassVar[tuple[InstanceStatus, ...]]
    TERMINAL: ClassVar[tuple[InstanceStatus, ...]]

    def all(self) -> Iterator[dict[str, Any]]: ...
    def matching(self, attribute: str, value: str) -> Iterator[dict[str, Any]]: ...
    def live_for_function(self, function: str, version: int | None = None) -> list[str]: ...
    def create(self, item: dict[str, Any]) -> None: ...
    def get(self, instance_id: str) -> dict[str, Any] | None: ...
    def delete(self, instance_id: str) -> None: ...
    def transition(
        self,
        instance_id: str,
        to: InstanceStatus,
        reason: str | None = None,
        *,
        remove: tuple[str, ...] = (),
        **fields: Any,
    ) -> bool: ...
    def mark(self, instance_id: str, *, remove: tuple[str, ...] = (), **fields: Any) -> bool: ...
    def update(self, instance_id: str, *, remove: tuple[str, ...] = (), **fields: Any) -> bool: ...


class SlotStorage(Protocol):
    def all(self) -> Iterator[dict[str, Any]]: ...
    def held(self) -> set[str]: ...
    def matching(self, attribute: str, value: str) -> Iterator[dict[str, Any]]: ...
    def take(
        self, candidates: list[str], item: dict[str, Any], fields_for: Callable[[str], dict[str, Any]] | None = None
    ) -> str | None: ...
    def get(self, slot: str) -> dict[str, Any] | None: ...
    def update(self, slot: str, allocation: str, *, only_from: str | None = None, **fields: Any) -> bool: ...
    def release(self, slot: str, allocation: str) -> bool: ...

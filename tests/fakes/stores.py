"""The four stores in memory, with the real ones' conditional-write semantics (see tests/fakes/__init__.py)."""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, ClassVar

from botocore.exceptions import ClientError

from ipoc.errors import Conflict, DependencyFailed
from lambdas.shared.stores import (
    HASH_CHUNK,
    FunctionRecord,
    InstanceStatus,
    InstanceStore,
    InstanceWrites,
    now_iso,
)


def _condition_failed(operation: str) -> ClientError:
    """What DynamoDB raises for a failed condition the store does not turn into an outcome."""
    return ClientError(
        {"Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}}, operation
    )


class FakeFunctionStore:
    """Versions, aliases and the head counter of each function, as ``FunctionStore`` keeps them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: dict[str, dict[str, Any]] = {}  # name -> {"last_version", "created_at"}
        self._versions: dict[tuple[str, int], dict[str, Any]] = {}  # (name, version) -> the stored item
        self._aliases: dict[tuple[str, str], int] = {}

    def next_version(self, name: str, created_at: str) -> int:
        with self._lock:
            head = self._heads.setdefault(name, {"last_version": 0, "created_at": created_at})
            head["last_version"] += 1
            return int(head["last_version"])

    def create_version(self, record: FunctionRecord) -> bool:
        with self._lock:
            key = (record.name, record.version)
            if key in self._versions:
                return False
            self._versions[key] = copy.deepcopy(record.to_item())
            return True

    def delete_head(self, name: str) -> None:
        with self._lock:
            self._heads.pop(name, None)

    def versions(self, name: str) -> list[FunctionRecord]:
        with self._lock:
            return [self._record(item) for (n, _), item in sorted(self._versions.items()) if n == name]

    def newest(self, name: str) -> FunctionRecord | None:
        return next((r for r in reversed(self.versions(name)) if not r.deleting), None)

    def get_version(self, name: str, version: int) -> FunctionRecord | None:
        with self._lock:
            item = self._versions.get((name, version))
            return self._record(item) if item else None

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._heads)

    def set_deleting(self, name: str, version: int, deleting: bool) -> bool:
        with self._lock:
            item = self._versions.get((name, version))
            if item is None or (deleting and item.get("deleting")):
                return False
            if deleting:
                item["deleting"] = True
            else:
                item.pop("deleting", None)
            return True

    def delete_version(self, name: str, version: int) -> None:
        with self._lock:
            self._versions.pop((name, version), None)

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
        with self._lock:
            item = self._versions.get((name, version))
            if item is None or path not in item["files"]:
                return False
            status = item["files"][path].get("status")
            if (unless_status is not None and status == unless_status) or (
                if_status is not None and status != if_status
            ):
                return False
            item["files"][path] = copy.deepcopy(entry)
            return True

    def aliases(self, name: str) -> dict[str, int]:
        with self._lock:
            return {alias: version for (n, alias), version in sorted(self._aliases.items()) if n == name}

    def put_alias(self, name: str, alias: str, version: int) -> int | None:
        with self._lock:
            previous = self._aliases.get((name, alias))
            self._aliases[(name, alias)] = version
            return previous

    def restore_alias(self, name: str, alias: str, version: int, previous: int | None) -> None:
        with self._lock:
            if self._aliases.get((name, alias)) != version:
                return  # moved again meanwhile: the later move is kept
            if previous is None:
                del self._aliases[(name, alias)]
            else:
                self._aliases[(name, alias)] = previous

    def delete_alias(self, name: str, alias: str) -> bool:
        with self._lock:
            return self._aliases.pop((name, alias), None) is not None

    @staticmethod
    def _record(item: dict[str, Any]) -> FunctionRecord:
        return FunctionRecord.from_item(copy.deepcopy(item))


class FakeArtifactStore:
    """Objects and one-part multipart uploads in memory; ``upload_part`` is the client's presigned PUT."""

    def __init__(self, bucket: str = "fake-artifacts") -> None:
        self.bucket = bucket
        self._lock = threading.Lock()
        self.objects: dict[str, bytes] = {}
        self._uploads: dict[str, tuple[str, bytes | None]] = {}  # upload id -> (key, the part once sent)

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[key] = bytes(data)

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    def copy(self, source: str, target: str) -> None:
        with self._lock:
            if source not in self.objects:
                raise ClientError(
                    {"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}, "CopyObject"
                )
            self.objects[target] = self.objects[source]

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.objects

    def start_upload(self, key: str, expires_in: int) -> tuple[str, str]:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = (key, None)
        return upload_id, f"https://{self.bucket}.fake/{key}?uploadId={upload_id}&partNumber=1&expires={expires_in}"

    def upload_part(self, key: str, upload_id: str, data: bytes) -> None:
        """What the client's PUT to the presigned URL does (refused once the upload is closed)."""
        with self._lock:
            if self._uploads.get(upload_id, (None,))[0] != key:
                raise ClientError(
                    {"Error": {"Code": "NoSuchUpload", "Message": "The upload does not exist"}}, "UploadPart"
                )
            self._uploads[upload_id] = (key, bytes(data))

    def finish_upload(self, key: str, upload_id: str) -> bool:
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None or upload[0] != key:
                raise Conflict("this upload was already completed or replaced meanwhile")
            if upload[1] is None:
                return False
            self.objects[key] = upload[1]
            del self._uploads[upload_id]
            return True

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._lock:
            if self._uploads.get(upload_id, (None,))[0] == key:
                del self._uploads[upload_id]

    def open(self, key: str) -> BinaryIO:
        with self._lock:
            if key not in self.objects:
                raise DependencyFailed(f"cannot read s3://{self.bucket}/{key}: NoSuchKey")
            return io.BytesIO(self.objects[key])

    def hash_object(self, key: str, limit: int) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        body = self.open(key)
        for chunk in iter(lambda: body.read(HASH_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if size > limit:
                break
        return digest.hexdigest(), size


class _FakeTable:
    """Items by key, read as the real stores read them (copies: a caller cannot change what is stored)."""

    key: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}

    def all(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            items = copy.deepcopy(list(self._items.values()))
        return iter(items)

    def matching(self, attribute: str, value: str) -> Iterator[dict[str, Any]]:
        return (item for item in self.all() if item.get(attribute) == value)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(key) if key else None
            return copy.deepcopy(item) if item is not None else None


class FakeInstanceStore(InstanceWrites, _FakeTable):
    key = "instance_id"
    LIVE: ClassVar = InstanceStore.LIVE  # class variables, as the InstanceStorage Protocol declares them
    TERMINAL: ClassVar = InstanceStore.TERMINAL

    def live_for_function(self, function: str, version: int | None = None) -> list[str]:
        return [
            item["instance_id"]
            for item in self.all()
            if item.get("function") == function
            and item.get("status") in self.LIVE
            and (version is None or int(item.get("version", 1)) == version)
        ]

    def create(self, item: dict[str, Any]) -> None:
        with self._lock:
            if item["instance_id"] in self._items:
                raise Conflict(f"instance {item['instance_id']!r} already exists; choose another instanceid")
            self._items[item["instance_id"]] = copy.deepcopy(item)

    def delete(self, instance_id: str) -> None:
        with self._lock:
            self._items.pop(instance_id, None)

    def _write(
        self, instance_id: str, fields: dict[str, Any], remove: tuple[str, ...], only_from: tuple[InstanceStatus, ...]
    ) -> bool:
        with self._lock:
            item = self._items.get(instance_id)
            if item is None or (only_from and item.get("status") not in only_from):
                return False
            item.update(copy.deepcopy(fields), updated_at=now_iso())
            for name in remove:
                item.pop(name, None)
            return True


class FakeSlotStore(_FakeTable):
    key = "slot"

    def held(self) -> set[str]:
        with self._lock:
            return set(self._items)

    def take(
        self, candidates: list[str], item: dict[str, Any], fields_for: Callable[[str], dict[str, Any]] | None = None
    ) -> str | None:
        with self._lock:
            slot = next((s for s in candidates if s not in self._items), None)
            if slot is not None:
                fields = fields_for(slot) if fields_for is not None else {}
                self._items[slot] = {**copy.deepcopy(item), **copy.deepcopy(fields), "slot": slot}
            return slot

    def update(self, slot: str, allocation: str, *, only_from: str | None = None, **fields: Any) -> bool:
        with self._lock:
            item = self._items.get(slot)
            if item is None or item.get("allocation") != allocation:
                return False
            if only_from is not None and item.get("state") != only_from:
                return False
            item.update(copy.deepcopy(fields))
            return True

    def release(self, slot: str, allocation: str) -> bool:
        with self._lock:
            if self._items.get(slot, {}).get("allocation") != allocation:
                return False
            del self._items[slot]
            return True


class FakeWorkflow:
    """The Step Functions calls CCFaaS makes (start an execution, settle a task token), recorded in memory."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.settled: list[tuple[str, str]] = []
        self.refuse_start: Exception | None = None
        self._numbers = itertools.count(1)

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:  # noqa: A002, N803
        if self.refuse_start is not None:
            raise self.refuse_start
        arn = f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"
        self.started.append({"stateMachineArn": stateMachineArn, "name": name, "input": input, "executionArn": arn})
        return {"executionArn": arn, "startDate": now_iso()}

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        self.settled.append(("success", taskToken))
        return {}

    def send_task_failure(self, taskToken: str, error: str = "", cause: str = "") -> dict[str, Any]:  # noqa: N803
        self.settled.append(("failure", taskToken))
        return {}

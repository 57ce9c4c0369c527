"""CCFaaS instances: validate the user policy, record the instance, run its lifecycle workflow.

The caller gets an answer at once (202, with a status URL) or, with
``?wait=N``, once the instance is READY or has ended (FAILED, DELETED). Only its owner or an
administrator sees an instance; to anyone else it does not exist.

Instance ids are scoped per owner: the user's ``instanceid`` is a name in the
user's own namespace, stored under a key that adds a tag of the owner
(:func:`instance_key`). Two users may use the same name, and creating one
tells nobody whether another user has it. The key is what the workflow, the
reaper and VaaS see; users see their name (and the key, for administrators).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ipoc import errors, schemas
from ipoc.publisher_files import refuse_user_reads
from lambdas.ccfaas.lifecycle import STATE_QUOTA, state_size_bound, wait_for
from lambdas.ccfaas.registry import LOADED, Registry
from lambdas.ccfaas.release import ReleaseWait
from lambdas.shared import aws
from lambdas.shared.auth import is_admin
from lambdas.shared.config import settings
from lambdas.shared.stores import InstanceStatus, InstanceStorage, InstanceStore, now_iso

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_WAIT = 25  # below API Gateway's 29 s integration timeout
RECORD_KEPT_SECONDS = 86400  # an instance's record (and its name with it) outlives its TTL by a day: DynamoDB's TTL
PUBLIC_FIELDS = (
    "instance_id",
    "function",
    "version",
    "owner",
    "status",
    "reason",
    "created_at",
    "updated_at",
    "ready_at",
    "expires_at",
    "ttl_seconds",
    "execution_arn",
    "instance_hash",
    "veracruz_server_url",
)


def instance_key(owner: str, name: str) -> str:
    """The table key of ``owner``'s instance ``name``: the name, then a short tag of the owner. Two owners whose
    tags collide share nothing but a 409 (reads check the owner), and the key stays short for labels."""
    return f"{name}.{hashlib.sha256(owner.encode()).hexdigest()[:8]}"


def execution_arn_of(state_machine_arn: str, name: str) -> str | None:
    """The ARN Step Functions gives a standard workflow's execution ``name``:
    ``arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>`` (None without a state machine
    ARN: starting the execution then fails, and says why)."""
    prefix, marker, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}" if marker else None


def name_of(record: dict[str, Any]) -> str:
    """The instance id its owner chose (records made before ids were scoped have only their key)."""
    return record.get("name") or record["instance_id"]


def view(record: dict[str, Any]) -> dict[str, Any]:
    """What a caller may see: never the task token; the policy text only once READY."""
    shown = {k: record[k] for k in PUBLIC_FIELDS if k in record}
    shown["instance_id"] = name_of(record)
    shown["key"] = record["instance_id"]
    if record.get("status") == InstanceStatus.READY and "policy" in record:
        shown["policy"] = record["policy"]
    shown["status_url"] = f"/instance/{name_of(record)}"
    return shown


@dataclass
class Instances:
    instances: InstanceStorage
    registry: Registry

    @classmethod
    def from_settings(cls) -> Instances:
        return cls(InstanceStore(), Registry.from_settings())

    def create(
        self, user_policy: Any, owner: str, *, ttl: int | None = None, stream: dict[str, str] | None = None
    ) -> dict[str, Any]:
        schemas.validate("user", user_policy)
        instance_id = user_policy["instanceid"]
        if not _INSTANCE_ID.match(instance_id):
            raise errors.ValidationError(
                "$.instanceid must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
                path="$.instanceid",
            )
        record = self.registry.get(user_policy["function"])  # name, name:VERSION or name:ALIAS → one exact version
        refuse_user_reads(record.policy, user_policy)  # before anything is recorded (compose checks it again)
        missing = [path for path, entry in record.files.items() if entry["status"] != LOADED]
        if missing:
            raise errors.Conflict(
                f"function {record.name!r} is not fully loaded: {', '.join(sorted(missing))} still to upload"
            )
        config = settings()
        ttl_seconds = config.default_ttl if ttl is None else ttl
        if not 60 <= ttl_seconds <= config.max_ttl:
            raise errors.ValidationError(f"ttl must be between 60 and {config.max_ttl} seconds")
        key = instance_key(owner, instance_id)
        execution_name = f"{re.sub(r'[^A-Za-z0-9_-]', '-', instance_id)[:40]}-{uuid.uuid4().hex[:12]}"
        # The execution's ARN follows from its name, so the record carries it from its first (durable) write.
        execution_arn = execution_arn_of(config.state_machine_arn, execution_name)
        item = {
            "instance_id": key,
            "name": instance_id,
            "function": record.name,
            "version": record.version,
            "owner": owner,
            "status": InstanceStatus.PENDING.value,
            "created_at": now_iso(),
            "ttl_seconds": ttl_seconds,
            "expires_at": int(time.time()) + ttl_seconds + RECORD_KEPT_SECONDS,  # DynamoDB's TTL attribute
            **({"execution_arn": execution_arn} if execution_arn else {}),
        }
        execution_input = {
            "instance_id": key,
            "function": record.name,
            "version": record.version,  # the exact version composed and provisioned, whatever aliases do later
            "owner": owner,
            "user_policy": user_policy,
            "ttl_seconds": ttl_seconds,
        }
        execution_input["stream"] = stream  # null when nothing is to be streamed
        size = state_size_bound(execution_input, record.policy)
        if size > STATE_QUOTA:
            raise errors.PayloadTooLarge(
                f"this user policy ({len(user_policy['identities'])} identities) would make the instance's "
                f"workflow state about {size} bytes, over Step Functions' {STATE_QUOTA}-byte limit: "
                "use fewer identities or fewer file_rights entries per identity"
            )
        try:
            self.instances.create(item)
        except errors.Conflict:  # only the caller's own instances share its namespace
            existing = self.instances.get(key)  # described only if the caller's own (the key's owner tag is short)
            raise errors.Conflict(
                _name_taken(instance_id, existing if existing and existing.get("owner") == owner else None)
            ) from None
        # A version's deletion marks it, and a file's unloading marks the file, before looking for instances;
        # this creation wrote its record before reading the version again: one of the two sees the other.
        try:
            current = self.registry.version(record.name, record.version)
        except errors.NotFound:
            self.instances.delete(key)
            raise errors.Conflict(
                f"version {record.version} of function {record.name!r} was deleted meanwhile"
            ) from None
        unloaded = sorted(path for path, entry in current.files.items() if entry["status"] != LOADED)
        if unloaded:
            self.instances.delete(key)
            raise errors.Conflict(
                f"{', '.join(unloaded)} of function {record.name!r} version {record.version} was unloaded "
                "meanwhile: upload it again, then retry"
            )
        try:
            execution = aws.client("stepfunctions").start_execution(
                stateMachineArn=config.state_machine_arn, name=execution_name, input=json.dumps(execution_input)
            )
        except Exception as exc:
            self.instances.delete(key)
            raise errors.DependencyFailed(f"could not start the instance's workflow: {exc}") from None
        if execution["executionArn"] != execution_arn:  # not for a standard workflow; kept right if ever
            self.instances.update(key, execution_arn=execution["executionArn"])
        return {**item, "execution_arn": execution["executionArn"]}

    def get(self, instance_id: str, caller: str) -> dict[str, Any]:
        """The caller's instance by its name; administrators may also name anyone's by key, or by name when unique."""
        record = self.instances.get(instance_key(caller, instance_id))
        if record is not None and record.get("owner") != caller:
            record = None  # another owner whose tag is the same as the caller's
        if record is None:
            unscoped = self.instances.get(instance_id)  # a key, or a record from before ids were scoped
            if unscoped is not None and (
                is_admin(caller) or ("name" not in unscoped and unscoped.get("owner") == caller)
            ):
                record = unscoped
        if record is None and is_admin(caller):
            named = list(self.instances.matching("name", instance_id))
            if len(named) > 1:
                raise errors.Conflict(
                    f"{len(named)} users have an instance named {instance_id!r}; name one by its key: "
                    + ", ".join(sorted(r["instance_id"] for r in named))
                )
            record = named[0] if named else None
        if record is None:
            raise errors.NotFound(f"instance {instance_id!r} does not exist")
        return record

    def list(self, caller: str) -> list[dict[str, Any]]:
        admin = is_admin(caller)
        return sorted(
            (r for r in self.instances.all() if admin or r.get("owner") == caller),
            key=lambda r: r.get("created_at", ""),
        )

    def wait(self, key: str, statuses: tuple[str, ...], seconds: float) -> dict[str, Any]:
        """Poll the instance stored under ``key`` (a record's ``instance_id``, not the name a user gave)."""
        return wait_for(self.instances, key, statuses, min(seconds, MAX_WAIT)) or {}

    def delete(self, instance_id: str, caller: str, wait_seconds: float = 20) -> dict[str, Any]:
        """Release the workflow into teardown (idempotent) and wait, bounded, for the end."""
        record = self.get(instance_id, caller)
        if record["status"] in InstanceStore.TERMINAL:
            return record
        key = record["instance_id"]
        ReleaseWait(self.instances).release(key)  # without a waiting workflow yet, it releases itself at its wait
        return self.wait(key, InstanceStore.TERMINAL, wait_seconds)


def _name_taken(instance_id: str, existing: dict[str, Any] | None) -> str:
    """Why ``instance_id`` is taken: by a live instance, or by the record an ended one keeps (its name with it)
    until the record's TTL."""
    status = (existing or {}).get("status")
    expires = (existing or {}).get("expires_at")
    if status in InstanceStore.TERMINAL and expires:
        until = _dt.datetime.fromtimestamp(int(expires), _dt.UTC).isoformat(timespec="seconds")
        return (
            f"you already have an instance {instance_id!r}: it is {status}, and its record keeps the name until "
            f"about {until}; choose another instanceid"
        )
    held = f" ({status})" if status else ""
    return f"you already have an instance {instance_id!r}{held}; choose another instanceid"

"""The instance lifecycle's task actions, one function per workflow state.

Each action receives the execution's state, parsed once by the task handler
(:class:`~lambdas.ccfaas.execution.ExecutionState`: the documented input plus
what earlier states added), and is idempotent: a retried task never allocates twice
or double-writes a file. Expected waits (no free slot yet, a runtime still
starting) are results the workflow's Choice states loop on, not errors: a
Lambda error trips the task-errors alarm. Real failures are raised as
exceptions whose class names the workflow's Catch rules record.

An instance has one deadline, :func:`ttl_deadline` (created_at + its TTL):
the workflow's release wait times out at it and the reaper enforces it too;
either way an expiry ends DELETED.

Statuses change only through ``InstanceStore.transition``, which owns the rules
(nothing after FAILED or DELETED). A failure shows as TEARING_DOWN, with its
reason, until :meth:`Lifecycle.teardown` has released the runtime and its slot;
only then is FAILED (or, after a release, DELETED) written. VaaS and the
streamer are reached through ``lambdas.shared.ports``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import posixpath
import time
from dataclasses import dataclass
from typing import Any

from ipoc import errors
from ipoc import policy as P
from ipoc.client import VeracruzClient
from ipoc.rights import WRITE
from ipoc.wire.carrier import port_open, split_url
from lambdas.ccfaas.execution import ALLOCATION_FIELDS, Allocation, ExecutionState
from lambdas.ccfaas.registry import LOADED, Registry
from lambdas.ccfaas.release import ReleaseWait
from lambdas.shared import ports
from lambdas.shared.config import settings
from lambdas.shared.identity import program_load_identity
from lambdas.shared.ports import Runtimes, Streamer
from lambdas.shared.stores import ArtifactStore, InstanceStatus, InstanceStorage, InstanceStore, now_iso, parse_iso

# Seconds Allocate gives a just-started runtime to accept a connection before the workflow waits for it instead
# (WaitForRuntime): a warm or local runtime listens when VaaS answers; a pod's is still starting.
ANSWERING_TIMEOUT = 0.5


class RuntimeNeverReady(errors.DependencyFailed):
    code = "RuntimeNeverReady"


class ProvisioningFailed(errors.DependencyFailed):
    code = "ProvisioningFailed"


class StreamFailed(errors.DependencyFailed):
    code = "StreamFailed"


@dataclass
class Lifecycle:
    instances: InstanceStorage
    registry: Registry
    vaas: Runtimes
    streamer: Streamer

    @classmethod
    def from_settings(cls) -> Lifecycle:
        return cls(InstanceStore(), Registry.from_settings(), ports.runtimes(), ports.streamer())

    @property
    def release_wait(self) -> ReleaseWait:
        return ReleaseWait(self.instances)

    # -- states ----------------------------------------------------------------

    def compose(self, state: ExecutionState) -> dict[str, Any]:
        """The VaaS policy: function + user policy + program-load identity (with file_hashes), for Allocate."""
        record = self.registry.of_instance(state.function, state.version)
        function = dict(record.policy)
        if state.stream:
            # The workflow streams as the program-load identity: grant it write on the target's directory.
            directory = posixpath.dirname(state.stream.filename.rstrip("/")) + "/"
            function["file_rights"] = [*function["file_rights"], {"file_name": directory, "rights": int(WRITE)}]
        loaded = [path for path, entry in record.files.items() if entry["status"] == LOADED]
        vaas_policy = P.compose_vaas_policy(
            function,
            {**state.user_policy, "function": record.name},
            program_load_identity().certificate,
            uploaded_programs=[p for p in loaded if record.files[p]["kind"] == "program"],
            uploaded_data_files=[p for p in loaded if record.files[p]["kind"] == "data_file"],
            instance_id=state.instance_id,
        )
        return vaas_policy

    def allocate(self, state: ExecutionState) -> dict[str, Any]:
        """Compose the VaaS policy (:meth:`compose`) and take a runtime for it; ``waiting`` = "NoCapacity" (and
        empty fields) while no slot is free. ALLOCATING is written when a slot is waited for or a runtime started;
        a warm runtime is handed over in milliseconds, and the instance goes from PENDING to PROVISIONING."""
        instance_id = state.instance_id
        existing = self.instances.get(instance_id) or {}
        if existing.get("vaas_name"):  # a retried task: the allocation already happened
            return {"waiting": "", "answering": False, **{k: existing[k] for k in ALLOCATION_FIELDS}}
        vaas_policy = self.compose(state)  # again after each wait for a slot: one registry read
        pending = existing.get("status") == InstanceStatus.PENDING
        if pending and not self.vaas.starts_at_once():
            self.instances.transition(instance_id, InstanceStatus.ALLOCATING)
            pending = False
        started = parse_iso(existing.get("created_at")) or _dt.datetime.now(_dt.UTC)
        try:
            reply = self.vaas.create(vaas_policy)
        except errors.NoCapacity:
            waited = (_dt.datetime.now(_dt.UTC) - started).total_seconds()
            if waited > settings().allocate_wait:
                raise errors.DependencyFailed(
                    f"no runtime slot became free within {settings().allocate_wait} s (waited {waited:.0f} s)"
                ) from None
            if pending:  # a warm runtime was ready, but no slot is free: the instance waits
                self.instances.transition(instance_id, InstanceStatus.ALLOCATING)
            return {"waiting": "NoCapacity", "answering": False, **dict.fromkeys(ALLOCATION_FIELDS, "")}
        document = json.loads(reply["policy"])
        port = document["veracruz_server_url"].rsplit(":", 1)[1]
        allocation = Allocation(
            vaas_name=f"veracruz-nitro-server:{port}",
            instance_hash=reply["instance_hash"],
            policy=reply["policy"],
            veracruz_server_url=document["veracruz_server_url"],
        )
        # remove=() said outright: mypy would otherwise try the allocation's str fields against that tuple parameter
        if not self.instances.transition(instance_id, InstanceStatus.PROVISIONING, remove=(), **allocation.fields()):
            # the instance was deleted or failed meanwhile: give the runtime back
            self.vaas.delete(allocation.vaas_name, instance_id, allocation.instance_hash)
            raise errors.Conflict(f"instance {instance_id} ended while its runtime was being allocated")
        answering = port_open(*split_url(allocation.veracruz_server_url), timeout=ANSWERING_TIMEOUT)
        return {"waiting": "", "answering": answering, **allocation.fields()}

    def wait_ready(self, state: ExecutionState) -> dict[str, Any]:
        """``ready``: whether the runtime answers; an error only once it has not within IPOC_READY_TIMEOUT."""
        host, port = split_url(state.require_allocation().veracruz_server_url)
        if port_open(host, port, timeout=2):
            return {"ready": True}
        record = self.instances.get(state.instance_id) or {}
        started = parse_iso(record.get("updated_at")) or _dt.datetime.now(_dt.UTC)
        if (_dt.datetime.now(_dt.UTC) - started).total_seconds() > settings().ready_timeout:
            raise RuntimeNeverReady(f"the runtime at {host}:{port} did not answer within {settings().ready_timeout} s")
        return {"ready": False}

    def provision(self, state: ExecutionState) -> dict[str, Any]:
        """Programs first, then data files by priority, as the program-load identity, hash-checked by the runtime;
        then READY (:meth:`mark_ready`, in the same task: one workflow step fewer before the user may connect).
        Idempotent: the runtime accepts the same bytes again."""
        return {"provisioned": self._provision(state), **self.mark_ready(state)}

    def _provision(self, state: ExecutionState) -> list[str]:
        record = self.registry.of_instance(state.function, state.version)
        artifacts = ArtifactStore()
        identity = program_load_identity()
        loaded = []
        try:
            client = VeracruzClient(state.require_allocation().policy, identity.certificate, identity.private_key)
            client.connect()
        except errors.VeracruzError as exc:
            raise ProvisioningFailed(
                f"connecting to the runtime as the program-load identity failed: {exc.message}"
            ) from None
        try:
            for path in P.provisioning_order(record.policy):
                entry = record.files[path]
                body = artifacts.open(entry["key"])
                try:
                    client.stream_file(path, body)
                except errors.VeracruzError as exc:
                    raise ProvisioningFailed(f"provisioning {path} failed: {exc.message}") from None
                finally:
                    body.close()
                loaded.append(path)
        finally:
            client.close()
        return loaded

    def mark_ready(self, state: ExecutionState) -> dict[str, Any]:
        """READY; ``ttl_remaining`` is what the release wait may last (its timeout), up to the instance's deadline."""
        self.instances.transition(state.instance_id, InstanceStatus.READY, ready_at=now_iso())
        return {"ttl_remaining": self.ttl_remaining(state)}

    def ttl_remaining(self, state: ExecutionState) -> int:
        """Whole seconds left until the instance's deadline, at least 1 (a Task's timeout must be positive)."""
        record = self.instances.get(state.instance_id) or {}
        deadline = ttl_deadline({"ttl_seconds": state.ttl_seconds, **record})
        if deadline is None:
            return max(1, int(state.ttl_seconds or 1))
        return max(1, math.ceil((deadline - _dt.datetime.now(_dt.UTC)).total_seconds()))

    def stream(self, state: ExecutionState) -> dict[str, Any]:
        """Stream the S3 object named at creation into the runtime, as the program-load identity."""
        if state.stream is None:
            raise ValueError(f"the workflow state of {state.instance_id} names nothing to stream ($.stream)")
        source = state.stream
        identity = program_load_identity()
        try:
            result = self.streamer(
                bucket=source.bucket,
                key=source.key,
                region=source.region,
                filename=source.filename,
                policy=state.require_allocation().policy,
                certificate=identity.certificate,
                private_key=identity.private_key,
                chunk_size=settings().stream_chunk,
            )
        except errors.IpocError as exc:
            raise StreamFailed(exc.message) from None
        return {**result, "ttl_remaining": self.ttl_remaining(state)}

    def await_release(self, state: ExecutionState, token: str) -> dict[str, Any]:
        """Keep the task token with the instance until a delete, the reaper or the TTL ends the wait."""
        self.release_wait.park(state.instance_id, token)
        return {}

    def expire(self, state: ExecutionState) -> dict[str, Any]:
        self.instances.transition(
            state.instance_id, InstanceStatus.RELEASING, f"its TTL of {state.ttl_seconds} s expired"
        )
        return {}

    def record_failure(self, state: ExecutionState) -> dict[str, Any]:
        """TEARING_DOWN with the failure's reason, before teardown releases anything; FAILED comes after."""
        reason = failure_reason(state.error or {})
        # A reason recorded first (e.g. the reaper's "runtime died") is the one the user sees: the transition
        # is refused when the instance is already tearing down.
        self.instances.transition(state.instance_id, InstanceStatus.TEARING_DOWN, reason)
        return {"reason": reason}

    def teardown(self, state: ExecutionState, failed: bool = False) -> dict[str, Any]:
        """Give the runtime and its slot back, then write the terminal status: DELETED, or FAILED when the instance
        failed (``failed``, or TEARING_DOWN). Nobody reads FAILED or DELETED while the runtime still runs."""
        instance_id = state.instance_id
        if failed:  # RecordFailure normally did this; not when it failed itself, nor for the reaper's teardown
            self.instances.transition(instance_id, InstanceStatus.TEARING_DOWN, failure_reason(state.error or {}))
        record = self.instances.get(instance_id) or {}
        if record.get("vaas_name"):
            try:
                self.vaas.delete(record["vaas_name"], instance_id, record["instance_hash"])
            except errors.NotFound:
                pass  # already gone: a retried teardown
        released: dict[str, Any] = {"remove": ("task_token",), "torn_down_at": now_iso()}
        # DELETED after a release; FAILED when the instance is tearing down after a failure (including one the
        # reaper recorded while this release was under way: DELETED is refused then, FAILED is written).
        if not self.instances.transition(instance_id, InstanceStatus.DELETED, **released):
            self.instances.transition(instance_id, InstanceStatus.FAILED, **released)
        return {}


def failure_reason(error: dict[str, Any]) -> str:
    """``Error: message`` from a Catch's error object (the cause is our task's error JSON when it raised)."""
    name = error.get("Error") or "Error"
    cause = error.get("Cause") or ""  # null when the failure carried none (moto's SendTaskFailure passes none)
    try:
        message = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        message = cause
    return f"{name}: {message}" if message else name


STATE_QUOTA = 256 * 1024  # bytes: Step Functions' limit on an execution's input and on each state's output
# What the VaaS and the workflow add beyond the composed policy: the proxy's CA certificate, runtime hashes and
# URLs in the policy text, a program-load certificate larger than the stand-in (RSA), the small task results.
STATE_ALLOWANCE = 16 * 1024


def state_size_bound(execution_input: dict[str, Any], function_policy: dict[str, Any]) -> int:
    """An upper bound, in bytes, of the workflow's largest state for this input: the input plus the composed
    policy's text that Allocate returns (JSON-escaped); the composed policy itself no longer travels in the state
    (Allocate composes it). CCFaaS refuses an instance over :data:`STATE_QUOTA` at the edge, where the user gets a
    413, not a failed execution."""
    user_policy = {
        **execution_input["user_policy"],
        "function": function_policy["function"],
    }  # "name:ref" → the name, as compose does
    composed = P.compose_vaas_policy(function_policy, user_policy, _stand_in_certificate())
    allocation = {
        "waiting": "",
        "answering": False,
        "vaas_name": "",
        "instance_hash": "",
        "veracruz_server_url": "",
        "policy": P.serialise(composed),
    }
    parts = (execution_input, allocation)
    return sum(len(json.dumps(part).encode("utf-8")) for part in parts) + STATE_ALLOWANCE


@functools.cache
def _stand_in_certificate() -> str:
    from ipoc.certs import new_identity

    return new_identity("program-load size stand-in").certificate


def ttl_deadline(record: dict[str, Any]) -> _dt.datetime | None:
    """The instance's one deadline: created_at + ttl_seconds (None when the record lacks either)."""
    created = parse_iso(record.get("created_at"))
    ttl = record.get("ttl_seconds")
    if created is None or ttl is None:
        return None
    return created + _dt.timedelta(seconds=int(ttl))


def wait_for(
    instances: InstanceStorage, instance_id: str, statuses: tuple[str, ...], seconds: float
) -> dict[str, Any] | None:
    """Poll an instance until its status is one of ``statuses`` or ``seconds`` pass; return the last record."""
    deadline = time.monotonic() + seconds
    while True:
        record = instances.get(instance_id)
        if record is None or record.get("status") in statuses or time.monotonic() >= deadline:
            return record
        time.sleep(0.1)

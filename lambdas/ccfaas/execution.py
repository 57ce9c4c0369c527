"""The lifecycle workflow's execution state, typed: what ``instances.create`` starts it with, plus what its steps
add under their ResultPaths (``$.allocation``, ``$.ready``, ``$.error``, ...).

The task handler parses the state once (:meth:`ExecutionState.parse`); actions read attributes, not nested
keys. ``tests/unit/lambdas/test_asl_contract.py`` checks the ASL against :data:`INPUT_FIELDS` and
:data:`RESULT_PATHS`, so a renamed ResultPath fails a test, not an execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The execution's input, as instances.create writes it.
INPUT_FIELDS = ("instance_id", "function", "version", "owner", "user_policy", "ttl_seconds", "stream")
# What the steps add: the top-level key each ResultPath (or Catch's ResultPath) writes, and what it holds.
RESULT_PATHS = {
    "allocation": "the runtime: name, hash, exact policy text, URL, whether it answers yet; or a wait for a slot "
    "(Allocate)",
    "runtime": "whether the runtime answers (WaitForRuntime)",
    "ready": "seconds the release wait may last (Provision, once READY; StreamInput)",
    "release": "the release wait's result (WaitForRelease)",
    "error": "the failure a Catch caught: Error and Cause",
    "record_error": "RecordFailure's own failure",
    "teardown_error": "TeardownAfterFailure's own failure",
}
ALLOCATION_FIELDS = ("vaas_name", "instance_hash", "policy", "veracruz_server_url")


@dataclass(frozen=True)
class StreamSource:
    """An S3 object to stream into the runtime once READY."""

    bucket: str
    key: str
    filename: str
    region: str | None = None


@dataclass(frozen=True)
class Allocation:
    """The runtime Allocate took; ``waiting`` is "NoCapacity" (and the rest empty) while no slot is free.
    ``answering``: the runtime already accepted a connection (a warm or local start returns once it listens), so
    the workflow goes straight to Provision instead of waiting for it."""

    vaas_name: str
    instance_hash: str
    policy: str
    veracruz_server_url: str
    waiting: str = ""
    answering: bool = False

    def fields(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ALLOCATION_FIELDS}


@dataclass(frozen=True)
class ExecutionState:
    instance_id: str
    function: str = ""
    version: int | None = None
    owner: str | None = None
    user_policy: dict[str, Any] = field(default_factory=dict)
    ttl_seconds: int | None = None
    stream: StreamSource | None = None
    allocation: Allocation | None = None  # $.allocation
    error: dict[str, Any] | None = None  # $.error: {"Error": ..., "Cause": ...}

    @classmethod
    def parse(cls, document: dict[str, Any]) -> ExecutionState:
        """The state as Step Functions passes it (``"state.$": "$"``); unknown keys are the workflow's own."""
        stream = document.get("stream")
        allocation = document.get("allocation")
        return cls(
            instance_id=document["instance_id"],
            function=document.get("function", ""),
            version=document.get("version"),
            owner=document.get("owner"),
            user_policy=document.get("user_policy") or {},
            ttl_seconds=document.get("ttl_seconds"),
            stream=StreamSource(stream["bucket"], stream["key"], stream["filename"], stream.get("region"))
            if stream
            else None,
            allocation=Allocation(
                **{k: allocation.get(k, "") for k in (*ALLOCATION_FIELDS, "waiting")},
                answering=bool(allocation.get("answering")),
            )
            if allocation
            else None,
            error=document.get("error"),
        )

    def require_allocation(self) -> Allocation:
        if self.allocation is None or not self.allocation.vaas_name:
            raise ValueError(f"the workflow state of {self.instance_id} has no allocation ($.allocation)")
        return self.allocation

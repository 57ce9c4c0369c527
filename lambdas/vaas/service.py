"""VaaS: allocate a slot, complete the policy, start a runtime; list, show and delete instances.

A slot is a runtime port. Taking one is a conditional write, so concurrent
requests never share a slot; every failure after that releases it, so a
failed request leaves nothing allocated. A create tries only the slots a
consistent read found free, and completes the policy for those alone (review
F8). A slot is released only by its own allocation: a delete that comes while
the runtime is starting marks the slot, and the create that holds it stops the
runtime and frees it (review F7).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass
from typing import Any

from ipoc import schemas
from ipoc.errors import Conflict, NoCapacity, NotFound, ValidationError
from ipoc.policy import CCFAAS_INSTANCE_ID, Infrastructure, complete_policy
from lambdas.shared.config import settings
from lambdas.shared.stores import SlotStorage, SlotStore, now_iso, parse_iso
from lambdas.vaas.backends import RuntimeBackend, RuntimeSetup, backend_from_settings

NAME_HOST = "veracruz-nitro-server"  # instance names are "veracruz-nitro-server:<port>", as the original
STARTING, DELETING = "STARTING", "DELETING"  # a slot's states before RUNNING (DELETING: deleted while starting)
# Lambda ends every invocation within 15 minutes (its largest timeout, which the workflow's tasks use), so a
# slot still STARTING after that lost its create, and a delete frees it at once.
STARTS_END_WITHIN = _dt.timedelta(seconds=900)


@dataclass
class VaaS:
    slots: SlotStorage
    backend: RuntimeBackend
    port_min: int
    port_max: int

    @classmethod
    def from_settings(cls) -> VaaS:
        config = settings()
        return cls(SlotStore(), backend_from_settings(), config.port_min, config.port_max)

    def create(self, vaas_policy: Any) -> dict[str, Any]:
        schemas.validate("vaas", vaas_policy)
        setup = self.backend.runtime_setup()
        candidates = self._free_looking_slots()
        # Complete the policy for the first of them, the slot the take usually gets; that also refuses a bad policy
        # before a slot is taken, or found busy. Only a slot taken in between costs another completion.
        first = int(candidates[0]) if candidates else self.port_min
        replies = {str(first): self._complete(vaas_policy, setup, first)}
        allocation = uuid.uuid4().hex

        def starting(slot: str) -> dict[str, Any]:
            """The slot's item as it is taken: already STARTING, with the policy completed for its port (one
            durable write where taking, then naming the runtime, were two)."""
            if slot not in replies:
                replies[slot] = self._complete(vaas_policy, setup, int(slot))
            reply = replies[slot]
            return {
                "state": STARTING,
                "instance_hash": reply["instance_hash"],
                "veracruz_server_url": f"{setup.endpoint_host}:{slot}",
                **_optional_id(reply),
            }

        slot = self.slots.take(candidates, {"allocation": allocation, "created_at": now_iso()}, fields_for=starting)
        if slot is None:
            raise NoCapacity(
                f"all {self.port_max - self.port_min + 1} runtime slots (ports {self.port_min}-{self.port_max}) are "
                "in use; delete an instance or retry later"
            )
        port = int(slot)
        facts: dict[str, Any] = {}
        try:
            reply = replies[slot]
            labels = {"veracruz-nitro": "server", "veracruz-hash": reply["instance_hash"]}
            if "instance_id" in reply:
                labels["veracruz-id"] = reply["instance_id"]
            facts = self.backend.start(port, reply["policy"], labels)
            running = self.slots.update(slot, allocation, only_from=STARTING, state="RUNNING", facts=facts)
        except BaseException:
            self.backend.stop(port, facts)
            self.slots.release(slot, allocation)
            raise
        if not running:  # deleted while starting: the slot waited for this start, which now gives it back
            self.backend.stop(port, facts)
            self.slots.release(slot, allocation)
            raise Conflict(
                f"Veracruz instance {NAME_HOST}:{slot} was deleted while its runtime was starting; create it again"
            )
        return reply

    def _free_looking_slots(self) -> list[str]:
        """The ports no slot item held when read (consistently), lowest first: the only ones a create tries. The
        take's conditional put still decides; the read spares the create the put, and the policy completion for
        the port (the full policy names it), of each busy slot. Review F8: with all ten busy, as while the
        workflow's Allocate polls create for a slot, a create spent 14.7 ms of client CPU (on moto), 6.1 ms of it
        in ten completions; now 2.3 ms, one completion. An empty table pays the read: +0.5 ms. A slot freed between
        the read and the take is not tried: that create answers NoCapacity, and the workflow's Allocate asks again.
        The read takes the slots' keys only (``SlotStore.held``), not their items."""
        held = self.slots.held()
        return [str(port) for port in range(self.port_min, self.port_max + 1) if str(port) not in held]

    def starts_at_once(self) -> bool:
        """Whether the backend holds a runtime started and attested ahead, which a create would hand out now."""
        return self.backend.has_warm_runtime()

    @staticmethod
    def _complete(vaas_policy: Any, setup: RuntimeSetup, port: int) -> dict[str, Any]:
        return complete_policy(vaas_policy, infrastructure(setup, port))

    def list(self, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        entries = []
        for item in sorted(self.slots.all(), key=lambda i: int(i["slot"])):
            if _matches(item, instance_id, instance_hash):
                entries.append({f"{NAME_HOST}:{item['slot']}": self._view(item)})
        return {"veracruz": entries}

    def show(self, name: str, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        item = self._find(name, instance_id, instance_hash)
        return self._view(item)

    def delete(self, name: str, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        if not instance_hash:
            raise ValidationError(
                "instance_hash is required to delete an instance (it was returned when it was created)"
            )
        item = self._find(name, instance_id, instance_hash)
        deleted = {"deleted": f"{NAME_HOST}:{item['slot']}"}
        if item.get("state") in (STARTING, DELETING) and _start_may_be_running(item):
            # Its create is still starting the runtime. Stopping it and freeing the slot now would let that start
            # finish into the next allocation of the port; mark it instead, and the create gives the slot back.
            if item["state"] == DELETING or self.slots.update(
                item["slot"], item["allocation"], only_from=STARTING, state=DELETING
            ):
                return deleted
            item = self._find(name, instance_id, instance_hash)  # the start ended meanwhile: delete as usual
        self.backend.stop(int(item["slot"]), item.get("facts") or {})
        self.slots.release(item["slot"], item["allocation"])
        return deleted

    def _find(self, name: str, instance_id: str | None, instance_hash: str | None) -> dict[str, Any]:
        slot = self._slot_of(name)
        item = self.slots.get(slot) if slot else None
        if item is None or "instance_hash" not in item or not _matches(item, instance_id, instance_hash):
            raise NotFound(
                f"Veracruz instance {name!r} does not exist" + (" with those instance_id/instance_hash" if item else "")
            )
        return item

    def _slot_of(self, name: str) -> str | None:
        """``<host>:<port>`` where host is the instance name's or the endpoint's; the port picks the slot."""
        host, sep, port = name.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()):
            raise ValidationError(f"instance name {name!r} must be <host>:<port>, e.g. {NAME_HOST}:{self.port_min}")
        if host not in (NAME_HOST, self.backend.runtime_setup().endpoint_host):
            return None
        return port

    def _view(self, item: dict[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = {}
        if "instance_id" in item:
            view["instance_id"] = item["instance_id"]
        if "instance_hash" in item:
            view["instance_hash"] = item["instance_hash"]
        state = item.get("state", "UNKNOWN")
        if state == "RUNNING":
            runtime = self.backend.status(int(item["slot"]), item.get("facts") or {})
            state = {"running": "OK", "starting": "STARTING"}.get(runtime, runtime.upper())
        view["status"] = state
        if "veracruz_server_url" in item:
            view["veracruz_server_url"] = item["veracruz_server_url"]
        view["created_at"] = item.get("created_at")
        return view


def _start_may_be_running(item: dict[str, Any]) -> bool:
    taken = parse_iso(item.get("created_at"))
    if taken is None:
        return False  # no readable start time: nothing to wait for
    return _dt.datetime.now(_dt.UTC) - taken < STARTS_END_WITHIN


def _optional_id(reply: dict[str, Any]) -> dict[str, Any]:
    return {"instance_id": reply["instance_id"]} if "instance_id" in reply else {}


def _matches(item: dict[str, Any], instance_id: str | None, instance_hash: str | None) -> bool:
    # The original CCFaaS names every instance "CCFaaS"; ours passes the user's instance id. An
    # original-style call (instance_id=CCFaaS plus the hash) is identified by its hash alone.
    if instance_id == CCFAAS_INSTANCE_ID and instance_hash:
        instance_id = None
    if instance_id is not None and item.get("instance_id") != instance_id:
        return False
    if instance_hash is not None and item.get("instance_hash") != instance_hash[:59]:
        return False
    return True


def infrastructure(setup: RuntimeSetup, port: int) -> Infrastructure:
    """What a policy completed for the runtime on ``port`` names: the full policy differs per port."""
    return Infrastructure(
        proxy_attestation_server_url=setup.proxy_url,
        proxy_service_cert=setup.proxy_cert,
        runtime_hash=setup.runtime_hash,
        veracruz_server_url=f"{setup.endpoint_host}:{port}",
        platform=setup.platform,
    )

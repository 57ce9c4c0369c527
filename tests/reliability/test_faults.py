"""Fault injection into the instance lifecycle (the real ASL in moto's interpreter, the real task
Lambda in process, real runtime processes) and into the kubernetes backend (kmock).

After every fault the instance must be FAILED (or DELETED) with a reason, and no runtime process,
slot or staged upload may remain. Faults are injected by wrapping the task handler's actions, the
one seam between the workflow and our code; nothing else is mocked.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from ipoc.errors import DependencyFailed
from lambdas.ccfaas.execution import ExecutionState
from lambdas.ccfaas.lifecycle import Lifecycle
from lambdas.ccfaas.reaper import Reaper
from lambdas.vaas.backends import manifests
from tests.reliability.tally import TALLY
from tests.support import policies
from tests.support.kmock_backend import LABELS, NAMESPACE, POLICY, backend_for, kubelet, read
from tests.support.lifecycle import leaks
from tests.support.settings import use_settings
from tests.support.waiting import wait_until

TERMINAL = ("FAILED", "DELETED")


def inject(monkeypatch, action: str, fault: Callable[[Lifecycle, dict[str, Any], Callable], Any]) -> list[int]:
    """Wrap ``Lifecycle.<action>`` so ``fault(lifecycle, state, original)`` runs instead; count the calls."""
    original = getattr(Lifecycle, action)
    calls: list[int] = []

    def wrapped(self: Lifecycle, state: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return fault(self, state, lambda: original(self, state, *args, **kwargs))

    monkeypatch.setattr(Lifecycle, action, wrapped)
    return calls


def through_wait_for_runtime(monkeypatch, action: str) -> None:
    """A local runtime answers once allocated, so the workflow skips WaitForRuntime; for a fault in that state,
    make Allocate report it not answering yet (as a pod still starting would be), so the state runs."""
    if action == "wait_ready":
        inject(monkeypatch, "allocate", lambda lifecycle, state, original: {**original(), "answering": False})


def settle(plane, instance_id: str) -> dict:
    record = plane.wait_status(instance_id, TERMINAL, timeout=90)
    plane.execution(record["execution_arn"], timeout=90)
    wait_until(lambda: not leaks(plane), timeout=20, interval=0.1, what="nothing left behind")
    return record


def check_no_leaks(plane) -> None:
    found = leaks(plane)
    TALLY.add(leaks_found=len(found))
    assert found == []


def raise_fault(message: str) -> Callable:
    def fault(lifecycle: Lifecycle, state: dict, original: Callable) -> Any:
        raise RuntimeError(message)

    return fault


@pytest.mark.parametrize("action", ["compose", "allocate", "wait_ready", "provision", "mark_ready"])
def test_a_task_raising_at_each_state_fails_the_instance_and_leaves_nothing(plane, ids, echo_wasm, monkeypatch, action):
    plane.register_echo(echo_wasm)
    through_wait_for_runtime(monkeypatch, action)
    inject(monkeypatch, action, raise_fault(f"injected fault in {action}"))
    assert plane.create(f"raise-{action}", [(ids.user, policies.USER_RIGHTS)]).status == 202
    record = settle(plane, f"raise-{action}")
    TALLY.add(faults_injected=1)
    assert record["status"] == "FAILED" and f"injected fault in {action}" in record["reason"]
    check_no_leaks(plane)


def test_a_task_timing_out_fails_the_instance_and_leaves_nothing(plane, ids, echo_wasm, monkeypatch):
    """Lambda reports a timeout to Step Functions as a task error; the workflow's catch-all must tear down."""
    plane.register_echo(echo_wasm)

    def timeout(lifecycle: Lifecycle, state: dict, original: Callable) -> Any:
        original()  # the work happened (a runtime is up), then the function ran out of time
        raise TimeoutError("Task timed out after 900.00 seconds")

    inject(monkeypatch, "provision", timeout)
    plane.create("timeout", [(ids.user, policies.USER_RIGHTS)])
    record = settle(plane, "timeout")
    TALLY.add(faults_injected=1)
    assert record["status"] == "FAILED" and "timed out" in record["reason"]
    check_no_leaks(plane)


def test_a_teardown_failing_once_is_retried_and_leaves_nothing(plane, ids, echo_wasm, monkeypatch):
    plane.register_echo(echo_wasm)
    calls = inject(
        monkeypatch,
        "teardown",
        lambda lifecycle, state, original: (
            (_ for _ in ()).throw(RuntimeError("injected")) if len(calls) == 1 else original()
        ),
    )
    plane.create("teardown", [(ids.user, policies.USER_RIGHTS)])
    plane.wait_status("teardown", ("READY",))
    from lambdas.ccfaas.handler import lambda_handler as ccfaas
    from tests.support.aws import call

    assert call(ccfaas, "DELETE", "/instance/teardown", user="alice").status == 200
    record = settle(plane, "teardown")
    TALLY.add(faults_injected=1)
    assert record["status"] == "DELETED" and len(calls) >= 2
    check_no_leaks(plane)


def kill_runtime(plane, state: dict) -> None:
    port = int(state["allocation"]["veracruz_server_url"].rsplit(":", 1)[1])
    pid = int((plane.runtimes / str(port) / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
        timeout=10,
        what="the runtime to die",
    )


@pytest.mark.parametrize("action", ["wait_ready", "provision", "mark_ready"])
def test_the_runtime_killed_at_each_state_fails_the_instance_and_leaves_nothing(
    plane, ids, echo_wasm, monkeypatch, action
):
    use_settings(monkeypatch, IPOC_READY_TIMEOUT="2")
    plane.register_echo(echo_wasm)

    killed: list[str] = []  # the runtime is killed once, at the first step after allocation

    def kill_then_continue(lifecycle: Lifecycle, state: ExecutionState, original: Callable) -> Any:
        if state.allocation is not None and not killed:
            killed.append(action)
            kill_runtime(plane, {"allocation": {"veracruz_server_url": state.allocation.veracruz_server_url}})
        return original()

    through_wait_for_runtime(monkeypatch, action)
    inject(monkeypatch, action, kill_then_continue)
    plane.create(f"kill-{action}", [(ids.user, policies.USER_RIGHTS)])
    if action == "mark_ready":
        # Marking READY (the end of Provision) needs no runtime: the instance becomes READY, and the reaper finds
        # the dead runtime.
        plane.wait_status(f"kill-{action}", ("READY", "FAILED"))
        Reaper(Lifecycle.from_settings()).run()
    record = settle(plane, f"kill-{action}")
    TALLY.add(faults_injected=1)
    assert killed == [action]  # the runtime was killed, and that (not the fault's own code) failed the instance
    assert record["status"] == "FAILED" and record["reason"] and "TypeError" not in record["reason"], record
    check_no_leaks(plane)


def test_the_runtime_killed_while_ready_is_reaped(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    plane.create("kill-ready", [(ids.user, policies.USER_RIGHTS)])
    ready = plane.wait_status("kill-ready", ("READY",))
    kill_runtime(plane, {"allocation": {"veracruz_server_url": ready["veracruz_server_url"]}})
    Reaper(Lifecycle.from_settings()).run()
    record = settle(plane, "kill-ready")
    TALLY.add(faults_injected=1)
    assert record["status"] == "FAILED" and record["reason"] == "runtime died"
    check_no_leaks(plane)


def test_a_provisioning_denial_fails_the_instance_and_leaves_nothing(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm, data={"/model/weights.bin": b"\x01\x02"})
    plane.create("denied", [(ids.user, policies.USER_RIGHTS)])
    record = settle(plane, "denied")
    TALLY.add(faults_injected=1)
    assert record["status"] == "FAILED" and "AccessDenied" in record["reason"]
    check_no_leaks(plane)


# -- the kubernetes backend: each API call refused in turn -------------------------------------------

CREATE_STEPS = {
    "ConfigMap": f"post /api/v1/namespaces/{NAMESPACE}/configmaps",
    "Pod": f"post /api/v1/namespaces/{NAMESPACE}/pods",
    "EndpointSlice": f"post /apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [403, 409, 500, 503])
@pytest.mark.parametrize("step", list(CREATE_STEPS))
async def test_kubernetes_refusing_each_create_leaves_no_object(kmock, step: str, status: int):
    kmock[CREATE_STEPS[step]] << status << {"message": f"injected {status}"}
    port = 3100 + list(CREATE_STEPS).index(step) * 10 + status % 10
    name = manifests.object_name(port)
    backend = backend_for(kmock)
    kubelet_task = asyncio.create_task(kubelet(kmock, name))
    with pytest.raises(DependencyFailed, match=f"{step}: {status}"):
        await asyncio.to_thread(backend.start, port, POLICY, LABELS)
    kubelet_task.cancel()
    TALLY.add(faults_injected=1)
    left = [kind for kind in ("ConfigMap", "Pod", "EndpointSlice") if await asyncio.to_thread(read, kmock, kind, name)]
    TALLY.add(leaks_found=len(left))
    assert left == []


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["configmaps", "pods", "endpointslices"])
async def test_a_failing_delete_is_reported_and_the_other_objects_still_go(kmock, kind: str):
    backend = backend_for(kmock)
    port = 3200 + ["configmaps", "pods", "endpointslices"].index(kind)
    name = manifests.object_name(port)
    kubelet_task = asyncio.create_task(kubelet(kmock, name))
    await asyncio.to_thread(backend.start, port, POLICY, LABELS)
    await kubelet_task
    group = "apis/discovery.k8s.io/v1" if kind == "endpointslices" else "api/v1"
    kmock[f"delete /{group}/namespaces/{NAMESPACE}/{kind}/{name}"] << 500 << {"message": "injected"}
    with pytest.raises(DependencyFailed, match="could not delete every object"):
        await asyncio.to_thread(backend.stop, port, {})
    TALLY.add(faults_injected=1)
    kinds = {"configmaps": "ConfigMap", "pods": "Pod", "endpointslices": "EndpointSlice"}
    left = [k for k in kinds.values() if k != kinds[kind] and await asyncio.to_thread(read, kmock, k, name)]
    TALLY.add(leaks_found=len(left))
    assert left == []  # the failing one is reported (VaaS keeps the slot until a retry succeeds)

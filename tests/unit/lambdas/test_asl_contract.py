"""The ASL and the task handler agree: every Task's action is a row of the dispatch table, and every result a
step reads (``$.allocation``, ``$.ready``, ``$.error``, ...) has been written on every path that reaches it.

The graph is walked as Step Functions runs it: ``Next``, ``Default``, each Choice rule, and each Catch (which
adds its own ResultPath, not the Task's). A key is available at a state when every path from ``StartAt`` wrote
it (the execution input counts as written). Mutation tests at the end show the check catching a removed action
and a renamed ResultPath.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdas.ccfaas.execution import ALLOCATION_FIELDS, INPUT_FIELDS, RESULT_PATHS, Allocation
from lambdas.ccfaas.tasks import ACTIONS, Action

ROOT = Path(__file__).resolve().parents[3]
MACHINES = sorted((ROOT / "statemachines").glob("*.asl.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def top_key(path: str) -> str | None:
    """``$.allocation.policy`` → ``allocation``; None for ``$`` itself and for the context object (``$$``)."""
    if path == "$" or path.startswith("$$"):
        return None
    assert path.startswith("$."), f"unexpected path {path!r}"
    return path[2:].split(".", 1)[0].split("[", 1)[0]


def edges(state: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(next state, key the edge writes): a Task's ResultPath on Next, a Catch's own ResultPath on its edge."""
    written = top_key(state["ResultPath"]) if state.get("ResultPath") else None
    if "Next" in state:
        yield state["Next"], written
    for rule in state.get("Choices", []):
        yield rule["Next"], None
    if "Default" in state:
        yield state["Default"], None
    for catch in state.get("Catch", []):
        yield catch["Next"], top_key(catch["ResultPath"]) if catch.get("ResultPath") else None


def available(machine: dict[str, Any]) -> dict[str, frozenset[str]]:
    """For each reachable state, the keys written on every path from StartAt (a must-analysis to a fixed point)."""
    states = machine["States"]
    known: dict[str, frozenset[str]] = {machine["StartAt"]: frozenset(INPUT_FIELDS)}
    changed = True
    while changed:
        changed = False
        for name, keys in list(known.items()):
            for target, written in edges(states[name]):
                arriving = keys | {written} if written else keys
                merged = known[target] & arriving if target in known else arriving
                if known.get(target) != merged:
                    known[target] = frozenset(merged)
                    changed = True
    return known


def references(node: Any) -> Iterator[str]:
    """Every JSONPath the state reads from its input: ``*.$`` parameters, Choice variables, ``*Path`` fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("ResultSelector", "ResultPath", "Catch"):
                continue  # the task's result, and where results are written: not reads of the input
            if isinstance(value, str) and (key.endswith(".$") or key == "Variable" or key.endswith("Path")):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def problems(machine: dict[str, Any], actions: dict[str, Action]) -> list[str]:
    found = []
    states = machine["States"]
    reach = available(machine)
    used = set()
    for name, state in states.items():
        if name not in reach:
            found.append(f"{name}: unreachable from {machine['StartAt']}")
            continue
        for target, written in edges(state):
            if target not in states:
                found.append(f"{name}: goes to {target}, which does not exist")
            if written and written not in RESULT_PATHS:
                found.append(f"{name}: writes $.{written}, which lambdas.ccfaas.execution.RESULT_PATHS does not know")
        for path in references(state):
            key = top_key(path)
            if key and key not in reach[name]:
                found.append(f"{name}: reads {path}, not written on every path to it")
        if state["Type"] != "Task":
            continue
        action = state["Parameters"]["Payload"].get("action")
        used.add(action)
        if action not in actions:
            found.append(f"{name}: action {action!r} is not in lambdas.ccfaas.tasks.ACTIONS")
            continue
        for key in actions[action].reads:
            if key not in reach[name]:
                found.append(f"{name}: action {action!r} reads $.{key}, not written on every path to it")
    return found


@pytest.fixture(params=MACHINES, ids=lambda p: p.name)
def machine(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_there_is_a_state_machine() -> None:
    assert MACHINES, "no statemachines/*.asl.json found"


def test_every_task_action_exists_and_every_result_it_reads_was_written_before(machine: dict[str, Any]) -> None:
    assert problems(machine, ACTIONS) == []


def test_every_action_and_every_result_path_is_used() -> None:
    """No dead rows: each action is some Task's, each documented result some step's."""
    tasks = [s for path in MACHINES for s in load(path)["States"].values() if s["Type"] == "Task"]
    assert {t["Parameters"]["Payload"]["action"] for t in tasks} == set(ACTIONS)
    written = {key for path in MACHINES for s in load(path)["States"].values() for _, key in edges(s) if key}
    assert written == set(RESULT_PATHS)


def test_the_allocation_the_workflow_keeps_is_the_one_the_handler_parses(machine: dict[str, Any]) -> None:
    """Allocate's ResultSelector picks exactly the fields of Allocation (which ExecutionState.parse builds)."""
    for state in machine["States"].values():
        if state.get("ResultPath") == "$.allocation":
            selected = {key.removesuffix(".$") for key in state["ResultSelector"]}
            assert selected == {f.name for f in dataclasses.fields(Allocation)}
            assert set(ALLOCATION_FIELDS) < selected


def test_failure_is_recorded_before_teardown_and_failed_only_after(machine: dict[str, Any]) -> None:
    """Every Catch leads to RecordFailure (TEARING_DOWN), which leads only to the failed teardown (FAILED)."""
    states = machine["States"]
    for name, state in states.items():
        for catch in state.get("Catch", []):
            assert catch["Next"] in ("RecordFailure", "TeardownAfterFailure", "Expire", "Failed"), (name, catch)
    record = states["RecordFailure"]
    assert record["Parameters"]["Payload"]["action"] == "record_failure"
    assert {target for target, _ in edges(record)} == {"TeardownAfterFailure"}
    teardown = states["TeardownAfterFailure"]["Parameters"]["Payload"]
    assert teardown["action"] == "teardown" and teardown["failed"] is True


# -- the check can fail ------------------------------------------------------------------------------------------


def lifecycle_machine() -> dict[str, Any]:
    return load(ROOT / "statemachines" / "instance_lifecycle.asl.json")


def test_a_removed_action_is_caught() -> None:
    actions = {name: action for name, action in ACTIONS.items() if name != "wait_ready"}
    assert problems(lifecycle_machine(), actions) == [
        "WaitForRuntime: action 'wait_ready' is not in lambdas.ccfaas.tasks.ACTIONS"
    ]


def test_a_renamed_result_path_is_caught() -> None:
    machine = copy.deepcopy(lifecycle_machine())
    machine["States"]["Allocate"]["ResultPath"] = "$.allocations"
    found = problems(machine, ACTIONS)
    assert "Allocate: writes $.allocations, which lambdas.ccfaas.execution.RESULT_PATHS does not know" in found
    assert "Provision: action 'provision' reads $.allocation, not written on every path to it" in found


def test_a_result_written_on_only_one_path_is_caught() -> None:
    """Provision reads $.allocation: reaching it from a path that skipped Allocate must fail the check."""
    machine = copy.deepcopy(lifecycle_machine())
    machine["States"]["Allocate"]["Catch"][0]["Next"] = "WaitForRuntime"  # a failed Allocate, then onwards
    assert "WaitForRuntime: action 'wait_ready' reads $.allocation, not written on every path to it" in problems(
        machine, ACTIONS
    )


def test_a_catch_that_does_not_record_the_error_is_caught() -> None:
    machine = copy.deepcopy(lifecycle_machine())
    machine["States"]["Provision"]["Catch"][0]["ResultPath"] = "$.record_error"
    found = problems(machine, ACTIONS)
    assert "RecordFailure: action 'record_failure' reads $.error, not written on every path to it" in found

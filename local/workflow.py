"""Register the lifecycle workflow and its task Lambda in moto, as the AWS deployment does.

Shared by the local stack and the tests. The task function's ``Handler``
names our module; ``local.lambda_runner`` makes moto call it in process.

Step Functions' payload quota (256 KiB, UTF-8) holds here as in AWS: moto's
interpreter already fails a state whose output exceeds it
(``States.DataLimitExceeded``); :func:`enforce_input_quota` makes
``StartExecution`` refuse a larger input, which moto accepts.

moto's interpreter parses the definition (ANTLR) at the start of every
execution, tens of ms of CPU in the process that serves the workflow's tasks;
:func:`parse_definitions_once` keeps each parsed program for later executions.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import threading
import zipfile
from pathlib import Path
from typing import Any

from local.patching import mark

ASL = Path(__file__).resolve().parent.parent / "statemachines" / "instance_lifecycle.asl.json"
TASKS_FUNCTION = "ipoc-lifecycle-tasks"
TASKS_HANDLER = "lambdas.ccfaas.tasks.lambda_handler"
STATE_MACHINE = "ipoc-instance-lifecycle"
PAYLOAD_QUOTA = 256 * 1024  # bytes: an execution's input and each state's output (Step Functions quota)


def enforce_input_quota() -> None:
    """Make moto's StartExecution refuse an input over :data:`PAYLOAD_QUOTA`, as AWS does (idempotent)."""
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for backend in (StepFunctionBackend, StepFunctionsParserBackend):
        original = backend.__dict__.get("start_execution")
        if original is None or getattr(original, "_ipoc_quota", False):
            continue
        backend.start_execution = _within_quota(original)  # type: ignore[method-assign]  # moto patched in place


def _within_quota(start_execution: Any) -> Any:
    from moto.stepfunctions.exceptions import ValidationException

    def checked(self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, *args: Any) -> Any:
        size = len((execution_input or "").encode("utf-8"))
        if size > PAYLOAD_QUOTA:
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {PAYLOAD_QUOTA} (it has {size})"
            )
        return start_execution(self, state_machine_arn, name, execution_input, *args)

    mark(checked, "_ipoc_quota")
    return checked


_PARSED_LIMIT = 16  # distinct definitions kept (the stack has one; tests register a few)


_parsed: dict[str, Any] = {}
_parsed_lock = threading.Lock()


def parse_definitions_once() -> None:
    """Make moto's executions share one parsed program per definition (idempotent).

    A parsed program keeps no execution's state: its states keep theirs in the execution's
    environment, keyed by each component's ``heap_key`` (fixed here, before any sharing). Map and
    Parallel states do keep run state on their components, so definitions with them are parsed per
    execution as before.
    """
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker.__dict__["_get_evaluation_entrypoint"]
    if getattr(original, "_ipoc_cached", False):
        return

    def entrypoint(self: Any) -> Any:
        text = self._evaluation_details.state_machine_details.definition
        return parsed_program(text) if _shareable(text) else original(self)

    mark(entrypoint, "_ipoc_cached")
    ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign]  # moto patched in place


def _shareable(text: Any) -> bool:
    return isinstance(text, str) and '"Map"' not in text and '"Parallel"' not in text


def parsed_program(text: str) -> Any:
    """The parsed program of a definition, parsed on first use."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    with _parsed_lock:
        program = _parsed.get(text)
        if program is None:
            program = AmazonStateLanguageParser.parse(text)[0]
            _fix_heap_keys(program)
            if len(_parsed) >= _PARSED_LIMIT:
                _parsed.clear()
            _parsed[text] = program
        return program


def warm_up(text: str, handler: str = TASKS_HANDLER) -> threading.Thread:
    """In the background, what the first instance would otherwise wait for in the process that runs the
    workflow: importing the task handler and calling its module's ``warm_up()`` if it has one (a Lambda's
    init phase: the clients), and parsing the definition; ~2-3 s of CPU on this machine."""

    def work() -> None:
        try:
            hook = getattr(importlib.import_module(handler.rpartition(".")[0]), "warm_up", None)
            if callable(hook):
                hook()
            if _shareable(text):
                parsed_program(text)
        except Exception:  # the first execution does the same work itself and reports what fails
            logging.getLogger(__name__).warning("warming up the lifecycle workflow failed", exc_info=True)

    thread = threading.Thread(target=work, name="workflow-warm-up", daemon=True)
    thread.start()
    return thread


def _fix_heap_keys(program: Any) -> None:
    """Give every component its ``heap_key`` now (moto draws it on first use, which two executions could race)."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    pending = [program]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, EvalComponent):
            _ = item.heap_key
            pending.extend(vars(item).values())
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            pending.extend(item)


def definition(substitutions: dict[str, str]) -> str:
    """The ASL with ``${Name}`` substitutions applied (what CDK's DefinitionSubstitutions do)."""
    text = ASL.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"unsubstituted names left in {ASL.name}")
    json.loads(text)
    return text


def register(
    iam: Any,
    lambda_client: Any,
    sfn: Any,
    *,
    function_name: str = TASKS_FUNCTION,
    state_machine_name: str = STATE_MACHINE,
    role_arn: str | None = None,
) -> str:
    """Create the role (unless given), the task function and the state machine; return the state machine's ARN.
    The IAM tests pass the synthesized names and the state machine's role. The local AWS, which runs the
    executions, starts :func:`warm_up` itself once it is ready."""
    from local import lambda_runner

    lambda_runner.install()
    enforce_input_quota()
    parse_definitions_once()
    if role_arn is None:
        role_arn = iam.create_role(
            RoleName="ipoc-local-lifecycle",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("README.txt", "Runs in process through local.lambda_runner; the code is the repository's.")
    function = lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=role_arn,
        Handler=TASKS_HANDLER,
        Code={"ZipFile": archive.getvalue()},
        Timeout=900,
    )
    text = definition({"TasksFunctionArn": function["FunctionArn"]})
    machine = sfn.create_state_machine(name=state_machine_name, roleArn=role_arn, definition=text)
    return machine["stateMachineArn"]

"""Register the lifecycle workflow and its task Lambda in moto, as the AWS deployment does.

Shared by the local stack and the tests. The task function's ``Handler``
names our module; ``local.lambda_runner`` makes moto call it in process.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parent.parent / "statemachines" / "instance_lifecycle.asl.json"
TASKS_FUNCTION = "ipoc-lifecycle-tasks"
TASKS_HANDLER = "lambdas.ccfaas.tasks.lambda_handler"
STATE_MACHINE = "ipoc-instance-lifecycle"


def definition(substitutions: dict[str, str]) -> str:
    """The ASL with ``${Name}`` substitutions applied (what CDK's DefinitionSubstitutions do)."""
    text = ASL.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"unsubstituted names left in {ASL.name}")
    json.loads(text)
    return text


def register(iam: Any, lambda_client: Any, sfn: Any) -> str:
    """Create the role, the task function and the state machine; return the state machine's ARN."""
    from local import lambda_runner

    lambda_runner.install()
    role = iam.create_role(RoleName="ipoc-local-lifecycle", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("README.txt", "Runs in process through local.lambda_runner; the code is the repository's.")
    function = lambda_client.create_function(
        FunctionName=TASKS_FUNCTION, Runtime="python3.12", Role=role["Role"]["Arn"], Handler=TASKS_HANDLER,
        Code={"ZipFile": archive.getvalue()}, Timeout=900,
    )
    machine = sfn.create_state_machine(
        name=STATE_MACHINE, roleArn=role["Role"]["Arn"],
        definition=definition({"TasksFunctionArn": function["FunctionArn"]}),
    )
    return machine["stateMachineArn"]

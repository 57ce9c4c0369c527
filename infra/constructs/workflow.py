"""The instance lifecycle: the state machine from ``statemachines/instance_lifecycle.asl.json``; the reaper's schedule.

The ASL file is inlined as it is (``DefinitionBody.from_string``, so no asset
upload), with ``${TasksFunctionArn}`` resolved by CloudFormation's
DefinitionSubstitutions: the deployed definition is the file the tests run.
"""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.logging import log_group

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "instance_lifecycle.asl.json"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def substitution_names(text: str) -> set[str]:
    return set(SUBSTITUTION.findall(text))


class InstanceWorkflow(Construct):
    """``state_machine`` runs each instance's lifecycle; ``reaper_rule`` invokes the reaper every few minutes."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        tasks: lambda_.IFunction,
        reaper: lambda_.IFunction,
        reaper_minutes: int,
        log_retention_days: int,
        state_machine_name: str | None = None,
        asl_path: Path = ASL,
    ) -> None:
        super().__init__(scope, id)
        text = asl_path.read_text()
        substitutions = {"TasksFunctionArn": tasks.function_arn}
        unknown = substitution_names(text) - set(substitutions)
        if unknown:
            raise ValueError(f"{asl_path.name} uses substitutions this construct does not provide: {sorted(unknown)}")
        self.state_machine = sfn.StateMachine(
            self,
            "InstanceLifecycle",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_string(text),
            definition_substitutions=substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", log_retention_days),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # inputs hold user policies and task tokens: kept out of the logs
            ),
        )
        tasks.grant_invoke(self.state_machine)
        self.reaper_rule = events.Rule(
            self,
            "ReaperSchedule",
            description="Tear down i-PoC instances whose runtime died or whose TTL passed",
            schedule=events.Schedule.rate(Duration.minutes(reaper_minutes)),
            targets=[targets.LambdaFunction(reaper, retry_attempts=0)],
        )

"""What an operator watches: a dashboard and alarms on the API, the Lambdas and the workflow."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import DeploymentConfig
from infra.stacks.platform import PlatformStack


class ObservabilityStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: DeploymentConfig, platform: PlatformStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = kms.Key(self, "AlarmsKey", enable_key_rotation=True, description="i-PoC alarm topic encryption")
        self.topic = sns.Topic(self, "Alarms", display_name="i-PoC alarms", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        api = platform.api.api
        machine = platform.state_machine
        five_minutes = Duration.minutes(5)
        alarms = [
            cloudwatch.Alarm(
                self,
                "Api5xx",
                metric=api.metric_server_error(period=five_minutes, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                alarm_description="The i-PoC API answered 5xx",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "WorkflowFailures",
                metric=machine.metric_failed(period=five_minutes, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                alarm_description="An instance lifecycle execution failed",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for name, function in platform.functions.functions.items():
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{name}Errors",
                    metric=function.metric_errors(period=five_minutes, statistic="Sum"),
                    threshold=1,
                    evaluation_periods=1,
                    alarm_description=f"The {name} Lambda raised",
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for alarm in alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{platform.stack_name}-overview")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[api.metric_count(), api.metric_client_error(), api.metric_server_error()],
            ),
            cloudwatch.GraphWidget(
                title="API latency", left=[api.metric_latency(statistic="p50"), api.metric_latency(statistic="p99")]
            ),
            cloudwatch.GraphWidget(
                title="Instance workflows",
                left=[machine.metric_started(), machine.metric_succeeded(), machine.metric_failed()],
            ),
        )
        dashboard.add_widgets(
            *[
                cloudwatch.GraphWidget(
                    title=f"{name} Lambda",
                    left=[fn.metric_invocations(), fn.metric_errors()],
                    right=[fn.metric_duration()],
                )
                for name, fn in platform.functions.functions.items()
            ]
        )

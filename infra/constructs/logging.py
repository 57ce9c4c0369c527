"""Log groups with the deployment's retention (any number of days CloudWatch accepts)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import RETENTION_DAYS


def log_group(scope: Construct, id: str, days: int) -> logs.LogGroup:
    if days not in RETENTION_DAYS:
        raise ValueError(f"log retention {days} days is not one CloudWatch accepts: {RETENTION_DAYS}")
    group = logs.LogGroup(scope, id, removal_policy=RemovalPolicy.DESTROY)
    cfn = group.node.default_child
    assert isinstance(cfn, logs.CfnLogGroup)
    cfn.retention_in_days = days
    return group

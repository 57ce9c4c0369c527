"""The control plane's Lambdas: one code asset and one dependencies layer, a role each.

Every function gets the same settings (``Settings.to_environment()``, which ``lambdas.shared.config`` reads back),
X-Ray tracing, JSON logs in its own log group with the deployment's retention,
and a place in the VPC's private subnets. Grants are made by the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.logging import log_group

RUNTIME = lambda_.Runtime.PYTHON_3_14


@dataclass(frozen=True)
class FunctionSpec:
    handler: str
    description: str
    timeout_seconds: int
    memory_mib: int = 512
    settings: bool = True  # gets the deployment's settings (the setup function needs none of them)


# API Gateway waits 29 s for an answer, so the API functions stop before it does; the
# workflow's tasks and the streamer move large files and get Lambda's full 15 minutes.
SPECS = {
    "Ccfaas": FunctionSpec(
        "lambdas.ccfaas.handler.lambda_handler", "i-PoC CCFaaS API: functions, files, instances", 29
    ),
    "Vaas": FunctionSpec("lambdas.vaas.handler.lambda_handler", "i-PoC VaaS API: Veracruz runtimes on EKS", 29),
    "S3Stream": FunctionSpec(
        "lambdas.s3stream.handler.lambda_handler", "i-PoC S3 streamer: S3 object into an enclave", 900, 1024
    ),
    "Tasks": FunctionSpec(
        "lambdas.ccfaas.tasks.lambda_handler", "i-PoC instance lifecycle tasks (Step Functions)", 900, 1024
    ),
    "Reaper": FunctionSpec(
        "lambdas.ccfaas.reaper.lambda_handler", "i-PoC reaper: tears down dead or expired instances", 300
    ),
    "Setup": FunctionSpec(
        "lambdas.ccfaas.setup.lambda_handler", "i-PoC setup: program-load identity and proxy CA", 120, settings=False
    ),
}


class ControlPlaneFunctions(Construct):
    """``functions`` maps each name in :data:`SPECS` to its Lambda; ``security_group`` is theirs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        layer_code: lambda_.Code,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        environment: dict[str, str],
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=layer_code,
            compatible_runtimes=[RUNTIME],
            description="i-PoC Lambda dependencies, pinned in pyproject.toml",
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="i-PoC control-plane Lambdas (egress only)"
        )
        self.functions: dict[str, lambda_.Function] = {}
        for name, spec in SPECS.items():
            role = iam.Role(
                self,
                f"{name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{spec.description} (least privilege; grants made by the stack)",
            )
            # ENI management for a function in a VPC: AWS's managed policy is the documented minimum.
            role.add_managed_policy(
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
            )
            self.functions[name] = lambda_.Function(
                self,
                name,
                runtime=RUNTIME,
                architecture=lambda_.Architecture.X86_64,
                handler=spec.handler,
                code=code,
                layers=[self.layer],
                description=spec.description,
                timeout=Duration.seconds(spec.timeout_seconds),
                memory_size=spec.memory_mib,
                role=role,
                environment={
                    **(environment if spec.settings else {}),
                    "POWERTOOLS_SERVICE_NAME": f"ipoc-{name.lower()}",
                },
                tracing=lambda_.Tracing.ACTIVE,
                logging_format=lambda_.LoggingFormat.JSON,
                log_group=log_group(self, f"{name}Logs", log_retention_days),
                vpc=vpc,
                vpc_subnets=subnets,
                security_groups=[self.security_group],
            )

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.functions[name]

"""cdk-nag's AwsSolutions pack on every stack, and each suppression with the reason it is acceptable here.

Suppressions name the exact finding (``applies_to``) wherever cdk-nag reports one,
so a new wildcard or managed policy fails the synth instead of hiding behind a rule.
"""

from __future__ import annotations

from aws_cdk import Stack
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo

MANAGED_POLICIES = {
    "service-role/AWSLambdaVPCAccessExecutionRole": "the documented minimum for a Lambda in a VPC (ENIs and logs)",
    "service-role/AWSLambdaBasicExecutionRole": "CDK's provider-framework Lambdas write their logs with it",
    "AmazonEKSClusterPolicy": "the EKS service role's required policy",
    "AmazonEKSWorkerNodePolicy": "required by EKS managed node groups",
    "AmazonEKS_CNI_Policy": "required by the VPC CNI on the nodes",
    "AmazonEC2ContainerRegistryReadOnly": "nodes and the kubectl provider pull images from ECR",
    "service-role/AmazonAPIGatewayPushToCloudWatchLogs": (
        "API Gateway's account-level role for execution and access logs"
    ),
}

PLATFORM: list[NagPackSuppression] = [
    NagPackSuppression(
        id="AwsSolutions-IAM4",
        reason="AWS-managed policies used only where they are the service's documented minimum: "
        + "; ".join(f"{name}: {why}" for name, why in MANAGED_POLICIES.items()),
        applies_to=[
            *[f"Policy::arn:<AWS::Partition>:iam::aws:policy/{name}" for name in MANAGED_POLICIES],
            RegexAppliesTo(regex="/^Policy::.*AmazonElasticContainerRegistryPublicReadOnly.*$/"),
        ],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="X-Ray (PutTraceSegments, PutTelemetryRecords, sampling) and CloudWatch Logs delivery for Step "
        "Functions support no resource-level permissions: AWS requires Resource '*' for exactly these actions "
        "(a test checks that no other action gets '*').",
        applies_to=["Resource::*"],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Object actions on the objects of one bucket (artifacts or inputs), listed action by action.",
        applies_to=[RegexAppliesTo(regex="/^Resource::<Data(Artifacts|Inputs)[0-9A-F]+\\.Arn>\\/\\*$/")],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Invoking one function's versions and aliases (the state machine's task function, "
        "CDK's provider frameworks).",
        applies_to=[RegexAppliesTo(regex="/^Resource::<[A-Za-z0-9]+\\.Arn>:\\*$/")],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="The reaper describes the executions of the one lifecycle state machine; "
        "execution names are per instance.",
        applies_to=[
            RegexAppliesTo(
                regex="/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*:\\*$/"
            )
        ],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Invoking routes of this API only: the admin role may call every route, the user policy lists the user "
        "routes one by one, with '*' standing for a path parameter (an instance id).",
        applies_to=[
            RegexAppliesTo(
                regex="/^Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<Api[A-Za-z0-9]+>\\/.*$/"
            )
        ],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="CDK's kubectl provider reads the Helm chart asset from the CDK bootstrap assets bucket "
        "(CDK-managed policy).",
        applies_to=[
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            RegexAppliesTo(
                regex="/^Resource::arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\\/\\*$/"
            ),
        ],
    ),
    NagPackSuppression(
        id="AwsSolutions-L1",
        reason="CDK's kubectl provider handler: its runtime is chosen by aws-cdk-lib, not by us "
        "(our functions use the latest Python).",
    ),
    NagPackSuppression(
        id="AwsSolutions-SMG4",
        reason="The secrets hold X.509 identities, not passwords: the setup function renews each one on deploy "
        "when it is within 30 days of expiry, and never replaces a usable proxy CA under running instances.",
    ),
    NagPackSuppression(
        id="AwsSolutions-APIG2",
        reason="Request validators are declared in the OpenAPI body (x-amazon-apigateway-request-validators; "
        "parameters on every method); bodies are validated by the Lambdas against the seed's JSON Schemas, which use "
        "keywords API Gateway's draft-4 models lack, and answer in the project's JSON error shape.",
    ),
]

NETWORK: list[NagPackSuppression] = [
    NagPackSuppression(
        id="AwsSolutions-EC23",
        reason="The interface endpoints' security groups allow HTTPS from the VPC's own CIDR only "
        "(cdk-nag cannot read the token).",
    ),
]


def suppress(stack: Stack, kind: str) -> None:
    """Apply the suppressions that belong to ``kind`` (``platform``, ``network``, ``observability``)."""
    suppressions = {"platform": PLATFORM, "network": NETWORK, "observability": []}[kind]
    if suppressions:
        NagSuppressions.add_stack_suppressions(stack, suppressions, apply_to_nested_stacks=True)

"""The network: a VPC whose private subnets hold the Nitro nodes and the Lambdas.

AWS API traffic stays on endpoints: gateway endpoints for S3 and DynamoDB (free)
and interface endpoints for STS (the EKS token), Step Functions, CloudWatch Logs,
Secrets Manager, X-Ray, ECR and EKS. A NAT gateway remains for what endpoints
cannot carry: image pulls from public registries (Docker Hub's Veracruz image,
GitLab's device manager, public ECR's aws-cli) and traffic from the Lambdas to
the runtime load balancer's public address.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.logging import log_group

INTERFACE_ENDPOINTS = {
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Ecr": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Eks": ec2.InterfaceVpcEndpointAwsService.EKS,
}


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                log_group(self, "FlowLogs", config.log_retention_days)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(name, service=service, subnets=private, private_dns_enabled=True)
        self.private_subnets = private

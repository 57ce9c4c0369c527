"""The i-PoC platform: state, identities, the enclave cluster, the control plane and the workflow.

One stack, so its outputs are everything ``ipoc profile from-stack`` needs.
The constructs create; this stack wires them: environment, grants, outputs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.api import ServiceApi
from infra.constructs.cluster import RUNTIME_NAMESPACE, EnclaveCluster
from infra.constructs.data import DataStores
from infra.constructs.functions import SPECS, ControlPlaneFunctions
from infra.constructs.logging import log_group
from infra.constructs.workflow import InstanceWorkflow
from infra.stacks.network import NetworkStack
from ipoc.stack_outputs import OUTPUT_API_URL, OUTPUT_INPUTS_BUCKET, OUTPUT_REGION
from lambdas.shared.config import Settings

SETTING_NAMES = Settings.names()


def _objects(bucket: s3.IBucket, function: lambda_.Function, *actions: str) -> None:
    """Exactly these object actions on one bucket's objects (CDK's grants add wildcard actions)."""
    function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects("*")]))


class PlatformStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        network: NetworkStack,
        code_dir: Path,
        dependencies_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        data = DataStores(self, "Data")
        program_load = secretsmanager.Secret(
            self,
            "ProgramLoadIdentity",
            description="i-PoC program-load identity (certificate and key, JSON); made by the setup function",
            removal_policy=RemovalPolicy.DESTROY,
        )
        ca_certificate = secretsmanager.Secret(
            self,
            "ProxyCaCertificate",
            description="i-PoC proxy attestation CA certificate (PEM); made by the setup function",
            removal_policy=RemovalPolicy.DESTROY,
        )
        ca_key = secretsmanager.Secret(
            self,
            "ProxyCaKey",
            description="i-PoC proxy attestation CA private key (PEM); made by the setup function",
            removal_policy=RemovalPolicy.DESTROY,
        )
        enclaves = EnclaveCluster(
            self,
            "Enclaves",
            config=config,
            vpc=network.vpc,
            subnets=network.private_subnets,
            proxy_ca_certificate=ca_certificate,
            proxy_ca_key=ca_key,
        )
        cluster = enclaves.cluster
        # Every function with settings gets the whole table (lambdas.shared.config), defaults included: the
        # deployment's values here, the state machine and the admins once they exist (below).
        settings = Settings(
            functions_table=data.tables["functions"].table_name,
            instances_table=data.tables["instances"].table_name,
            slots_table=data.tables["slots"].table_name,
            artifacts_bucket=data.artifacts.bucket_name,
            inputs_bucket=data.inputs.bucket_name,
            backend="kubernetes",
            port_min=config.port_min,
            port_max=config.port_max,
            endpoint_host=enclaves.runtime_host,
            proxy_url=enclaves.proxy_url,
            proxy_cert_secret_arn=ca_certificate.secret_arn,
            runtime_hash=config.runtime_measurement,
            platform="nitro",
            kube_namespace=RUNTIME_NAMESPACE,
            runtime_image=config.runtime_image,
            eks_cluster=cluster.cluster_name,
            kube_host=cluster.cluster_endpoint,
            kube_ca_data=cluster.cluster_certificate_authority_data,
            program_load_secret_arn=program_load.secret_arn,
            default_ttl=config.default_ttl,
            max_ttl=config.max_ttl,
        )
        environment = {**settings.to_environment(), "POWERTOOLS_LOG_LEVEL": "INFO"}
        fns = ControlPlaneFunctions(
            self,
            "ControlPlane",
            code=lambda_.Code.from_asset(str(code_dir)),
            layer_code=lambda_.Code.from_asset(str(dependencies_dir)),
            vpc=network.vpc,
            subnets=network.private_subnets,
            environment=environment,
            log_retention_days=config.log_retention_days,
        )
        state_machine_name = f"{self.stack_name}-instance-lifecycle"
        workflow = InstanceWorkflow(
            self,
            "Workflow",
            tasks=fns["Tasks"],
            reaper=fns["Reaper"],
            reaper_minutes=config.reaper_minutes,
            log_retention_days=config.log_retention_days,
            state_machine_name=state_machine_name,
        )
        machine = workflow.state_machine
        fns["Ccfaas"].add_environment(SETTING_NAMES["state_machine_arn"], machine.state_machine_arn)

        # -- grants: each function gets what its code touches ------------------------------------
        tables = data.tables
        tables["functions"].grant_read_write_data(fns["Ccfaas"])
        tables["instances"].grant_read_write_data(fns["Ccfaas"])
        _objects(
            data.artifacts,
            fns["Ccfaas"],
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        )  # presigned uploads are one-part multipart uploads
        machine.grant_start_execution(fns["Ccfaas"])
        machine.grant_task_response(fns["Ccfaas"])

        tables["slots"].grant_read_write_data(fns["Vaas"])

        _objects(data.inputs, fns["S3Stream"], "s3:GetObject")
        # The streamer delivers only into the caller's instances (lambdas/shared/stream_access.py):
        # it reads their records.
        tables["instances"].grant_read_data(fns["S3Stream"])
        tables["slots"].grant_read_data(fns["S3Stream"])

        for name in ("Tasks", "Reaper"):
            tables["functions"].grant_read_data(fns[name])
            tables["instances"].grant_read_write_data(fns[name])
            tables["slots"].grant_read_write_data(fns[name])
            program_load.grant_read(fns[name])
        _objects(data.artifacts, fns["Tasks"], "s3:GetObject")
        _objects(data.inputs, fns["Tasks"], "s3:GetObject")
        fns["Reaper"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        machine.grant_task_response(fns["Reaper"])
        # The task function is named in the state machine's definition, so its policy names the
        # machine by ARN rather than by reference (a reference would be a dependency cycle).
        fns["Tasks"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="stateMachine",
                        resource_name=state_machine_name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        for name in ("Vaas", "Tasks", "Reaper"):
            ca_certificate.grant_read(fns[name])
            role = fns[name].role
            assert role is not None  # each function makes its own role
            enclaves.grant_runtime_management(role, f"{name}Access")
        enclaves.allow_api_from(fns.security_group)

        # -- the setup custom resource fills the identity secrets on every deploy -----------------
        for secret in (program_load, ca_certificate, ca_key):
            secret.grant_read(fns["Setup"])
            secret.grant_write(fns["Setup"])
        provider = cr.Provider(
            self,
            "SetupProvider",
            on_event_handler=fns["Setup"],
            log_group=log_group(self, "SetupProviderLogs", config.log_retention_days),
        )
        setup = CustomResource(
            self,
            "DeploymentIdentities",
            service_token=provider.service_token,
            properties={
                "ProgramLoadSecretArn": program_load.secret_arn,
                "ProxyCaCertificateSecretArn": ca_certificate.secret_arn,
                "ProxyCaKeySecretArn": ca_key.secret_arn,
            },
        )
        enclaves.chart.node.add_dependency(setup)

        # -- the API --------------------------------------------------------------------------
        api = ServiceApi(
            self,
            "Api",
            functions={"ccfaas": fns["Ccfaas"], "vaas": fns["Vaas"], "s3stream": fns["S3Stream"]},
            admin_principals=config.admin_principals,
            rate_limit=config.throttle_rate,
            burst_limit=config.throttle_burst,
            log_retention_days=config.log_retention_days,
        )
        admins = replace(
            settings, admin_principals=(api.admin_role.role_arn, *config.admin_principals)
        ).to_environment()
        for name, function in fns.functions.items():
            if SPECS[name].settings:
                function.add_environment(SETTING_NAMES["admin_principals"], admins[SETTING_NAMES["admin_principals"]])

        self.functions = fns
        self.api = api
        self.state_machine = machine
        self.cluster = cluster
        self.data = data
        CfnOutput(
            self,
            OUTPUT_API_URL,
            value=api.url,
            description="The i-PoC API (CCFaaS, VaaS and S3 streamer routes; SigV4)",
        )
        CfnOutput(self, OUTPUT_REGION, value=self.region, description="The region the API signs requests for")
        CfnOutput(
            self,
            OUTPUT_INPUTS_BUCKET,
            value=data.inputs.bucket_name,
            description="Upload encrypted inputs here (ipoc camera upload)",
        )
        CfnOutput(self, "ArtifactsBucket", value=data.artifacts.bucket_name)
        CfnOutput(self, "AdminRoleArn", value=api.admin_role.role_arn, description="Assume it to register functions")
        CfnOutput(
            self, "UserPolicyArn", value=api.user_policy.managed_policy_arn, description="Attach it to i-PoC users"
        )
        CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn)
        CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        CfnOutput(
            self,
            "RuntimeHost",
            value=enclaves.runtime_host,
            description="The runtimes' load balancer (veracruz_server_url host)",
        )

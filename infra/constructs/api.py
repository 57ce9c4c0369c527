"""One REST API for the three services, built from their OpenAPI documents (``infra/openapi/*.json``).

The documents are generated from the routes by ``make openapi`` and checked in, so
synthesis reads files and imports no handler (a test fails while they are stale).

Each route becomes a method with IAM (SigV4) authorization and a Lambda proxy
integration to the service that owns it. The routes' own ``x-ipoc-admin`` flag
drives a resource policy that denies admin routes to anyone but the admin
principals (the Lambdas check again). API Gateway validates the path and query
parameters; bodies are validated by the Lambdas against the seed's JSON Schemas,
which use keywords API Gateway's draft-4 models do not support, and answer with
the project's JSON error shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aws_cdk import Aws, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.constructs.logging import log_group
from lambdas.shared.openapi import ADMIN_EXTENSION

DOCUMENTS = Path(__file__).resolve().parents[1] / "openapi"  # make openapi writes <service>.json here
SERVICES = ("ccfaas", "vaas", "s3stream")  # each has its Lambda and its document
STAGE = "v1"
BINARY_TYPES = ["application/octet-stream"]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def openapi_document(service: str) -> dict[str, Any]:
    """The service's checked-in OpenAPI document."""
    path = DOCUMENTS / f"{service}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is missing: run `make openapi` to generate the APIs' OpenAPI documents"
        ) from None


def routes() -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(service, path, method, operation)`` for every route of every service."""
    found = []
    for service in SERVICES:
        for path, item in openapi_document(service)["paths"].items():
            for method, operation in item.items():
                if method in METHODS:
                    found.append((service, path, method, operation))
    return found


def route_pattern(path: str, method: str) -> tuple[str, str]:
    """``(METHOD, /path)`` with ``*`` for each path parameter: how IAM and resource policies name a route."""
    segments = ["*" if segment.startswith("{") else segment for segment in path.strip("/").split("/")]
    return method.upper(), "/" + "/".join(segments)


def route_patterns(*, admin: bool) -> list[tuple[str, str]]:
    return sorted(
        {route_pattern(path, method) for _, path, method, op in routes() if bool(op.get(ADMIN_EXTENSION)) == admin}
    )


def gateway_document(integrations: dict[str, str], title: str = "i-PoC") -> dict[str, Any]:
    """An OpenAPI 3.0 document API Gateway imports: our routes, SigV4 on each, Lambda proxy integrations.

    ``integrations`` maps a service name to its Lambda's ARN (a CloudFormation token at synth time).
    """
    paths: dict[str, dict[str, Any]] = {}
    for service, path, method, operation in routes():
        parameters = [
            {
                "name": p["name"],
                "in": p["in"],
                "required": bool(p.get("required", p["in"] == "path")),
                "schema": {"type": "string"},
            }
            for p in operation.get("parameters", [])
            if p.get("in") in ("path", "query")
        ]
        paths.setdefault(path, {})[method] = {
            "operationId": f"{service}_{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "summary": operation.get("summary", ""),
            "tags": [service],
            "parameters": parameters,
            "security": [{"sigv4": []}],
            ADMIN_EXTENSION: bool(operation.get(ADMIN_EXTENSION)),
            "responses": {
                status: {"description": r.get("description", "")}
                for status, r in operation.get("responses", {}).items()
            },
            "x-amazon-apigateway-request-validator": "parameters",
            "x-amazon-apigateway-integration": {
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}:lambda:path/2015-03-31/functions/"
                f"{integrations[service]}/invocations",
                "passthroughBehavior": "when_no_match",
                "timeoutInMillis": 29000,
            },
        }
    return {
        "openapi": "3.0.1",
        "info": {
            "title": title,
            "version": "1.0",
            "description": "i-PoC: CCFaaS, VaaS and the S3 streamer (SigV4 on every route).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            }
        },
        "x-amazon-apigateway-request-validators": {
            "parameters": {"validateRequestParameters": True, "validateRequestBody": False}
        },
        "x-amazon-apigateway-binary-media-types": BINARY_TYPES,
    }


class ServiceApi(Construct):
    """``api`` (the REST API), ``url``, ``admin_role`` and ``user_policy`` (what a user needs to call it)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        admin_principals: Iterable[str],
        rate_limit: int,
        burst_limit: int,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.admin_role = iam.Role(
            self,
            "AdminRole",
            assumed_by=iam.AccountRootPrincipal(),
            description="i-PoC administrators: register functions, manage VaaS "
            "(assume it, then use ipoc's aws profile)",
        )
        admins = [self.admin_role.role_arn, *admin_principals]
        access_logs = log_group(self, "AccessLogs", log_retention_days)
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="AccountPrincipalsMayCall",
                    principals=[iam.AccountRootPrincipal()],
                    actions=["execute-api:Invoke"],
                    resources=["execute-api:/*"],
                ),
                iam.PolicyStatement(
                    sid="AdminRoutesOnlyForAdmins",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["execute-api:Invoke"],
                    resources=[f"execute-api:/*/{method}{path}" for method, path in route_patterns(admin=True)],
                    conditions={"StringNotLike": {"aws:PrincipalArn": admins}},
                ),
            ]
        )
        self.api = apigw.SpecRestApi(
            self,
            "Api",
            api_definition=apigw.ApiDefinition.from_inline(
                gateway_document(
                    {
                        "ccfaas": functions["ccfaas"].function_arn,
                        "vaas": functions["vaas"].function_arn,
                        "s3stream": functions["s3stream"].function_arn,
                    }
                )
            ),
            endpoint_types=[apigw.EndpointType.REGIONAL],
            policy=policy,
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies carry policies and uploads: never logged
                throttling_rate_limit=rate_limit,
                throttling_burst_limit=burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        for name, function in functions.items():
            function.add_permission(
                f"InvokeFrom{name.capitalize()}Api",
                principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                source_arn=self.api.arn_for_execute_api(),
            )
        self.url = self.api.url
        stage_arn = Stack.of(self).format_arn(
            service="apigateway",
            account="",
            resource="restapis",
            resource_name=f"{self.api.rest_api_id}/stages/{STAGE}",
        )
        self.admin_role.add_to_policy(
            iam.PolicyStatement(actions=["execute-api:Invoke"], resources=[self.api.arn_for_execute_api()])
        )
        self.user_policy = iam.ManagedPolicy(
            self,
            "UserPolicy",
            description="i-PoC users: create, use and delete their instances; stream inputs",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[
                        self.api.arn_for_execute_api(method, path, STAGE)
                        for method, path in route_patterns(admin=False)
                    ],
                )
            ],
        )
        self.firewall = _web_acl(self, rate_limit_per_ip=2000)
        wafv2.CfnWebACLAssociation(
            self, "FirewallAssociation", resource_arn=stage_arn, web_acl_arn=self.firewall.attr_arn
        )
        self.firewall.node.add_dependency(self.api.deployment_stage)


def _web_acl(scope: Construct, *, rate_limit_per_ip: int) -> wafv2.CfnWebACL:
    """A per-IP rate limit and AWS's bad-input and IP-reputation rules (not the common rule set:
    its 8 KB body limit would block program uploads)."""

    def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
        )

    def managed(priority: int, name: str) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name=name,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=name
                )
            ),
            visibility_config=visibility(name),
        )

    return wafv2.CfnWebACL(
        scope,
        "Firewall",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=visibility("ipoc-api"),
        rules=[
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerIp",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_limit_per_ip, aggregate_key_type="IP"
                    )
                ),
                visibility_config=visibility("RateLimitPerIp"),
            ),
            managed(1, "AWSManagedRulesKnownBadInputsRuleSet"),
            managed(2, "AWSManagedRulesAmazonIpReputationList"),
        ],
    )

"""Guardrails on the synthesized CloudFormation: what `cdk deploy` would create, checked offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aws_cdk.assertions import Match

from infra.constructs.api import gateway_document, route_patterns, routes
from lambdas.shared.tables import ALL_TABLES

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "instance_lifecycle.asl.json"


def resources(template_json: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == kind}


def test_every_stack_synthesises(synth) -> None:
    assert set(synth.stacks) == {"IpocNetwork", "Ipoc", "IpocObservability"}


def test_cdk_nag_reports_no_unsuppressed_errors_or_warnings(synth) -> None:
    findings = [
        f"{stack.stack_name}{message.id}: {str(message.entry.data)[:200]}"
        for stack in synth.assembly.stacks
        for message in stack.messages
        if str(message.level).endswith(("ERROR", "WARNING"))
    ]
    assert findings == []


def test_every_suppression_says_why(synth) -> None:
    from infra.nag import NETWORK, PLATFORM

    for suppression in [*PLATFORM, *NETWORK]:
        assert len(suppression.reason) >= 40, suppression.id


def test_the_cluster_and_its_nitro_node_group_with_enclaves_enabled(platform, platform_json) -> None:
    platform.resource_count_is("AWS::EKS::Cluster", 1)
    platform.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "EnclaveOptions": {"Enabled": True},
                    "MetadataOptions": Match.object_like({"HttpTokens": "required"}),
                }
            ),
        },
    )
    [(template_id, template)] = resources(platform_json, "AWS::EC2::LaunchTemplate").items()
    user_data = json.dumps(template["Properties"]["LaunchTemplateData"]["UserData"])
    for needle in ("vm.nr_hugepages=1100", "memory_mib: 2048", "cpu_count: 2", "nitro-enclaves-allocator"):
        assert needle in user_data
    [nodegroup] = resources(platform_json, "AWS::EKS::Nodegroup").values()
    props = nodegroup["Properties"]
    assert props["LaunchTemplate"]["Id"] == {"Ref": template_id}
    assert props["InstanceTypes"] == ["m6i.xlarge"]
    assert props["Labels"] == {"smarter-device-manager": "enabled", "enclave.example.com/type": "nitro"}
    assert props["AmiType"] == "AL2023_x86_64_STANDARD"


def test_the_chart_is_installed_with_the_deployments_values(platform_json) -> None:
    [chart] = [r for r in platform_json["Resources"].values() if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"]
    values = json.loads(json.dumps(chart["Properties"]["Values"]))
    text = json.dumps(values)
    assert '\\"first\\":3014' in text and '\\"last\\":3023' in text
    assert (
        '\\"implementation\\":\\"ipoc\\"' in text and "container-assets" in text
    )  # our proxy image (the runtime image goes to VaaS)
    assert "ipoc-vaas" in text


def test_vaas_task_and_reaper_roles_are_mapped_to_the_namespaced_group_only(platform_json) -> None:
    entries = {
        k: v
        for k, v in resources(platform_json, "AWS::EKS::AccessEntry").items()
        if v["Properties"]["PrincipalArn"]["Fn::GetAtt"][0].startswith("ControlPlane")
    }
    roles = sorted(
        v["Properties"]["PrincipalArn"]["Fn::GetAtt"][0][len("ControlPlane") :].split("Role")[0]
        for v in entries.values()
    )
    assert roles == ["Reaper", "Tasks", "Vaas"]  # the API, streamer and setup functions get no cluster access
    for entry in entries.values():
        assert entry["Properties"]["KubernetesGroups"] == ["ipoc-vaas"]
        assert "AccessPolicies" not in entry["Properties"]  # no cluster-wide EKS access policy


def test_every_api_method_uses_iam_authorization(platform_json) -> None:
    [api] = resources(platform_json, "AWS::ApiGateway::RestApi").values()
    body = api["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"  # imported as AuthorizationType AWS_IAM
    methods = [(path, method, op) for path, item in body["paths"].items() for method, op in item.items()]
    assert len(methods) == len(routes()) >= 20
    for path, method, op in methods:
        assert op["security"] == [{"sigv4": []}], (path, method)
        assert op["x-amazon-apigateway-integration"]["type"] == "aws_proxy", (path, method)
        assert op["x-amazon-apigateway-request-validator"] == "parameters"
    assert "application/octet-stream" in body["x-amazon-apigateway-binary-media-types"]


def test_admin_routes_are_denied_to_everyone_but_the_admins(platform_json) -> None:
    [api] = resources(platform_json, "AWS::ApiGateway::RestApi").values()
    [deny] = [s for s in api["Properties"]["Policy"]["Statement"] if s["Effect"] == "Deny"]
    denied = set(deny["Resource"])
    assert "execute-api:/*/POST/function" in denied
    assert "execute-api:/*/POST/veracruz" in denied
    assert "execute-api:/*/POST/instance" not in denied
    assert "execute-api:/*/POST/s3_stream_veracruz" not in denied
    assert len(denied) == len(route_patterns(admin=True))
    assert "aws:PrincipalArn" in deny["Condition"]["StringNotLike"]


def test_gateway_document_routes_each_service_to_its_own_function() -> None:
    document = gateway_document({"ccfaas": "CCFAAS", "vaas": "VAAS", "s3stream": "STREAM"})
    uri = lambda path, method: document["paths"][path][method]["x-amazon-apigateway-integration"]["uri"]  # noqa: E731
    assert "CCFAAS" in uri("/instance", "post")
    assert "VAAS" in uri("/veracruz", "post")
    assert "STREAM" in uri("/s3_stream_veracruz", "post")
    params = document["paths"]["/instance/{instance_id}"]["get"]["parameters"]
    assert {"name": "instance_id", "in": "path", "required": True, "schema": {"type": "string"}} in params


def test_the_lambdas_run_our_handlers_with_tracing_and_json_logs(platform_json) -> None:
    import importlib

    functions = {
        k: v
        for k, v in resources(platform_json, "AWS::Lambda::Function").items()
        if str(v["Properties"].get("Handler", "")).startswith("lambdas.")
    }
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == sorted(
        [
            "lambdas.ccfaas.handler.lambda_handler",
            "lambdas.vaas.handler.lambda_handler",
            "lambdas.s3stream.handler.lambda_handler",
            "lambdas.ccfaas.tasks.lambda_handler",
            "lambdas.ccfaas.reaper.lambda_handler",
            "lambdas.ccfaas.setup.lambda_handler",
        ]
    )
    for handler in handlers:
        module, name = handler.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name))
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert len(props["Layers"]) == 1
        assert "VpcConfig" in props


def test_api_lambdas_get_the_kubernetes_backend_settings(platform_json) -> None:
    [vaas] = [
        f
        for f in resources(platform_json, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "lambdas.vaas.handler.lambda_handler"
    ]
    env = vaas["Properties"]["Environment"]["Variables"]
    assert env["IPOC_VAAS_BACKEND"] == "kubernetes"
    assert env["IPOC_PLATFORM"] == "nitro"
    assert env["IPOC_PORT_MIN"] == "3014" and env["IPOC_PORT_MAX"] == "3023"
    assert re.fullmatch(r"[0-9a-f]{64}", env["IPOC_RUNTIME_HASH"])
    for key in (
        "IPOC_ENDPOINT_HOST",
        "IPOC_K8S_HOST",
        "IPOC_K8S_CA_DATA",
        "IPOC_PROXY_CERT_SECRET_ARN",
        "IPOC_SLOTS_TABLE",
    ):
        assert env[key], key


def test_the_tables_have_pitr_encryption_and_the_specs_keys(platform_json) -> None:
    tables = list(resources(platform_json, "AWS::DynamoDB::Table").values())
    assert len(tables) == len(ALL_TABLES)
    for table in tables:
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["BillingMode"] == "PAY_PER_REQUEST"
    keys = sorted(t["Properties"]["KeySchema"][0]["AttributeName"] for t in tables)
    assert keys == sorted(spec.partition_key for spec in ALL_TABLES)
    # every key (the functions table's version/alias sort key too) as the stores and the local stack build it
    by_partition = {t["Properties"]["KeySchema"][0]["AttributeName"]: t["Properties"]["KeySchema"] for t in tables}
    assert all(by_partition[spec.partition_key] == spec.create_table_kwargs("t")["KeySchema"] for spec in ALL_TABLES)
    [instances] = [t for t in tables if t["Properties"]["KeySchema"][0]["AttributeName"] == "instance_id"]
    assert instances["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # no secondary index: what the deletion handshake reads must be read consistently (a GSI never is)
    assert not any("GlobalSecondaryIndexes" in t["Properties"] for t in tables)


def test_the_artifacts_bucket_is_private_tls_only_and_expires_abandoned_uploads(platform_json) -> None:
    buckets = resources(platform_json, "AWS::S3::Bucket")
    [artifacts_id] = [k for k in buckets if k.startswith("DataArtifacts")]
    props = buckets[artifacts_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert (
        props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "AES256"
    )
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-abandoned-uploads"]["Prefix"] == "uploads/"
    assert rules["abort-incomplete-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    for bucket_id in buckets:
        [policy] = [
            p
            for p in resources(platform_json, "AWS::S3::BucketPolicy").values()
            if p["Properties"]["Bucket"] == {"Ref": bucket_id}
        ]
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies), bucket_id


# Actions AWS accepts only on Resource "*": X-Ray, Logs delivery, and what our VPC-attached functions need.
STAR_ONLY = re.compile(
    r"^(xray:[A-Za-z]+|logs:(CreateLogDelivery|DeleteLogDelivery|DescribeLogGroups|DescribeResourcePolicies|"
    r"GetLogDelivery|ListLogDeliveries|PutResourcePolicy|UpdateLogDelivery))$"
)


def test_no_role_gets_a_wildcard_action_or_star_resource_beyond_what_aws_requires(synth) -> None:
    checked = 0
    for stack in synth.stacks.values():
        template = synth.template(stack.stack_name).to_json()
        for policy_id, policy in {
            **resources(template, "AWS::IAM::Policy"),
            **resources(template, "AWS::IAM::ManagedPolicy"),
        }.items():
            if "KubectlProvider" in policy_id:
                continue  # CDK's own kubectl provider (suppressed in cdk-nag with its reason)
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert "*" not in actions, policy_id
                if statement.get("Resource") == "*":
                    assert all(STAR_ONLY.match(a) for a in actions), (policy_id, actions)
                checked += 1
    assert checked > 20


def test_the_state_machine_is_the_asl_file_with_its_substitutions(platform_json) -> None:
    [machine] = resources(platform_json, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["DefinitionString"] == ASL.read_text()
    names = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", ASL.read_text()))
    assert set(props["DefinitionSubstitutions"]) == names == {"TasksFunctionArn"}
    assert props["DefinitionSubstitutions"]["TasksFunctionArn"]["Fn::GetAtt"][0].startswith("ControlPlaneTasks")
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    states = set(json.loads(props["DefinitionString"])["States"])
    assert {"Allocate", "Provision", "WaitForRelease", "Teardown", "Failed"} <= states


def test_the_reaper_runs_on_a_schedule(platform) -> None:
    platform.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [
                Match.object_like({"Arn": {"Fn::GetAtt": [Match.string_like_regexp("ControlPlaneReaper"), "Arn"]}})
            ],
        },
    )


def test_outputs_give_everything_an_aws_profile_needs(platform) -> None:
    from ipoc.stack_outputs import OUTPUT_API_URL, OUTPUT_INPUTS_BUCKET, OUTPUT_REGION

    outputs = platform.find_outputs("*")
    assert {OUTPUT_API_URL, OUTPUT_REGION, OUTPUT_INPUTS_BUCKET, "AdminRoleArn", "UserPolicyArn"} <= set(outputs)


def test_the_network_keeps_aws_traffic_on_endpoints(synth) -> None:
    network = synth.template("IpocNetwork").to_json()
    endpoints = resources(network, "AWS::EC2::VPCEndpoint").values()
    services = {json.dumps(e["Properties"]["ServiceName"]) for e in endpoints}
    for name in ("s3", "dynamodb", "sts", "states", "logs", "secretsmanager"):
        assert any(name in s for s in services), name
    assert len(resources(network, "AWS::EC2::NatGateway")) == 1
    assert len(resources(network, "AWS::EC2::FlowLog")) == 1

"""IAM: every AWS call the Lambdas make in their main flows is allowed by the policy synthesized for their role.

The Lambdas' real code runs each under its own role's credentials, with moto's IAM enforcement on and the
resources of every request evaluated (see ``tests/deploy/iam.py`` for how, and what moto needed): deployment
setup, registering a function, an instance's whole lifecycle with an S3 object streamed in by the workflow, the
S3 streamer, the VaaS API, and the reaper failing an instance whose runtime died and releasing one past its
deadline. Remove a permission from a role in ``infra/`` and this test fails, naming the role, the refused action
and its resource. The test prints the permissions granted that no call used.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from infra.constructs.functions import SPECS
from ipoc import policy as Policy
from ipoc.client import VeracruzClient
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.ccfaas.lifecycle import Lifecycle
from lambdas.ccfaas.reaper import Reaper
from lambdas.ccfaas.setup import lambda_handler as setup_handler
from lambdas.s3stream.handler import lambda_handler as s3stream
from lambdas.shared import aws
from lambdas.shared.config import Settings, settings
from lambdas.shared.identity import program_load_identity
from lambdas.shared.tables import FUNCTIONS, INSTANCES, SLOTS
from lambdas.vaas.handler import lambda_handler as vaas
from local import lambda_runner, workflow
from local.apigw import LOCAL_ADMIN, principal_arn
from local.context import LocalLambdaContext
from local.runtimes import running_ports, stop_runtime
from tests.deploy import iam
from tests.deploy.conftest import stack_template
from tests.support import policies
from tests.support.aws import call, input_key, instance_table_key
from tests.support.settings import use_settings
from tests.support.waiting import free_port_range, wait_until

TABLE_SPECS = {"IPOC_FUNCTIONS_TABLE": FUNCTIONS, "IPOC_INSTANCES_TABLE": INSTANCES, "IPOC_SLOTS_TABLE": SLOTS}
SLOTS_COUNT = 2


@pytest.fixture(scope="module")
def template(synth) -> dict[str, Any]:
    return stack_template(synth)


class Deployment:
    """The synthesized Ipoc stack's Lambdas, roles and data resources, made in moto under their template names."""

    def __init__(self, resources: dict[str, Any]) -> None:
        self.template = iam.Template(resources)
        functions = self.template.of_type("AWS::Lambda::Function")
        by_handler = {r["Properties"].get("Handler"): lid for lid, r in functions.items()}
        self.functions = {name: by_handler[spec.handler] for name, spec in SPECS.items()}  # Ccfaas -> logical id
        self.roles = {name: self.template.role_of(lid) for name, lid in self.functions.items()}
        machines = self.template.of_type("AWS::StepFunctions::StateMachine")
        assert len(machines) == 1, sorted(machines)
        self.machine = next(iter(machines))
        self.roles["StateMachine"] = self.template.role_of(self.machine, "RoleArn")
        self.friendly = {role_id: name for name, role_id in self.roles.items()}
        self.environment = self.template.resources[self.functions["Ccfaas"]]["Properties"]["Environment"]["Variables"]
        self.statements: list[iam.Statement] = []  # the roles' Allow statements, once deployed() made the roles

    def env_ref(self, variable: str) -> str:
        return self.environment[variable]["Ref"]

    def name(self, variable: str) -> str:
        return self.template.local_name(self.env_ref(variable))


@contextmanager
def deployed(template: dict[str, Any], monkeypatch, proxy, tmp_path) -> Iterator[tuple[Deployment, iam.Roles]]:
    from moto import mock_aws

    from runtime.measurement import measurement

    deployment = Deployment(template["Resources"])
    roles = iam.Roles()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": iam.REGION,
        }.items():
            monkeypatch.setenv(key, value)
        admin_iam = boto3.client("iam")
        # Data resources under their template names; secrets as CloudFormation makes them (a random string)
        for variable, spec in TABLE_SPECS.items():
            boto3.client("dynamodb").create_table(**spec.create_table_kwargs(deployment.name(variable)))
        for bucket in deployment.template.of_type("AWS::S3::Bucket"):
            boto3.client("s3").create_bucket(Bucket=deployment.template.local_name(bucket))
        secrets = boto3.client("secretsmanager")
        for secret in deployment.template.of_type("AWS::SecretsManager::Secret"):
            deployment.template.overrides[secret] = secrets.create_secret(
                Name=secret, SecretString=secrets.get_random_password()["RandomPassword"]
            )["ARN"]
        # Roles with their synthesized, resolved policies; each assumed now, before enforcement starts
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
            }
        )
        statements: list[iam.Statement] = []
        for name, role_id in deployment.roles.items():
            role = admin_iam.create_role(RoleName=role_id, AssumeRolePolicyDocument=trust)["Role"]
            for index, document in enumerate(deployment.template.role_policies(role_id)):
                resolved = deployment.template.resolve(document)
                statements += iam.allow_statements(role_id, [resolved])
                admin_iam.put_role_policy(
                    RoleName=role_id,
                    PolicyName=f"synthesized-{index}",
                    PolicyDocument=json.dumps(iam.for_moto(resolved)),
                )
            credentials = boto3.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName=name)["Credentials"]
            roles.credentials[role_id] = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        # The test's own calls (setup, polling) as an administrator, so they never mask a Lambda's refusal
        admin_iam.create_user(UserName="iam-test-admin")
        admin_iam.put_user_policy(
            UserName="iam-test-admin",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = admin_iam.create_access_key(UserName="iam-test-admin")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        boto3.setup_default_session()  # boto3's default session keeps the credentials it first saw
        # The Lambdas' environment as synthesized, with the local runtime backend in place of EKS
        port_base = free_port_range(SLOTS_COUNT)
        env = {k: str(deployment.template.resolve(v)) for k, v in deployment.environment.items()}
        env = {k: v for k, v in env.items() if not (k.startswith(("IPOC_K8S", "IPOC_EKS")) or "unresolved" in v)}
        env.update(
            IPOC_VAAS_BACKEND="local",
            IPOC_STATE_DIR=str(tmp_path / "runtimes"),
            IPOC_PROXY_URL=proxy.url,
            IPOC_PROXY_CERT=proxy.ca_pem,
            IPOC_RUNTIME_HASH=measurement(),
            IPOC_PLATFORM="linux",
            IPOC_PORT_MIN=str(port_base),
            IPOC_PORT_MAX=str(port_base + SLOTS_COUNT - 1),
            IPOC_ADMIN_PRINCIPALS=principal_arn(LOCAL_ADMIN),
            POWERTOOLS_TRACE_DISABLED="1",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        env.pop("IPOC_ENDPOINT_HOST", None)
        env.update(IPOC_PROGRAM_LOAD_CERT_FILE="", IPOC_PROGRAM_LOAD_KEY_FILE="")  # the Lambdas read the secret
        for key_name in ("POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_LOG_LEVEL"):
            monkeypatch.setenv(key_name, env.pop(key_name))
        use_settings(monkeypatch, Settings.from_environment(os.environ), **env)
        aws.reset()
        # The workflow under its synthesized name, role and task function
        arn = workflow.register(
            admin_iam,
            boto3.client("lambda"),
            boto3.client("stepfunctions"),
            function_name=deployment.functions["Tasks"],
            state_machine_name=deployment.template.local_name(deployment.machine),
            role_arn=deployment.template.arn(deployment.roles["StateMachine"]),
        )
        assert arn == env["IPOC_STATE_MACHINE_ARN"]
        iam.install(monkeypatch, roles, deployment.roles["StateMachine"])
        task_function = deployment.functions["Tasks"]
        run_task = lambda_runner.invoke
        monkeypatch.setattr(
            lambda_runner,
            "invoke",
            lambda handler, payload, function_name="": roles.run_as(
                deployment.roles["Tasks"] if function_name == task_function else f"unknown function {function_name}",
                run_task,
                handler,
                payload,
                function_name,
            ),
        )
        deployment.statements = statements
        try:
            yield deployment, roles
        finally:
            for port in running_ports(tmp_path / "runtimes"):
                stop_runtime(tmp_path / "runtimes", port)


def refusals(deployment: Deployment, roles: iam.Roles) -> str:
    return "\n".join(
        f"  {deployment.friendly.get(d.role, d.role)} role was refused {d.action} on {d.resource}"
        for d in roles.refused()
    )


@contextmanager
def naming_refusals(deployment: Deployment, roles: iam.Roles) -> Iterator[None]:
    """A flow that breaks because a call was refused fails with the refused calls named."""
    try:
        yield
    except Exception as exc:
        if roles.refused():
            raise AssertionError(
                f"the synthesized IAM policies refuse calls the code makes:\n{refusals(deployment, roles)}"
            ) from exc
        raise
    assert not roles.refused(), (
        f"the synthesized IAM policies refuse calls the code makes:\n{refusals(deployment, roles)}"
    )


def test_every_aws_call_of_the_main_flows_is_allowed_by_the_synthesized_role_policies(
    template, monkeypatch, proxy, tmp_path, echo_wasm, ids, capsys
):
    from moto.core import enable_iam_authentication

    with (
        deployed(template, monkeypatch, proxy, tmp_path) as (deployment, roles),
        enable_iam_authentication(),
        naming_refusals(deployment, roles),
    ):

        def as_role(name: str, function: Any, *args: Any, **kwargs: Any) -> Any:
            return roles.run_as(deployment.roles[name], function, *args, **kwargs)

        as_role.roles = roles
        context = LocalLambdaContext()
        secret_arns = {
            p: deployment.template.ref(deployment.env_ref(v))
            for p, v in (
                ("ProgramLoadSecretArn", "IPOC_PROGRAM_LOAD_SECRET_ARN"),
                ("ProxyCaCertificateSecretArn", "IPOC_PROXY_CERT_SECRET_ARN"),
            )
        }
        ca_key = next(
            s for s in deployment.template.of_type("AWS::SecretsManager::Secret") if s.startswith("ProxyCaKey")
        )
        secret_arns["ProxyCaKeySecretArn"] = deployment.template.ref(ca_key)
        # Deployment: the setup custom resource fills the identity secrets
        assert as_role("Setup", setup_handler, {"RequestType": "Create", "ResourceProperties": secret_arns}, context)[
            "Data"
        ] == {"ProgramLoadWritten": "True", "ProxyCaWritten": "True"}
        # Publisher: register a function and upload its program
        policy = policies.echo_function("echo", echo_wasm)
        assert as_role("Ccfaas", call, ccfaas, "POST", "/function", policy).status == 201
        segment = base64.b64encode(policies.ECHO.encode()).decode()
        assert as_role("Ccfaas", call, ccfaas, "POST", f"/function/echo/program/{segment}", raw=echo_wasm).status == 201
        # User: an instance whose workflow streams an S3 object in, used, then deleted
        inputs = deployment.template.local_name(
            next(b for b in deployment.template.of_type("AWS::S3::Bucket") if b.startswith("DataInputs"))
        )
        boto3.client("s3").put_object(
            Bucket=inputs, Key=input_key("camera/input.txt", "alice"), Body=b"streamed by the workflow"
        )
        user_policy = {
            "function": "echo",
            "instanceid": "i-iam",
            "identities": [
                {"certificate": ids.streamer.certificate, "file_rights": [{"file_name": "/input/", "rights": 534084}]},
                {"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS},
            ],
        }
        query = f"?stream_bucket={inputs}&stream_key={input_key('camera/input.txt', 'alice')}&stream_to=/input/data.txt"
        created = as_role("Ccfaas", call, ccfaas, "POST", f"/instance{query}&wait=0", user_policy, user="alice")
        assert created.status == 202, created.json
        ready = wait_for_status(as_role, "i-iam", ("READY", "FAILED"))
        assert ready["status"] == "READY", ready.get("reason")
        wait_until(
            lambda: (
                "task_token"
                in (
                    boto3.resource("dynamodb")
                    .Table(settings().instances_table)
                    .get_item(Key={"instance_id": instance_table_key("i-iam")})
                    .get("Item")
                    or {}
                )
            ),
            timeout=60,
            what="the workflow to stream and wait for release",
        )
        with VeracruzClient(ready["policy"], ids.user.certificate, ids.user.private_key) as client:
            assert client.execute(policies.ECHO) == 0
            assert client.read_file("/output/result.txt").endswith(b"STREAMED BY THE WORKFLOW")
        # The S3 streamer, with its own role (no caller credentials)
        streamed = as_role(
            "S3Stream",
            call,
            s3stream,
            "POST",
            "/s3_stream_veracruz",
            {
                "s3": {"bucket": inputs, "filename": input_key("camera/input.txt", "alice")},
                "veracruz": {
                    "filename": "/input/more.txt",
                    "policy": ready["policy"],
                    "certificate": ids.streamer.certificate,
                    "key": ids.streamer.private_key,
                },
            },
            user="alice",
        )
        assert streamed.status == 200, streamed.json
        deleted = as_role("Ccfaas", call, ccfaas, "DELETE", "/instance/i-iam", user="alice")
        assert deleted.json["status"] == "DELETED", deleted.json
        # Operator: the VaaS API directly
        vaas_policy = Policy.compose_vaas_policy(
            policy,
            {
                "function": "echo",
                "instanceid": "v-1",
                "identities": [{"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS}],
            },
            program_load_identity().certificate,
        )
        made = as_role("Vaas", call, vaas, "POST", "/veracruz", vaas_policy)
        assert made.status == 201, made.json
        name = f"veracruz-nitro-server:{json.loads(made.json['policy'])['veracruz_server_url'].rsplit(':', 1)[1]}"
        assert as_role("Vaas", call, vaas, "GET", "/veracruz").status == 200
        assert (
            as_role("Vaas", call, vaas, "DELETE", f"/veracruz/{name}?instance_hash={made.json['instance_hash']}").status
            == 200
        )
        # The reaper: an instance whose runtime died
        assert (
            as_role(
                "Ccfaas",
                call,
                ccfaas,
                "POST",
                "/instance?wait=0",
                {**user_policy, "instanceid": "i-dies"},
                user="alice",
            ).status
            == 202
        )
        dying = wait_for_status(as_role, "i-dies", ("READY", "FAILED"))
        assert dying["status"] == "READY", dying.get("reason")
        port = int(dying["veracruz_server_url"].rsplit(":", 1)[1])
        os.kill(int((tmp_path / "runtimes" / str(port) / "pid").read_text()), signal.SIGKILL)
        wait_until(lambda: running_ports(tmp_path / "runtimes") == [], timeout=10, what="the runtime to die")
        assert as_role("Reaper", Reaper(Lifecycle.from_settings()).run)[0]["instance_id"] == instance_table_key(
            "i-dies"
        )
        assert wait_for_status(as_role, "i-dies", ("FAILED",))["reason"] == "runtime died"
        wait_until(
            lambda: not boto3.client("dynamodb").scan(TableName=settings().slots_table)["Items"],
            timeout=30,
            what="the workflow's teardown to free the slot",
        )
        # The reaper again: an instance past its deadline is released (ends DELETED)
        assert (
            as_role(
                "Ccfaas", call, ccfaas, "POST", "/instance?wait=0", {**user_policy, "instanceid": "i-old"}, user="alice"
            ).status
            == 202
        )
        assert wait_for_status(as_role, "i-old", ("READY", "FAILED"))["status"] == "READY"
        instances = boto3.resource("dynamodb").Table(settings().instances_table)
        wait_until(
            lambda: "task_token" in instances.get_item(Key={"instance_id": instance_table_key("i-old")})["Item"],
            timeout=60,
            what="the workflow to wait for release",
        )
        instances.update_item(
            Key={"instance_id": instance_table_key("i-old")},
            UpdateExpression="SET created_at = :c",
            ExpressionAttributeValues={":c": "2026-01-01T00:00:00+00:00"},
        )
        assert as_role("Reaper", Reaper(Lifecycle.from_settings()).run) == [
            {"instance_id": instance_table_key("i-old"), "action": "released (TTL expired)"}
        ]
        assert wait_for_status(as_role, "i-old", ("DELETED", "FAILED"))["status"] == "DELETED"

    assert iam.not_granted(deployment.statements, roles.decisions) == []
    unused = iam.unused_grants(deployment.statements, roles.decisions)
    used = sorted({(deployment.friendly.get(d.role, d.role), d.action) for d in roles.decisions if d.allowed})
    with capsys.disabled():
        print(f"\nIAM: {len(roles.decisions)} calls checked by moto against the synthesized policies, none refused.")
        print("Actions used, by role: " + "; ".join(f"{r} {a}" for r, a in used))
        print("Granted, but used by no call in these flows (role: action on resources):")
        grouped: dict[tuple[str, str], list[str]] = {}
        for role, action, resource in unused:
            grouped.setdefault((deployment.friendly.get(role, role), action), []).append(resource.split(":", 5)[-1])
        for (role, action), resources in sorted(grouped.items()):
            print(f"  {role:12} {action:36} {', '.join(resources)}")
    assert used, "no call was checked: enforcement was not on"


def wait_for_status(as_role: Any, instance_id: str, statuses: tuple[str, ...], timeout: float = 90) -> dict[str, Any]:
    roles: iam.Roles = as_role.roles

    def status() -> dict[str, Any] | None:
        if roles.refused():
            raise RuntimeError(f"a call was refused while waiting for {instance_id}")
        record = as_role("Ccfaas", call, ccfaas, "GET", f"/instance/{instance_id}", user="alice").json
        return record if record.get("status") in statuses else None

    return wait_until(status, timeout=timeout, interval=0.2, what=f"{instance_id} to be one of {statuses}")

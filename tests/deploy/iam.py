"""Run the Lambdas' code under the IAM policies synthesized for their roles, with moto's IAM enforcement on.

What this does, and why (facts measured in ``/work/shared/reference/moto-iam-enforcement.md``):

- The synthesized template gives each Lambda's role its identity policies. Their CloudFormation values
  (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, pseudo parameters) are resolved to the local resources, which are
  named after their logical ids (state machines by their ``StateMachineName``), so a statement means here what
  it means in AWS.
- Each role is created in moto and assumed while enforcement is still off (moto cannot evaluate a
  ``lambda.amazonaws.com`` trust policy); then enforcement is switched on, and every handler runs with its own
  role's credentials: a thread-local "current role" feeds every boto3 session made without explicit keys (the
  code's ``lambdas.shared.aws`` clients and the streamer's session), with clients cached per role.
- moto checks the resource only for S3 (and STS, IAM); for DynamoDB, Step Functions and Secrets Manager it
  checks against ``*``, so an Allow scoped to a table would deny it. :func:`patch_moto_resources` gives those
  requests (and Lambda's) their real ARN (the table, the state machine or execution, the secret, the function),
  so moto evaluates actions *and* resources for every service the Lambdas use. Task-token calls carry no ARN:
  they are checked against the state machine (as AWS does for ``states:SendTask*``), the only one here.
- moto names two actions differently from AWS: Lambda Invoke as ``lambda:Invoke`` (AWS:
  ``lambda:InvokeFunction``) and HeadBucket as ``s3:HeadBucket`` (AWS: ``s3:ListBucket``). The policies given
  to moto gain moto's name beside each AWS name they grant, and nothing else.
- moto's Step Functions interpreter invokes the task Lambda with fixed keys; it is made to use the state
  machine role's credentials, so that role's ``lambda:InvokeFunction`` grant is enforced too.
- Every decision moto makes is recorded (role, action, resource, allowed), for the failure message naming a
  refused call and for the report of granted permissions no call used.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"
MOTO_ACTION_NAMES = {"lambda:InvokeFunction": "lambda:Invoke", "s3:ListBucket": "s3:HeadBucket"}


# -- the template, resolved to local resources ---------------------------------------------------------------


@dataclass
class Template:
    resources: dict[str, Any]
    overrides: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value known only at run time

    def local_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::StepFunctions::StateMachine":
            return properties.get("StateMachineName", logical_id)
        if kind == "AWS::S3::Bucket":
            return logical_id.lower()
        return logical_id

    def arn(self, logical_id: str) -> str:
        kind, name = self.resources[logical_id]["Type"], self.local_name(logical_id)
        if logical_id in self.overrides:
            return self.overrides[logical_id]
        return {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::StepFunctions::StateMachine": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
        }.get(kind, f"arn:{PARTITION}:unresolved:{REGION}:{ACCOUNT}:{logical_id}")

    def ref(self, logical_id: str) -> str:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id in self.overrides:
            return self.overrides[logical_id]
        kind = self.resources[logical_id]["Type"]
        if kind in ("AWS::StepFunctions::StateMachine", "AWS::SecretsManager::Secret"):
            return self.arn(logical_id)
        return self.local_name(logical_id)

    def resolve(self, value: Any) -> Any:
        """A CloudFormation value with its intrinsics evaluated against the local resources."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.arn(logical_id) if attribute == "Arn" else f"unresolved-{logical_id}-{attribute}"
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(p)) for p in parts)
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            import re

            return re.sub(
                r"\$\{([^}!]+)\}",
                lambda m: str(
                    self.resolve(
                        {"Ref": m.group(1)} if "." not in m.group(1) else {"Fn::GetAtt": m.group(1).split(".", 1)}
                    )
                ),
                text,
            )
        return {k: self.resolve(v) for k, v in value.items()}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == kind}

    def role_policies(self, role_id: str) -> list[dict[str, Any]]:
        """The role's identity policies as synthesized (inline and AWS::IAM::Policy), unresolved."""
        documents = [p["PolicyDocument"] for p in self.resources[role_id].get("Properties", {}).get("Policies", [])]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                documents.append(policy["Properties"]["PolicyDocument"])
        return documents

    def role_of(self, logical_id: str, attribute: str = "Role") -> str:
        return self.resources[logical_id]["Properties"][attribute]["Fn::GetAtt"][0]


@dataclass
class Statement:
    role: str
    actions: list[str]
    resources: list[str]

    def grants(self, action: str, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in self.resources
        )


def allow_statements(role: str, documents: list[dict[str, Any]]) -> list[Statement]:
    found = []
    for document in documents:
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        for statement in statements:
            if statement.get("Effect") == "Allow":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                found.append(Statement(role, actions, resources))
    return found


def for_moto(document: dict[str, Any]) -> dict[str, Any]:
    """The policy with moto's action name added beside each AWS name that moto spells differently."""
    document = json.loads(json.dumps(document))
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = actions + [MOTO_ACTION_NAMES[a] for a in actions if a in MOTO_ACTION_NAMES]
    return document


# -- who is calling: one role per thread -----------------------------------------------------------------------


class RoleCredentials(TypedDict):
    """A role's assumed credentials, as boto3's Session takes them."""

    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str


@dataclass
class Decision:
    role: str
    action: str
    resource: str
    allowed: bool


class Roles:
    """Role credentials, the current role of each thread, and the record of moto's decisions."""

    def __init__(self) -> None:
        self.credentials: dict[str, RoleCredentials] = {}
        self.decisions: list[Decision] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def current(self) -> str | None:
        return getattr(self._local, "role", None)

    @contextlib.contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        previous = self.current
        self._local.role = role
        try:
            yield
        finally:
            self._local.role = previous

    def run_as(self, role: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.acting_as(role):
            return function(*args, **kwargs)

    def record(self, principal_arn: str, action: str, resource: str, allowed: bool) -> None:
        role = (
            principal_arn.split("assumed-role/", 1)[1].split("/", 1)[0]
            if "assumed-role/" in principal_arn
            else principal_arn
        )
        with self._lock:
            self.decisions.append(Decision(role, action, resource, allowed))

    def refused(self) -> list[Decision]:
        return [d for d in self.decisions if not d.allowed]


def install(monkeypatch: Any, roles: Roles, state_machine_role: str) -> None:
    """Route credentials by role, give moto's requests their real resources, record every decision."""
    import boto3
    import botocore.client
    from moto.iam.access_control import IAMRequestBase
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from lambdas.shared import aws

    original_init = boto3.session.Session.__init__

    def session_init(self: Any, *args: Any, **kwargs: Any) -> None:
        role = roles.current
        if role and not args and not kwargs.get("aws_access_key_id"):
            kwargs = {**kwargs, **roles.credentials[role]}
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", session_init)

    sessions: dict[str | None, Any] = {}

    def session() -> Any:
        """One Session per role (the Lambdas share one Session per process, as each role's Lambda would)."""
        if roles.current not in sessions:
            sessions[roles.current] = boto3.session.Session()
        return sessions[roles.current]

    session.cache_clear = sessions.clear  # type: ignore[attr-defined]
    monkeypatch.setattr(aws, "session", session)

    clients: dict[tuple[str | None, str], Any] = {}
    tables: dict[tuple[str | None, str], Any] = {}
    build_client, build_table = aws.client.__wrapped__, aws.table.__wrapped__

    def client(service: str) -> Any:
        key = (roles.current, service)
        if key not in clients:
            clients[key] = build_client(service)
        return clients[key]

    def table(name: str) -> Any:
        key = (roles.current, name)
        if key not in tables:
            tables[key] = build_table(name)
        return tables[key]

    # They stand in for functools.cache'd functions, which callers clear: a plain function has no such attribute.
    client.cache_clear = clients.clear  # type: ignore[attr-defined]
    table.cache_clear = tables.clear  # type: ignore[attr-defined]
    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(aws, "table", table)

    def interpreter_client(region: str, service: str, state_credentials: Any = None) -> botocore.client.BaseClient:
        from botocore.config import Config

        config = Config(parameter_validation=False, retries={"total_max_attempts": 1})
        session = boto3.session.Session(**roles.credentials[state_machine_role])
        # boto3-stubs type client() per service-name literal; the name here is a run-time string.
        return session.client(service, region_name=region, config=config)  # type: ignore[call-overload]

    monkeypatch.setattr(lambda_eval_utils, "boto_client_for", interpreter_client)

    original_check = IAMRequestBase.check_action_permitted

    def check(self: Any, resource: str) -> None:
        try:
            original_check(self, resource)
        except Exception:
            roles.record(self._access_key.arn, self._action, resource, False)
            raise
        roles.record(self._access_key.arn, self._action, resource, True)

    monkeypatch.setattr(IAMRequestBase, "check_action_permitted", check)
    patch_moto_resources(monkeypatch)


def patch_moto_resources(monkeypatch: Any) -> None:
    """Give Lambda, DynamoDB, Step Functions and Secrets Manager requests the ARN IAM evaluates them against."""
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    def dynamodb_resource(self: Any) -> str:
        body = self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")
        name = body.get("TableName")
        if not name:
            return "*"  # batch and transact calls name several tables; the code uses none
        arn = f"arn:{PARTITION}:dynamodb:{self.region}:{self.current_account}:table/{name}"
        return f"{arn}/index/{body['IndexName']}" if body.get("IndexName") else arn

    def states_resource(self: Any) -> str:
        body = json.loads(self.body or "{}") if isinstance(self.body, (str, bytes)) else (self.body or {})
        for key in ("executionArn", "stateMachineArn"):
            if body.get(key):
                return body[key]
        if body.get("taskToken"):
            machines = self.stepfunction_backend.state_machines
            if len(machines) == 1:
                return machines[0].arn
        return "*"

    def secret_resource(self: Any) -> str:
        body = json.loads(self.body or "{}") if isinstance(self.body, (str, bytes)) else (self.body or {})
        secret = self.backend.secrets.get(body.get("SecretId", ""))
        return secret.arn if secret is not None else "*"

    def lambda_resource(self: Any) -> str:
        from urllib.parse import unquote

        parts = unquote(self.path).split("/functions/", 1)
        if len(parts) < 2:
            return "*"
        name = parts[1].split("/", 1)[0]
        return (
            name
            if name.startswith("arn:")
            else f"arn:{PARTITION}:lambda:{self.region}:{self.current_account}:function:{name}"
        )

    monkeypatch.setattr(LambdaResponse, "_determine_resource", lambda_resource, raising=False)
    monkeypatch.setattr(DynamoHandler, "_determine_resource", dynamodb_resource, raising=False)
    monkeypatch.setattr(StepFunctionResponse, "_determine_resource", states_resource, raising=False)
    monkeypatch.setattr(SecretsManagerResponse, "_determine_resource", secret_resource, raising=False)


# -- the report -----------------------------------------------------------------------------------------------


def not_granted(statements: list[Statement], decisions: list[Decision]) -> list[Decision]:
    """Calls moto allowed that the statements do not grant by AWS's matching (a second opinion on moto's
    evaluator, which e.g. reads '.' in a pattern as any character)."""
    moto_to_aws = {v: k for k, v in MOTO_ACTION_NAMES.items()}
    roles = {s.role for s in statements}
    return [
        d
        for d in decisions
        if d.allowed
        and d.role in roles
        and not any(s.role == d.role and s.grants(moto_to_aws.get(d.action, d.action), d.resource) for s in statements)
    ]


def unused_grants(statements: list[Statement], decisions: list[Decision]) -> list[tuple[str, str, str]]:
    """(role, action, resource) granted by a statement that no allowed call matched."""
    moto_to_aws = {v: k for k, v in MOTO_ACTION_NAMES.items()}
    used = [(d.role, moto_to_aws.get(d.action, d.action), d.resource) for d in decisions if d.allowed]
    unused = []
    for statement in statements:
        for action in statement.actions:
            for resource in statement.resources:
                single = Statement(statement.role, [action], [resource])
                if not any(role == statement.role and single.grants(a, r) for role, a, r in used):
                    unused.append((statement.role, action, resource))
    return unused

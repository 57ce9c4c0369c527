"""The AWS deployment's setup function (custom resource) on moto's Secrets Manager."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from ipoc.certs import key_matches_certificate, load_certificate
from lambdas.ccfaas import setup
from lambdas.shared import identity
from local.context import LocalLambdaContext
from tests.support.aws import REGION, configure
from tests.support.settings import use_settings


def lambda_context() -> LambdaContext:
    """Our local context where the handler wants Powertools' LambdaContext: it has that class's attributes (a
    structural stand-in, not a subclass)."""
    return cast(LambdaContext, LocalLambdaContext("setup"))


@pytest.fixture
def secrets(monkeypatch):
    with mock_aws():
        configure(monkeypatch)
        client = boto3.client("secretsmanager", region_name=REGION)
        # CloudFormation creates each secret with a random string before the setup function runs.
        arns = {
            name: client.create_secret(Name=name, SecretString="x7Gq!random")["ARN"]
            for name in ("program-load", "ca-cert", "ca-key")
        }
        yield client, arns


def event(kind: str, arns: dict[str, str]) -> dict:
    return {
        "RequestType": kind,
        "PhysicalResourceId": setup.PHYSICAL_ID,
        "ResourceProperties": {
            "ProgramLoadSecretArn": arns["program-load"],
            "ProxyCaCertificateSecretArn": arns["ca-cert"],
            "ProxyCaKeySecretArn": arns["ca-key"],
        },
    }


def value(client, arn: str) -> str:
    return client.get_secret_value(SecretId=arn)["SecretString"]


def test_create_fills_every_secret_and_logs_no_key(secrets, caplog: pytest.LogCaptureFixture, capsys) -> None:
    client, arns = secrets
    with caplog.at_level(logging.INFO):  # what Lambda records (botocore logs request bodies only at DEBUG)
        reply = setup.lambda_handler(event("Create", arns), lambda_context())
    assert reply["Data"] == {"ProgramLoadWritten": "True", "ProxyCaWritten": "True"}
    document = json.loads(value(client, arns["program-load"]))
    assert key_matches_certificate(document["key"], document["certificate"])
    ca_cert, ca_key = value(client, arns["ca-cert"]), value(client, arns["ca-key"])
    assert key_matches_certificate(ca_key, ca_cert)
    certificate = load_certificate(ca_cert)
    assert certificate.extensions.get_extension_for_class(__import__("cryptography").x509.BasicConstraints).value.ca
    logged = caplog.text + capsys.readouterr().out
    assert "PRIVATE KEY" not in logged and "BEGIN CERTIFICATE" not in logged


def test_update_keeps_usable_identities_so_running_instances_keep_their_ca(secrets) -> None:
    client, arns = secrets
    setup.lambda_handler(event("Create", arns), lambda_context())
    before = [value(client, arns[n]) for n in ("program-load", "ca-cert", "ca-key")]
    reply = setup.lambda_handler(event("Update", arns), lambda_context())
    assert reply["Data"] == {"ProgramLoadWritten": "False", "ProxyCaWritten": "False"}
    assert [value(client, arns[n]) for n in ("program-load", "ca-cert", "ca-key")] == before


def test_identities_close_to_expiry_are_renewed(secrets) -> None:
    client, arns = secrets
    setup.lambda_handler(event("Create", arns), lambda_context())
    old = value(client, arns["ca-cert"])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=identity.CA_DAYS - 10)
    assert identity.ensure_certificate_authority(arns["ca-cert"], arns["ca-key"], now=later) is True
    assert value(client, arns["ca-cert"]) != old
    assert identity.ensure_identity(arns["program-load"], now=later) is True


def test_delete_touches_nothing(secrets) -> None:
    client, arns = secrets
    reply = setup.lambda_handler(event("Delete", arns), lambda_context())
    assert reply == {"PhysicalResourceId": setup.PHYSICAL_ID}
    assert value(client, arns["program-load"]) == "x7Gq!random"


def test_the_lambdas_read_the_program_load_identity_the_setup_wrote(secrets, monkeypatch) -> None:
    client, arns = secrets
    setup.lambda_handler(event("Create", arns), lambda_context())
    use_settings(monkeypatch, IPOC_PROGRAM_LOAD_SECRET_ARN=arns["program-load"])
    loaded = identity.program_load_identity()
    assert key_matches_certificate(loaded.private_key, loaded.certificate)
